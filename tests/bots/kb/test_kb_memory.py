"""A 15 MB document never sits whole in memory: streamed to a temporary file, uploaded from disk.

The fake Dify runs in its own process here, so tracemalloc counts only the bridge's side.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tracemalloc
from pathlib import Path

from bots.dify import DifyClient
from bots.kb import FileSource, KnowledgeBase
from storage import Repository
from tests.bots.kb.conftest import Status, VirtualTime, kb_settings

ROOT = Path(__file__).resolve().parents[3]
SIZE = 15 * 1024 * 1024  # exactly the default limit (KB_MAX_FILE_MB=15, Dify's UPLOAD_FILE_SIZE_LIMIT)


async def test_15_mb_upload_peak_memory(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bots.kb.fake_dify_process", "1.12", cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    try:
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        repo = await Repository.open(f"sqlite+aiosqlite:///{tmp_path}/bridge.db")
        client = DifyClient(info["url"], "app-unused", dataset_api_key=info["dataset_key"])
        settings = kb_settings(info["url"], info["dataset_key"], info["dataset_id"])
        time = VirtualTime()
        staging = tmp_path / "staging"
        staging.mkdir()
        kb = KnowledgeBase(client, repo, settings, tmp_dir=staging, sleep=time.sleep, clock=time.clock)
        line = b"The quarterly report explains the knowledge base in plain text.\n"
        block = line * (64 * 1024 // len(line)) + b"x" * (64 * 1024 % len(line))

        async def download():  # an adapter's download: 64 KB chunks off the network
            for _ in range(SIZE // len(block)):
                yield block

        status = Status()
        tracemalloc.start()
        try:
            record = await kb.add_file(FileSource("report.txt", SIZE, chunks=download), platform="slack",
                                       user_id="U1", scope="C1", progress=status)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        print(f"\npeak Python allocation while adding a 15 MB file: {peak / 1024 / 1024:.2f} MB")
        assert record.state == "completed", record.error
        uploaded = [e.sent for e in status.events if e.state == "uploading" and e.sent]
        assert uploaded[-1] == SIZE
        listed = (await client.list_documents(info["dataset_id"]))["data"][0]
        assert listed["name"] == "report.txt"
        assert listed["data_source_detail_dict"]["upload_file"]["size"] == SIZE
        assert peak < 5 * 1024 * 1024
        assert list(staging.iterdir()) == []
        await client.aclose()
        await repo.close()
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)
