"""Fixtures for core tests: a fake Dify on loopback and engines built on a real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bots.dify import DifyClient
from bots.engine import DifyApp, Engine
from bots.types import FinalAnswer, Incoming, Problem
from storage import Repository
from tests.fakes.fake_dify import FakeDify


@pytest.fixture(params=["1.12", "0.15"])
async def fake_dify(request) -> AsyncIterator[FakeDify]:
    async with FakeDify(version=request.param) as fake:
        yield fake


@pytest.fixture
def db_file(tmp_path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/bridge.db"


class RecordingSink:
    """A ReplySink that records what the engine asked it to show."""

    def __init__(self, gate=None) -> None:
        self.location: dict[str, Any] = {"chat": "test"}
        self.started = False
        self.updates: list[str] = []
        self.notices: list[str] = []
        self.answer: FinalAnswer | None = None
        self.problem: Problem | None = None
        self._gate = gate
        self.first_update = asyncio.Event()

    async def start(self) -> None:
        self.started = True
        if self._gate is not None:
            await self._gate.wait()

    async def update(self, text: str) -> None:
        self.updates.append(text)
        self.first_update.set()
        self.location = {"chat": "test", "message": "m1"}

    async def notice(self, text: str) -> None:
        self.notices.append(text)

    async def finish(self, answer: FinalAnswer) -> None:
        self.answer = answer

    async def fail(self, problem: Problem) -> None:
        self.problem = problem


def incoming(text: str, scope: str = "s1", user: str = "u1", platform: str = "test") -> Incoming:
    return Incoming(platform=platform, scope=scope, user_id=user, dify_user=f"{platform}:{user}", text=text)


class EngineFactory:
    def __init__(self, fake: FakeDify, url: str) -> None:
        self.fake, self.url = fake, url
        self._open: list[tuple[Repository, DifyClient]] = []

    async def __call__(self, inputs: dict | None = None, **client_kw: Any) -> Engine:
        repo = await Repository.open(self.url)
        client = DifyClient(self.fake.url, self.fake.app_key, backoff=0.01, **client_kw)
        self._open.append((repo, client))
        return Engine(repo=repo, apps={"default": DifyApp("default", client, inputs or {})})

    async def close(self) -> None:
        for repo, client in self._open:
            await client.aclose()
            await repo.close()


@pytest.fixture
async def make_engine(fake_dify, db_file) -> AsyncIterator[EngineFactory]:
    factory = EngineFactory(fake_dify, db_file)
    yield factory
    await factory.close()
