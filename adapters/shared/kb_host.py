"""The lifecycle every platform's knowledge-base front end shares.

At start, uploads a restart left unfinished are resumed in an engine-owned task; new uploads wait
(briefly) until that task has listed them, so a fresh upload is never mistaken for an unfinished one.
Status messages are tracked so `stop()` can close those whose upload was cancelled half-way, and one
aiohttp session serves file downloads.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

import aiohttp

from bots.engine import Engine
from bots.kb import KnowledgeBase
from storage import KbUploadRecord

READY_WAIT = 10.0  # seconds a new upload waits for the restart's unfinished uploads to be listed


class Closable(Protocol):
    async def close(self) -> Any: ...


class KbHost:
    platform: str

    def __init__(self, kb: KnowledgeBase, engine: Engine) -> None:
        self.kb, self.engine = kb, engine
        self.resumed: asyncio.Task[list[KbUploadRecord]] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._listed = asyncio.Event()
        self._statuses: set[Any] = set()

    def start(self) -> None:
        """Resume the uploads a restart left unfinished (an engine-owned task); once per run."""
        if self.resumed is not None:
            return
        self.resumed = self.engine.spawn(
            self.kb.resume_unfinished(self.platform, self._resume), name=f"{self.platform}-kb-resume"
        )
        self.resumed.add_done_callback(lambda _task: self._listed.set())

    async def stop(self) -> None:
        for status in list(self._statuses):
            await status.close()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session for file downloads (requests carry their own timeouts)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _resume(self, record: KbUploadRecord) -> Any:
        self._listed.set()  # resume_unfinished has listed its uploads: new ones may start
        status = self._restore(dict(record.location or {}))
        return None if status is None else self._track(status)

    def _restore(self, location: dict[str, Any]) -> Closable | None:
        """The status message stored at `location`, or None if it cannot be finished."""
        raise NotImplementedError

    def _track(self, status: Any) -> Any:
        self._statuses.add(status)  # closed at stop() if its upload was cancelled half-way
        return status

    async def _ready(self) -> None:
        if not self._listed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(READY_WAIT):
                    await self._listed.wait()
