"""The physical limit: a plain httpx + httpx-sse client reading the same fake Dify stream.

No bridge, no storage, no platform: just POST /chat-messages (streaming) and parse the SSE events.
Its time to first token and time to `message_end` are what the bridge is compared with.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from httpx_sse import aconnect_sse


@dataclass
class DirectSample:
    sent: float  # time.monotonic() when the request was handed to httpx
    first_token: float  # first non-empty answer delta parsed
    message_end: float  # message_end parsed

    @property
    def ttft(self) -> float:
        return self.first_token - self.sent

    @property
    def total(self) -> float:
        return self.message_end - self.sent


async def one_answer(client: httpx.AsyncClient, url: str, key: str, query: str, user: str) -> DirectSample:
    body = {"inputs": {}, "query": query, "user": user, "response_mode": "streaming"}
    headers = {"Authorization": f"Bearer {key}"}
    sent = time.monotonic()
    first = end = 0.0
    async with aconnect_sse(client, "POST", f"{url}/chat-messages", json=body, headers=headers) as source:
        source.response.raise_for_status()
        async for sse in source.aiter_sse():
            if not sse.data:
                continue
            event = json.loads(sse.data)
            kind = event.get("event")
            if kind in ("message", "agent_message") and event.get("answer") and not first:
                first = time.monotonic()
            elif kind == "message_end":
                end = time.monotonic()
                break
    if not (first and end):
        raise RuntimeError("the direct client saw no answer or no message_end")
    return DirectSample(sent, first, end)


@dataclass
class DirectRun:
    samples: list[DirectSample]
    cpu_seconds: float  # the direct client's CPU over the counted rounds (warm-up excluded)

    @property
    def cpu_per_answer(self) -> float:
        return self.cpu_seconds / len(self.samples) if self.samples else 0.0


async def direct_rounds(url: str, key: str, concurrency: int, rounds: int, tag: str) -> DirectRun:
    """One warm-up answer (not counted, like the bridge's), then `rounds` rounds of `concurrency` streams at
    once, each its own user and conversation, on one client (keep-alive, like the bridge's)."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(120.0, connect=10.0)
    out: list[DirectSample] = []
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        await one_answer(client, url, key, f"direct {tag} warm-up", f"direct-{tag}-warm")
        cpu0 = _cpu()
        for r in range(rounds):
            out += await asyncio.gather(*(
                one_answer(client, url, key, f"direct {tag} {r} {i}", f"direct-{tag}-{r}-{i}")
                for i in range(concurrency)))
        cpu = _cpu() - cpu0
    return DirectRun(out, cpu)


async def direct_in_process(url: str, key: str, concurrency: int, tag: str, *, rounds: int = 1,
                            timeout: float = 180) -> DirectRun:
    """Run `direct_rounds` in a child process of its own, like the bridge (CLOCK_MONOTONIC is system-wide,
    so its times compare with the fakes' records)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.direct", url, key, str(concurrency), str(rounds), tag,
        cwd=str(Path(__file__).resolve().parent.parent), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"direct client failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    data = json.loads(out)
    return DirectRun([DirectSample(*row) for row in data["samples"]], data["cpu_seconds"])


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def main(argv: list[str]) -> int:
    url, key, concurrency, rounds, tag = argv[0], argv[1], int(argv[2]), int(argv[3]), argv[4]
    run = asyncio.run(direct_rounds(url, key, concurrency, rounds, tag))
    rows = [[s.sent, s.first_token, s.message_end] for s in run.samples]
    print(json.dumps({"samples": rows, "cpu_seconds": run.cpu_seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
