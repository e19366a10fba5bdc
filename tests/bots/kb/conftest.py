"""Fixtures for the knowledge-base tests: settings for a FakeDify, a KnowledgeBase on a real SQLite file,
recording status displays and a virtual clock for the indexing polls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bots.config import Settings, load_settings
from bots.dify import DifyClient
from bots.kb import FileSource, KbProgress, KnowledgeBase
from storage import Repository
from tests.fakes.fake_dify import FakeDify


def kb_settings(url: str, dataset_key: str, dataset_id: str | None, **env: str) -> Settings:
    values = {"DIFY_API_URL": url, "DIFY_DATASET_API_KEY": dataset_key, "KB_WRITERS": "*", **env}
    if dataset_id:
        values.setdefault("DIFY_DATASET_ID", dataset_id)
    return load_settings(values, env_file=None)


class Status:
    """A platform's status message: records every event it is asked to show, has a location."""

    def __init__(self, location: dict[str, Any] | None = None) -> None:
        self.location: dict[str, Any] = dict(location or {})
        self.events: list[KbProgress] = []
        self.indexing = asyncio.Event()

    async def __call__(self, event: KbProgress) -> None:
        if not self.location:
            self.location = {"chat": "C1", "message": f"m{len(self.events) + 1}"}
        self.events.append(event)
        if event.state == "indexing":
            self.indexing.set()

    @property
    def states(self) -> list[str]:
        out: list[str] = []
        for e in self.events:
            if not out or out[-1] != e.state:
                out.append(e.state)
        return out

    @property
    def last(self) -> KbProgress:
        return self.events[-1]


class VirtualTime:
    """Injected sleep/clock: sleeping advances the clock at once (and only yields to the loop)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds
        await asyncio.sleep(0)


class Chunks:
    """An adapter's download: yields `data` in chunks and counts how often it was started."""

    def __init__(self, data: bytes, chunk: int = 64 * 1024, fail_after: int | None = None) -> None:
        self.data, self.chunk, self.fail_after = data, chunk, fail_after
        self.calls = 0
        self.sent = 0

    async def __call__(self) -> AsyncIterator[bytes]:
        self.calls += 1
        for i in range(0, len(self.data), self.chunk):
            if self.fail_after is not None and i >= self.fail_after:
                raise ConnectionResetError("download cut")
            piece = self.data[i : i + self.chunk]
            self.sent += len(piece)
            yield piece


def source(name: str, data: bytes, *, size: int | None | bool = True, **kw: Any) -> tuple[FileSource, Chunks]:
    chunks = Chunks(data, **kw)
    announced = len(data) if size is True else (None if size is False else size)
    return FileSource(name=name, size=announced, chunks=chunks), chunks


class KbHarness:
    def __init__(self, fake: FakeDify, repo: Repository, client: DifyClient, tmp: Path, time: VirtualTime) -> None:
        self.fake, self.repo, self.client, self.tmp, self.time = fake, repo, client, tmp, time
        self.dataset_id = fake.add_dataset(name="team-kb")

    def kb(self, dataset_id: str | None = "default", sleep: Any = None, **env: str) -> KnowledgeBase:
        ds = self.dataset_id if dataset_id == "default" else dataset_id
        settings = kb_settings(self.fake.url, self.fake.dataset_key, ds, **env)
        return KnowledgeBase(self.client, self.repo, settings, tmp_dir=self.tmp,
                             sleep=sleep or self.time.sleep, clock=self.time.clock)

    def temp_files(self) -> list[Path]:
        return sorted(self.tmp.iterdir())

    def creates(self) -> list[Any]:
        return [r for r in self.fake.requests if r.method == "POST" and "/document/create" in r.path]


@pytest.fixture
async def harness(fake_dify: FakeDify, db_file: str, tmp_path: Path) -> AsyncIterator[KbHarness]:
    repo = await Repository.open(db_file)
    client = DifyClient(fake_dify.url, "app-unused", dataset_api_key=fake_dify.dataset_key, backoff=0.01)
    tmp = tmp_path / "kb-tmp"
    tmp.mkdir()
    try:
        yield KbHarness(fake_dify, repo, client, tmp, VirtualTime())
    finally:
        await client.aclose()
        await repo.close()
