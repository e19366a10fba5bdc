"""`SlackReplySink`: shows one growing answer in Slack.

Native mode (a thread to stream into, not refused): sign of life with `assistant.threads.setStatus`
(else an empty `chat.startStream`), then `chat.startStream` / `appendStream` / `stopStream` with
`markdown_text`. Update mode (top-level DMs, refused streams, SLACK_STREAM_MODE=update): a
placeholder `chat.postMessage`, paced `chat.update`s, and a final `markdown` block. An expired stream
is finished with `chat.update` on the same message. Answers longer than one message continue in
further messages of the thread. Intermediate writes are coalesced (`LatestWriter`); finals go at
FINAL priority and are retried on 429 until they land.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters.shared.sink import PacedSink
from adapters.shared.pacing import FINAL, FIRST, LatestWriter
from adapters.shared.render import close_open_fence
from bots import messages

from .pacing import slack_error
from .render import final_parts, final_payload, neutralize, split_parts, stable_prefix
from .target import NOT_STREAMING, TRANSIENT, SinkEnv, Target

log = logging.getLogger("adapters.slack.sink")

STATUS_BUDGET_WAIT = 0.5  # a sign of life that cannot be sent this soon is skipped


@dataclass
class _Msg:
    ts: str
    shown: str = ""  # the part text this message shows (neutralized Markdown)
    streaming: bool = False  # a live native stream (appendStream/stopStream apply)
    done: bool = False  # final content written


class SlackReplySink(PacedSink):
    """A `ReplySink` for one Slack answer (see module docstring)."""

    def __init__(self, env: SinkEnv, target: Target) -> None:
        self.env, self.t = env, target
        refused = env.refusals.refused(target.team, target.channel_type, "stream")
        self.native = target.thread_ts is not None and env.stream_mode != "update" and (
            env.stream_mode == "native" or not refused)
        self.location: dict[str, Any] = {
            "team": target.team, "channel": target.channel, "thread_ts": target.thread_ts,
            "mode": "native" if self.native else "update", "ts": None, "text": "",
        }
        self.calls = 0
        self._msgs: list[_Msg] = []
        self._prefix = ""
        self._writer = LatestWriter(self._acquire, self._send)
        self._life: asyncio.Task[None] | None = None
        self._life_sending = False
        self._prepaid: str | None = None
        self._priority = FIRST
        self._last_write = 0.0

    # ------------------------------------------------------------------ ReplySink

    async def start(self) -> None:
        self._life = asyncio.create_task(self._sign_of_life(), name="slack-sign-of-life")

    # ------------------------------------------------------------------ sign of life

    async def _sign_of_life(self) -> None:
        """Native: a thread status (else, if Slack refuses statuses here, an empty stream). Update mode:
        the placeholder message. Under a burst, a native answer whose status cannot be sent within
        STATUS_BUDGET_WAIT goes without: its first words come as soon as the budgets allow."""
        try:
            if self.native:
                if await self._status() != "refused":
                    return
                if await self._prepay("chat.startStream", STATUS_BUDGET_WAIT):
                    await self._create("", FIRST)
            elif await self._prepay("chat.postMessage", None):
                await self._create("", FIRST)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the answer itself will still be written
            log.warning("Slack sign of life failed: %s", slack_error(exc) or type(exc).__name__)

    async def _prepay(self, method: str, wait: float | None) -> bool:
        """Budget for the sign of life, if granted within `wait` seconds; from then on it is not cancelled."""
        try:
            async with asyncio.timeout(wait):
                await self.env.writer.acquire(self.t.team, method, {"channel": self.t.channel}, FIRST)
        except TimeoutError:
            return False
        self._prepaid, self._life_sending = method, True
        return True

    async def _status(self) -> str:
        """"shown", "busy" (no budget soon, or 429) or "refused" (remembered for the channel type)."""
        t = self.t
        if self.env.refusals.refused(t.team, t.channel_type, "status"):
            return "refused"
        method = "assistant.threads.setStatus"
        args = {"channel_id": t.channel, "thread_ts": t.thread_ts, "status": messages.WORKING_STATUS}
        try:
            async with asyncio.timeout(STATUS_BUDGET_WAIT):
                await self.env.writer.acquire(t.team, method, args, FIRST)
        except TimeoutError:
            return "busy"
        try:
            await self._call(method, args, FIRST, paid=True)
            return "shown"
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in TRANSIENT or exc.response.status_code == 429:
                return "busy"
            self.env.refusals.remember(t.team, t.channel_type, "status", error)
            return "refused"

    async def _stop_life(self) -> None:
        life = self._life
        if life is None or life.done():
            return
        if not self._life_sending:
            life.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await life

    # ------------------------------------------------------------------ intermediate writes

    async def _acquire(self, priority: int) -> None:
        """Budget for the next intermediate write (called by the LatestWriter; never raises)."""
        if self._life is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._life)
        gap = self._last_write + self.env.writer.answer_interval - time.monotonic()
        if gap > 0:
            await asyncio.sleep(gap)  # pacing: one answer must not spend the workspace's budget alone
        method, args = self._next_call()
        self._priority = priority
        with contextlib.suppress(Exception):
            await self.env.writer.acquire(self.t.team, method, args, priority)
            self._prepaid = method

    def _next_call(self) -> tuple[str, dict[str, Any]]:
        last = self._msgs[-1] if self._msgs else None
        if last is None:
            return ("chat.startStream" if self.native else "chat.postMessage"), {"channel": self.t.channel}
        return ("chat.appendStream" if last.streaming else "chat.update"), {"channel": self.t.channel}

    async def _send(self, text: str) -> None:
        try:
            view = neutralize(stable_prefix(self._prefix + text))
            if not view.strip():
                return  # nothing to show yet
            parts = split_parts(view)
            for i, part in enumerate(parts):
                if i < len(parts) - 1:
                    await self._write_final(i, part)
                else:
                    await self._write_growing(i, part, self._priority)
        finally:
            self._prepaid = None
            self._last_write = time.monotonic()

    async def _write_growing(self, i: int, part: str, priority: int) -> None:
        msg = self._msgs[i] if i < len(self._msgs) else None
        if msg is None:
            await self._create(part, priority)
        elif msg.streaming and part.startswith(msg.shown):
            if len(part) > len(msg.shown):
                await self._append(msg, part, priority)
        elif part != msg.shown:
            await self._update(msg, part, priority, final=False)

    # ------------------------------------------------------------------ final writes

    async def _finalize(self, body: str, footer: str | None) -> None:
        await self._stop_life()
        await self._writer.close()
        parts = final_parts(self._prefix + body, footer)
        for i, part in enumerate(parts):
            await self._write_final(i, part)
        for msg in self._msgs[len(parts):]:  # the answer got shorter (Dify replaced it)
            await self._write_final_msg(msg, "…")

    async def _write_final(self, i: int, part: str) -> None:
        if i < len(self._msgs):
            await self._write_final_msg(self._msgs[i], part)
            return
        await self._post(part, FINAL, final=True)

    async def _write_final_msg(self, msg: _Msg, part: str) -> None:
        if msg.done and msg.shown == part:
            return
        if msg.streaming:
            extends = part.startswith(msg.shown)
            try:
                stopped = await self._stop(msg, part[len(msg.shown):] if extends else "")
            except SlackApiError as exc:  # unexpected: end it with chat.update rather than leave it spinning
                log.warning("chat.stopStream failed (%s); finishing with chat.update", slack_error(exc))
                stopped = msg.streaming = False
            if stopped and extends:
                msg.shown, msg.done = part, True
                self._save_location()
                return
        await self._update(msg, part, FINAL, final=True)

    # ------------------------------------------------------------------ Slack calls

    async def _call(self, method: str, args: dict[str, Any], priority: int, *, paid: bool = False) -> Any:
        if self._prepaid == method:
            self._prepaid, paid = None, True
        self.calls += 1
        return await self.env.writer.call(self.t.team, method, args, priority, paid=paid)

    def _thread(self) -> dict[str, Any]:
        return {"thread_ts": self.t.thread_ts} if self.t.thread_ts else {}

    async def _create(self, part: str, priority: int) -> None:
        if self.native:
            await self._start_stream(part, priority)
        else:
            await self._post(part, priority, final=False)

    async def _start_stream(self, part: str, priority: int) -> None:
        t = self.t
        args: dict[str, Any] = {"channel": t.channel, **self._thread()}
        if part:
            args["markdown_text"] = part
        if t.channel_type != "im":
            args.update(recipient_user_id=t.user, recipient_team_id=t.user_team or t.team)
        try:
            resp = await self._call("chat.startStream", args, priority)
        except SlackApiError as exc:
            error = slack_error(exc)
            if exc.response.status_code == 429:
                raise
            if error not in TRANSIENT and self.env.stream_mode != "native":
                self.env.refusals.remember(t.team, t.channel_type, "stream", error)
            log.info("native stream refused (%s); falling back to chat.postMessage + chat.update", error)
            self.native = False
            await self._post(part, priority, final=False)
            return
        self._msgs.append(_Msg(ts=resp["ts"], shown=part, streaming=True))
        self._save_location()

    async def _post(self, part: str, priority: int, *, final: bool) -> None:
        args: dict[str, Any] = {"channel": self.t.channel, **self._thread()}
        if final:
            args.update(final_payload(part))
        else:
            args["markdown_text"] = close_open_fence(part) if part else messages.THINKING
        resp = await self._call("chat.postMessage", args, priority)
        self._msgs.append(_Msg(ts=resp["ts"], shown=part, done=final))
        self._save_location()

    async def _append(self, msg: _Msg, part: str, priority: int) -> None:
        args = {"channel": self.t.channel, "ts": msg.ts, "markdown_text": part[len(msg.shown):]}
        try:
            await self._call("chat.appendStream", args, priority)
        except SlackApiError as exc:
            if slack_error(exc) not in NOT_STREAMING:
                raise
            msg.streaming = False  # the stream expired: continue on the same message with chat.update
            await self._update(msg, part, priority, final=False)
            return
        msg.shown = part
        self._save_location()

    async def _stop(self, msg: _Msg, delta: str) -> bool:
        """Stop a live stream, appending `delta`; False when the stream had already ended."""
        args: dict[str, Any] = {"channel": self.t.channel, "ts": msg.ts}
        if delta:
            args["markdown_text"] = delta
        try:
            await self._call("chat.stopStream", args, FINAL)
        except SlackApiError as exc:
            if slack_error(exc) not in NOT_STREAMING:
                raise
            msg.streaming = False
            return False
        msg.streaming = False
        return True

    async def _update(self, msg: _Msg, part: str, priority: int, *, final: bool) -> None:
        args: dict[str, Any] = {"channel": self.t.channel, "ts": msg.ts}
        if final:
            args.update(final_payload(part))
        else:
            args["markdown_text"] = close_open_fence(part) if part else messages.THINKING
        try:
            await self._call("chat.update", args, priority)
        except SlackApiError as exc:
            if slack_error(exc) != "message_not_found":
                raise
            del args["ts"]  # someone deleted the message: post the part again
            msg.ts = (await self._call("chat.postMessage", {**args, **self._thread()}, priority))["ts"]
        msg.shown, msg.streaming, msg.done = part, False, final
        self._save_location()

    def _save_location(self) -> None:
        last = self._msgs[-1]
        self.location = {
            **self.location, "ts": last.ts, "text": last.shown, "part": len(self._msgs) - 1,
            "mode": "native" if last.streaming else "update",
        }
