"""Every Telegram write goes through here: ONE `Pacer` for the bot, flood budgets, 429 and error handling.

Budgets (sliding windows; Telegram publishes no exact limits, these follow the Bot FAQ):

| key | default | spent by |
|---|---|---|
| `global` | 30 per 1 s | every message, edit and draft of the bot |
| `per_chat` | 3 per 3 s (1/s with bursts of 3) | messages and edits in one chat |
| `per_group` | 20 per 60 s | messages and edits in one group |
| `group_updates` | 15 per 60 s | *intermediate* edits in one group (keeps room for first and final writes) |
| `drafts` | 2 per 1 s | sendMessageDraft in one private chat (**UNVERIFIED**: no documented limit) |

Options: `edit_interval` (1.0 s) and `group_interval` (3.0 s) are the smallest gaps between two
intermediate writes of one answer in a private chat / a group; `typing_interval` (4.0 s) renews the
"typing…" action. `TELEGRAM_LIMITS` (JSON) overrides any of them: `{"per_group": [20, 60],
"edit_interval": 0.5}` (a budget is `[limit, seconds]` or `{"limit": n, "per": s}`).

A 429 (`RetryAfter`) blocks the chat's budgets for `retry_after` seconds; a FINAL write then waits
and tries again (never the reason an ending is lost), other writes give up (the next one carries the
newer text anyway). "message is not modified" counts as success, and "can't parse entities" is
answered by sending the same text without entities.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dtm
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, TypeVar

from telegram import Bot, LinkPreviewOptions, Message, ReplyParameters
from telegram.error import BadRequest, NetworkError, RetryAfter

from bots.metrics import Metrics

from adapters.shared.pacing import parse_rate, FINAL, UPDATE, Pacer, Rate

from .render import Part

log = logging.getLogger("adapters.telegram.writer")

T = TypeVar("T")

DEFAULT_RATES: dict[str, Rate] = {
    "global": Rate(30, 1.0),
    "per_chat": Rate(3, 3.0),
    "per_group": Rate(20, 60.0),
    "group_updates": Rate(15, 60.0),
    "drafts": Rate(2, 1.0),
}
DEFAULT_OPTIONS: dict[str, float] = {"edit_interval": 1.0, "group_interval": 3.0, "typing_interval": 4.0}
FINAL_ATTEMPTS = 50  # a final write refused this often is a bug somewhere, not Telegram being busy
NETWORK_ATTEMPTS = 3
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def parse_limits(overrides: Mapping[str, Any]) -> tuple[dict[str, Rate], dict[str, float]]:
    """Default budgets and options with `TELEGRAM_LIMITS` applied; raises ValueError naming a bad entry."""
    rates, options = dict(DEFAULT_RATES), dict(DEFAULT_OPTIONS)
    for name, value in overrides.items():
        if name in DEFAULT_OPTIONS:
            options[name] = float(value)
            continue
        if name not in DEFAULT_RATES:
            raise ValueError(f"TELEGRAM_LIMITS[{name!r}] is unknown; use one of {sorted([*rates, *options])}")
        rates[name] = parse_rate("TELEGRAM_LIMITS", name, value)
    return rates, options


def retry_seconds(exc: RetryAfter) -> float:
    value = exc.retry_after  # int or timedelta depending on PTB settings
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def error_text(exc: BaseException) -> str:
    return str(getattr(exc, "message", "") or exc).lower()


def is_not_modified(exc: BaseException) -> bool:
    return isinstance(exc, BadRequest) and "not modified" in error_text(exc)


def is_entity_error(exc: BaseException) -> bool:
    return isinstance(exc, BadRequest) and "entit" in error_text(exc)


class TelegramWriter:
    """Paces and performs the bot's writes (see module docstring)."""

    def __init__(self, bot: Bot, limits: Mapping[str, Any] | None = None, metrics: Metrics | None = None) -> None:
        self.bot = bot
        self.metrics = metrics
        self.rates, self.options = parse_limits(limits or {})
        self.pacer = Pacer()
        self.calls: collections.Counter[str] = collections.Counter()
        self.ratelimited = 0

    def budgets(self, kind: str, chat_id: int, priority: int) -> list[tuple[Hashable, Rate]]:
        """`kind` is "message" (send / edit) or "draft"."""
        rates = self.rates
        out: list[tuple[Hashable, Rate]] = [(("global",), rates["global"])]
        if kind == "draft":
            out.append((("draft", chat_id), rates["drafts"]))
            return out
        out.append((("chat", chat_id), rates["per_chat"]))
        if chat_id < 0:
            out.append((("group", chat_id), rates["per_group"]))
            if priority == UPDATE:
                out.append((("group_updates", chat_id), rates["group_updates"]))
        return out

    async def acquire(self, kind: str, chat_id: int, priority: int) -> None:
        await self.pacer.acquire(self.budgets(kind, chat_id, priority), priority)

    async def call(self, kind: str, chat_id: int, priority: int, method: str,
                   fn: Callable[[], Awaitable[T]], *, paid: bool = False) -> T:
        """One paced write. `paid`: the budget was already acquired."""
        attempts = 0
        while True:
            if not paid:
                await self.acquire(kind, chat_id, priority)
            paid = False
            attempts += 1
            self.calls[method] += 1
            if self.metrics is not None:
                self.metrics.platform_writes.labels("telegram", method).inc()
            try:
                return await fn()
            except RetryAfter as exc:
                self.ratelimited += 1
                if self.metrics is not None:
                    self.metrics.platform_ratelimited.labels("telegram").inc()
                seconds = retry_seconds(exc)
                keys = [key for key, _ in self.budgets(kind, chat_id, priority) if key != ("global",)]
                self.pacer.block(keys, seconds)
                log.warning("Telegram flood control on %s in chat %s: retry after %.0f s", method, chat_id, seconds)
                if priority != FINAL or attempts >= FINAL_ATTEMPTS:
                    raise
            except BadRequest:
                raise
            except NetworkError as exc:
                if priority != FINAL or attempts >= NETWORK_ATTEMPTS:
                    raise
                log.warning("Telegram %s failed (%s); trying again", method, type(exc).__name__)
                await asyncio.sleep(0.5 * attempts)

    # ------------------------------------------------------------------ messages

    async def send(self, chat_id: int, part: Part, *, priority: int, thread_id: int | None = None,
                   reply_to: int | None = None, paid: bool = False) -> Message:
        """sendMessage with text + entities; without entities if Telegram can't take them."""
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None

        def attempt(p: Part) -> Callable[[], Awaitable[Message]]:
            return lambda: self.bot.send_message(
                chat_id, p.text, entities=p.ptb_entities(), message_thread_id=thread_id,
                reply_parameters=reply, link_preview_options=NO_PREVIEW)

        try:
            return await self.call("message", chat_id, priority, "sendMessage", attempt(part), paid=paid)
        except BadRequest as exc:
            if not (part.entities and is_entity_error(exc)):
                raise
            log.warning("Telegram refused the formatting (%s); sending plain text", exc)
            return await self.call("message", chat_id, priority, "sendMessage", attempt(part.plain()))

    async def edit(self, chat_id: int, message_id: int, part: Part, *, priority: int, paid: bool = False) -> bool:
        """editMessageText; True when the message shows `part` (also "not modified"), False when the
        message can't be edited any more (deleted, too old): the caller sends a new one."""

        def attempt(p: Part) -> Callable[[], Awaitable[Any]]:
            return lambda: self.bot.edit_message_text(
                p.text, chat_id=chat_id, message_id=message_id, entities=p.ptb_entities(),
                link_preview_options=NO_PREVIEW)

        try:
            await self.call("message", chat_id, priority, "editMessageText", attempt(part), paid=paid)
        except BadRequest as exc:
            if is_not_modified(exc):
                return True
            text = error_text(exc)
            if "not found" in text or "can't be edited" in text:
                return False
            if not (part.entities and is_entity_error(exc)):
                raise
            log.warning("Telegram refused the formatting (%s); editing to plain text", exc)
            try:
                await self.call("message", chat_id, priority, "editMessageText", attempt(part.plain()))
            except BadRequest as again:
                if not is_not_modified(again):
                    raise
        return True

    async def draft(self, chat_id: int, draft_id: int, part: Part, *, priority: int,
                    thread_id: int | None = None, paid: bool = False) -> None:
        """sendMessageDraft (private chats). Raises what Telegram says; the sink decides on refusals."""

        def attempt(p: Part) -> Callable[[], Awaitable[Any]]:
            return lambda: self.bot.send_message_draft(
                chat_id, draft_id, p.text, message_thread_id=thread_id, entities=p.ptb_entities())

        try:
            await self.call("draft", chat_id, priority, "sendMessageDraft", attempt(part), paid=paid)
        except BadRequest as exc:
            if not (part.entities and is_entity_error(exc)):
                raise
            await self.call("draft", chat_id, priority, "sendMessageDraft", attempt(part.plain()))

    async def typing(self, chat_id: int, thread_id: int | None) -> None:
        """sendChatAction(typing): not paced (it is no message) and never retried."""
        self.calls["sendChatAction"] += 1
        await self.bot.send_chat_action(chat_id, "typing", message_thread_id=thread_id)

    async def delete(self, chat_id: int, message_id: int) -> None:
        self.calls["deleteMessage"] += 1
        await self.bot.delete_message(chat_id, message_id)
