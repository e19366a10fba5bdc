"""`TelegramReplySink`: shows one growing answer in Telegram.

Draft mode (private chats, unless refused or TELEGRAM_STREAM_MODE=edit): `sendMessageDraft` with the
growing answer, then `sendMessage` with the final text. Edit mode (groups, topics, refused drafts,
TELEGRAM_STREAM_MODE=edit): `sendMessage` at the first text (a reply to the user's message in
groups), then paced `editMessageText`. "typing…" is renewed until the first text shows. Answers
longer than one message continue in further messages (in draft mode the finished parts are sent as
messages and the draft shows the part being written). Intermediate writes are coalesced
(`LatestWriter`); endings go at FINAL priority and are retried on 429 until they land.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from telegram.error import BadRequest, InvalidToken, TelegramError

from adapters.shared.sink import PacedSink
from adapters.shared.pacing import FINAL, FIRST, LatestWriter
from adapters.shared.render import with_footer
from bots import messages

from .render import Part, render_parts
from .writer import TelegramWriter

log = logging.getLogger("adapters.telegram.sink")

REFUSAL_TTL = 3600.0  # try drafts again after an hour (the Bot API server may have been upgraded)
_draft_ids = itertools.count(secrets.randbelow(1 << 30) + 1)


class DraftRefusal:
    """Remembers (per bot) that Telegram refused sendMessageDraft."""

    def __init__(self, ttl: float = REFUSAL_TTL) -> None:
        self.ttl = ttl
        self._until = 0.0

    @property
    def refused(self) -> bool:
        return self._until > time.monotonic()

    def remember(self, error: str) -> None:
        log.info("Telegram refused sendMessageDraft (%s); using message edits for %.0f s", error, self.ttl)
        self._until = time.monotonic() + self.ttl


@dataclass(frozen=True)
class Target:
    """Where an answer goes and whose conversation it is."""

    chat_id: int
    private: bool
    thread_id: int | None = None  # forum topic (or private-chat topic)
    reply_to: int | None = None  # the user's message to reply to (groups)
    scope: str = ""
    dify_user: str = ""


@dataclass
class SinkEnv:
    """What every sink of one adapter shares."""

    writer: TelegramWriter
    refusal: DraftRefusal = field(default_factory=DraftRefusal)
    stream_mode: str = "auto"  # auto | draft | edit
    on_message: Callable[[Target, int], Awaitable[None]] | None = None  # a bot message was sent


@dataclass
class _Msg:
    message_id: int
    shown: Part


class TelegramReplySink(PacedSink):
    """A `ReplySink` for one Telegram answer (see module docstring)."""

    def __init__(self, env: SinkEnv, target: Target) -> None:
        self.env, self.t = env, target
        self.draft = target.private and env.stream_mode != "edit" and (
            env.stream_mode == "draft" or not env.refusal.refused)
        self.location: dict[str, Any] = {
            "chat_id": target.chat_id, "thread_id": target.thread_id, "reply_to": target.reply_to,
            "mode": "draft" if self.draft else "edit", "message_ids": [], "text": "", "entities": [],
        }
        self.writes = 0
        self._msgs: list[_Msg] = []
        self._draft_base = next(_draft_ids) * 64 % (1 << 31) or 1
        self._prefix = ""
        self._writer = LatestWriter(self._acquire, self._send)
        self._typing: asyncio.Task[None] | None = None
        self._prepaid: str | None = None
        self._priority = FIRST
        self._last_write = 0.0
        interval = "edit_interval" if target.private else "group_interval"
        self._interval = env.writer.options[interval]

    # ------------------------------------------------------------------ ReplySink

    async def start(self) -> None:
        self._typing = asyncio.create_task(self._keep_typing(), name="telegram-typing")

    # ------------------------------------------------------------------ typing

    async def _keep_typing(self) -> None:
        while True:
            try:
                await self.env.writer.typing(self.t.chat_id, self.t.thread_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a missing "typing…" is not worth an error
                log.debug("sendChatAction failed: %s", exc)
            await asyncio.sleep(self.env.writer.options["typing_interval"])

    async def _stop_typing(self) -> None:
        task, self._typing = self._typing, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ------------------------------------------------------------------ intermediate writes

    async def _acquire(self, priority: int) -> None:
        """Budget for the next intermediate write (called by the LatestWriter; never raises)."""
        if self.writes and not self.draft:
            gap = self._last_write + self._interval - time.monotonic()
            if gap > 0:
                await asyncio.sleep(gap)  # one answer must not spend the whole chat budget
        self._priority = priority
        kind = "draft" if self.draft else "message"
        with contextlib.suppress(Exception):
            await self.env.writer.acquire(kind, self.t.chat_id, priority)
            self._prepaid = kind

    def _paid(self, kind: str) -> bool:
        if self._prepaid == kind:
            self._prepaid = None
            return True
        return False

    async def _send(self, text: str) -> None:
        try:
            parts = render_parts(self._prefix + text)
            if not parts:
                return
            if self.draft:
                await self._show_draft(parts)
            else:
                await self._show_edits(parts, self._priority)
            await self._stop_typing()
        finally:
            self._prepaid = None
            self._last_write = time.monotonic()

    async def _show_draft(self, parts: list[Part]) -> None:
        for i, part in enumerate(parts[:-1]):  # finished parts become messages
            await self._put(i, part, FIRST)
        index = len(parts) - 1
        try:
            await self.env.writer.draft(self.t.chat_id, self._draft_base + index, parts[-1],
                                        priority=self._priority, thread_id=self.t.thread_id,
                                        paid=self._paid("draft"))
            self.writes += 1
        except (BadRequest, InvalidToken) as exc:  # InvalidToken: PTB's name for a 404 (unknown method)
            if self.env.stream_mode != "draft":
                self.env.refusal.remember(str(exc))
            self.draft = False
            self.location = {**self.location, "mode": "edit"}
            await self._show_edits(parts, self._priority)

    async def _show_edits(self, parts: list[Part], priority: int) -> None:
        for i, part in enumerate(parts):
            await self._put(i, part, priority if i == len(parts) - 1 else FINAL)

    # ------------------------------------------------------------------ final writes

    async def _finalize(self, body: str, footer: str | None) -> None:
        await self._stop_typing()
        await self._writer.close()
        markdown = with_footer(self._prefix + body, footer) if footer else self._prefix + body
        parts = render_parts(markdown) or render_parts(messages.EMPTY_ANSWER)
        for i, part in enumerate(parts):
            await self._put(i, part, FINAL)
        for msg in self._msgs[len(parts):]:  # the answer got shorter (Dify replaced it)
            with contextlib.suppress(TelegramError):
                await self.env.writer.delete(self.t.chat_id, msg.message_id)
        del self._msgs[len(parts):]
        self.location = {**self.location, "mode": "done"}
        self._save_location()

    # ------------------------------------------------------------------ Telegram calls

    async def _put(self, i: int, part: Part, priority: int) -> None:
        """Make message `i` of the answer show `part` (edit it, or send it when it doesn't exist)."""
        writer, t = self.env.writer, self.t
        if i < len(self._msgs):
            msg = self._msgs[i]
            if msg.shown == part:
                return
            if await writer.edit(t.chat_id, msg.message_id, part, priority=priority, paid=self._paid("message")):
                msg.shown = part
                self.writes += 1
                self._save_location()
                return
            del self._msgs[i:]  # deleted or too old: send it again
        sent = await writer.send(t.chat_id, part, priority=priority, thread_id=t.thread_id,
                                 reply_to=t.reply_to if i == 0 else None, paid=self._paid("message"))
        self._msgs.append(_Msg(sent.message_id, part))
        self.writes += 1
        self._save_location()
        if self.env.on_message is not None:
            try:
                await self.env.on_message(t, sent.message_id)
            except Exception:  # noqa: BLE001 - replies to this message then start a new conversation
                log.exception("could not remember answer message %s", sent.message_id)

    def _save_location(self) -> None:
        last = self._msgs[-1].shown if self._msgs else Part("")
        self.location = {
            **self.location, "message_ids": [m.message_id for m in self._msgs],
            "text": last.text, "entities": [dict(e) for e in last.entities],
        }
