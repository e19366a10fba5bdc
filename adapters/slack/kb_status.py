"""One Slack status message per knowledge-base upload, edited through the SlackWriter as the upload goes on.

The first step posts the message and waits for it, so its `ts` is in `location` before the pipeline
records the next step (a restart then finishes the same message). Intermediate steps are coalesced
(newest wins, paced like answer updates); the final ✅/❌ goes at FINAL priority and is retried on 429
until it lands. Where the bot cannot post (not a member of the conversation), only the final line is
shown, privately, through `fallback` (a slash command's or shortcut's `respond`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters.shared.pacing import FINAL, FIRST, LatestWriter
from bots.kb import KbProgress

from .pacing import SlackWriter, slack_error
from .render import neutralize

log = logging.getLogger("adapters.slack.kb")

Fallback = Callable[[str], Awaitable[Any]]
# Slack's answers meaning "the bot may not post here" (as opposed to "try again later").
CANNOT_POST = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action",
                         "cannot_dm_bot", "access_denied", "team_access_not_granted", "missing_scope"})
GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


def slack_text(markdown: str) -> str:
    """A status or list line as Slack mrkdwn text: `&`, `<`, `>` escaped, so no mention can ping."""
    return neutralize(markdown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


class SlackKbStatus:
    """A `ProgressCallback` showing one upload in one Slack message (see module docstring).

    `location`: team, channel, thread_ts (None: top level), ts (None until posted); `private: True`
    once the message could not be posted and only the fallback shows the result.
    """

    def __init__(self, writer: SlackWriter, location: dict[str, Any], fallback: Fallback | None = None,
                 on_close: Callable[[SlackKbStatus], None] | None = None) -> None:
        self.writer, self.fallback, self._on_close = writer, fallback, on_close
        self.location: dict[str, Any] = dict(location)
        self.shown: str | None = None
        self._latest = LatestWriter(self._acquire, self._send)
        self._last_write = 0.0

    @classmethod
    def new(cls, writer: SlackWriter, team: str, channel: str, thread_ts: str | None, *,
            fallback: Fallback | None = None, on_close: Callable[[SlackKbStatus], None] | None = None,
            ) -> SlackKbStatus:
        location = {"team": team, "channel": channel, "thread_ts": thread_ts, "ts": None}
        return cls(writer, location, fallback, on_close)

    @property
    def team(self) -> str:
        return str(self.location.get("team") or "")

    @property
    def ts(self) -> str | None:
        return self.location.get("ts")

    async def __call__(self, event: KbProgress) -> None:
        text = slack_text(event.text)
        if self.location.get("private"):
            if event.finished:
                if self.fallback is not None:
                    await self.fallback(text)
                await self.close()
            return
        if event.finished:
            await self._latest.close()
            try:
                await self._final(text)
            finally:
                await self.close()
        elif self.ts is None:
            await self._post(text, FIRST)
        else:
            self._latest.push(text)

    async def close(self) -> None:
        """Stop intermediate writes (idempotent); called at the end, or when the upload is cancelled."""
        await self._latest.close()
        if self._on_close is not None:
            callback, self._on_close = self._on_close, None
            callback(self)

    # ------------------------------------------------------------------ writes

    def _args(self, text: str) -> dict[str, Any]:
        args: dict[str, Any] = {"channel": self.location["channel"], "text": text}
        if self.ts:
            args["ts"] = self.ts
        elif self.location.get("thread_ts"):
            args["thread_ts"] = self.location["thread_ts"]
        return args

    async def _post(self, text: str, priority: int) -> None:
        """Post the message; a refusal to post switches to the fallback, a transient error waits for the next step."""
        try:
            answer = await self.writer.call(self.team, "chat.postMessage", self._args(text), priority)
        except SlackApiError as exc:
            error = slack_error(exc)
            if error not in CANNOT_POST:
                raise  # rate-limited or transient: the next step tries again
            log.info("cannot post a knowledge-base status in %s (%s)%s", self.location.get("channel"), error,
                     "; answering privately" if self.fallback else "")
            self.location["private"] = True  # no more attempts for this upload
            if priority == FINAL and self.fallback is not None:
                await self.fallback(text)
            return
        self.location["ts"] = answer.get("ts")
        self.shown = text

    async def _final(self, text: str) -> None:
        if self.ts is None:
            await self._post(text, FINAL)
            return
        if text == self.shown:
            return
        try:
            await self.writer.call(self.team, "chat.update", self._args(text), FINAL)
            self.shown = text
        except SlackApiError as exc:
            if slack_error(exc) not in GONE:
                raise
            self.location["ts"] = None  # the message was deleted: the result gets a new one
            await self._post(text, FINAL)

    async def _acquire(self, priority: int) -> None:
        """Budget for the next intermediate edit (called by the LatestWriter; never raises)."""
        gap = self._last_write + self.writer.answer_interval - time.monotonic()
        if gap > 0:
            await asyncio.sleep(gap)  # pacing: one status must not spend the workspace's budget alone
        try:
            await self.writer.acquire(self.team, "chat.update", {"channel": self.location["channel"]}, priority)
        except Exception:  # noqa: BLE001 - the write below is then simply not prepaid
            log.debug("no budget for a knowledge-base status edit", exc_info=True)

    async def _send(self, text: str) -> None:
        if text == self.shown or self.ts is None:
            return
        try:
            await self.writer.call(self.team, "chat.update", self._args(text), FIRST, paid=True)
            self.shown = text
        finally:
            self._last_write = time.monotonic()
