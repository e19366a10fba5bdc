"""Run a FakeDify in its own process (for measurements that must not count the fake's memory).

    python -m tests.bots.kb.fake_dify_process 1.12
prints one JSON line {"url", "dataset_key", "dataset_id"}, then serves until its stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys

from tests.fakes.fake_dify import FakeDify


async def serve(version: str) -> None:
    async with FakeDify(version=version, indexing_steps=["indexing", "completed"]) as fake:
        dataset_id = fake.add_dataset(name="memory-kb")
        print(json.dumps({"url": fake.url, "dataset_key": fake.dataset_key, "dataset_id": dataset_id}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # returns when the test closes our stdin


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1] if len(sys.argv) > 1 else "1.12"))
