"""One Telegram status message per knowledge-base upload, edited through the TelegramWriter.

The first step sends the message (a reply to the user's message, in its forum topic if any) and
waits for it, so its `message_id` is in `location` before the pipeline records the next step: after
a restart the same message is finished. Intermediate steps are coalesced (newest wins) and paced
like answer updates; the final ✅/❌ goes at FINAL priority (the writer retries it on 429). A status
message that was deleted meanwhile is replaced by a new one for the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from adapters.shared.pacing import FINAL, FIRST, LatestWriter
from bots.kb import KbProgress

from .render import Part, render_parts
from .writer import TelegramWriter

log = logging.getLogger("adapters.telegram.kb")


def status_part(markdown: str) -> Part:
    """A status line as one Telegram message (Markdown → entities; a status line is short)."""
    parts = render_parts(markdown)
    return parts[0] if parts else Part(markdown)


class TelegramKbStatus:
    """A `ProgressCallback` showing one upload in one Telegram message (see module docstring).

    `location`: chat_id, thread_id (None: no topic), reply_to (the user's message), message_id
    (None until sent).
    """

    def __init__(self, writer: TelegramWriter, location: dict[str, Any],
                 on_close: Callable[[TelegramKbStatus], None] | None = None) -> None:
        self.writer, self._on_close = writer, on_close
        self.location: dict[str, Any] = dict(location)
        self.shown: Part | None = None
        self._latest = LatestWriter(self._acquire, self._send)
        self._last_write = 0.0
        self._prepaid = False
        private = int(self.location.get("chat_id") or 0) > 0
        self._interval = writer.options["edit_interval" if private else "group_interval"]

    @classmethod
    def new(cls, writer: TelegramWriter, chat_id: int, thread_id: int | None, reply_to: int | None, *,
            on_close: Callable[[TelegramKbStatus], None] | None = None) -> TelegramKbStatus:
        location = {"chat_id": chat_id, "thread_id": thread_id, "reply_to": reply_to, "message_id": None}
        return cls(writer, location, on_close)

    @property
    def chat_id(self) -> int:
        return int(self.location["chat_id"])

    @property
    def message_id(self) -> int | None:
        return self.location.get("message_id")

    async def __call__(self, event: KbProgress) -> None:
        part = status_part(event.text)
        if event.finished:
            await self._latest.close()
            try:
                await self._final(part)
            finally:
                await self.close()
        elif self.message_id is None:
            await self._post(part, FIRST)
        else:
            self._latest.push(event.text)

    async def close(self) -> None:
        """Stop intermediate writes (idempotent); called at the end, or when the upload is cancelled."""
        await self._latest.close()
        if self._on_close is not None:
            callback, self._on_close = self._on_close, None
            callback(self)

    # ------------------------------------------------------------------ writes

    async def _post(self, part: Part, priority: int, *, paid: bool = False) -> None:
        sent = await self.writer.send(self.chat_id, part, priority=priority, thread_id=self.location.get("thread_id"),
                                      reply_to=self.location.get("reply_to"), paid=paid)
        self.location["message_id"] = sent.message_id
        self.shown = part

    async def _final(self, part: Part) -> None:
        if self.message_id is None:
            await self._post(part, FINAL)
        elif part != self.shown:
            if not await self.writer.edit(self.chat_id, self.message_id, part, priority=FINAL):
                self.location["message_id"] = None  # deleted meanwhile: the result gets a new message
                await self._post(part, FINAL)
                return
            self.shown = part

    async def _acquire(self, priority: int) -> None:
        """Budget for the next intermediate edit (called by the LatestWriter; never raises)."""
        gap = self._last_write + self._interval - time.monotonic()
        if gap > 0:
            await asyncio.sleep(gap)  # pacing: one status must not spend the chat's budget alone
        with contextlib.suppress(Exception):
            await self.writer.acquire("message", self.chat_id, priority)
            self._prepaid = True

    async def _send(self, markdown: str) -> None:
        paid, self._prepaid = self._prepaid, False
        part = status_part(markdown)
        if part == self.shown or self.message_id is None:
            return
        try:
            if await self.writer.edit(self.chat_id, self.message_id, part, priority=FIRST, paid=paid):
                self.shown = part
        finally:
            self._last_write = time.monotonic()
