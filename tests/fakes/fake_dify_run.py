"""ChatRun: streams or blocks one chat-messages answer of the fake Dify server, following its Plan.

Streaming writes SSE like Dify: headers go out with the first event (or ping), events per mode as in the
recordings (chat 01, agent 70, chatflow 80), pings every `ping_every` seconds while waiting, message_end right
after a stop request (27), an `error` event for model failures (32, 83), and optional cut-offs (hang/drop).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from tests.fakes.fake_dify_events import MODEL_ERROR_015, PLUGIN_ERROR_JSON, Events, plugin_error
from tests.fakes.fake_dify_models import AGENT_PREAMBLE, GENERATED_TITLE, Conversation, Message, Plan
from tests.fakes.fake_dify_wire import Ctx, StreamWriter


class ChatRun:
    """Answers one chat-messages request according to its Plan."""

    def __init__(self, ctx: Ctx, plan: Plan, conv: Conversation, mode: str) -> None:
        self.ctx, self.fake, self.wire, self.plan, self.conv, self.mode = ctx, ctx.fake, ctx.wire, plan, conv, mode
        body = ctx.body
        self.query = str(body.get("query") or "")
        self.ev = Events(v1=self.wire.v1, mode=mode, query=self.query, user=conv.user, conversation_id=conv.id,
                         inputs=conv.inputs)
        self.deltas = plan.deltas(self.query, mode)
        self.auto_name = body.get("auto_generate_name", True) is not False
        self.dialogues = len(conv.messages)
        self.msg = Message(id=self.ev.message_id, conversation_id=conv.id, query=self.query, inputs=conv.inputs,
                           task_id=self.ev.task_id, files=list(body.get("files") or []))
        conv.messages.append(self.msg)
        self.stop = asyncio.Event()
        self.fake._tasks[self.ev.task_id] = (conv.user, self.stop)
        loop = asyncio.get_running_loop()
        self.next_ping = loop.time() + (plan.ping_every or 0)
        self.writer: StreamWriter | None = None
        self.sent = 0
        self._node_err: str | None = None

    # ---- failure texts -------------------------------------------------------------------

    def _cut(self) -> str | None:
        """What happens after `self.sent` deltas: "drop", "hang", "error" or nothing."""
        p = self.plan
        fail_at = p.error_after if p.error_after is not None else (0 if p.workflow_failed else None)
        for kind, at in (("drop", p.drop_after), ("hang", p.hang_after), ("error", fail_at)):
            if at is not None and self.sent == at:
                return kind
        return None

    def _failure(self, streaming: bool) -> tuple[str, str]:
        """(code, message) of the model failure, defaulting to the recordings of this version."""
        p, v1 = self.plan, self.wire.v1
        if self.mode == "advanced-chat":
            return p.error_code or "invalid_param", f"Run failed: {self._node_error()}"
        default = (PLUGIN_ERROR_JSON if streaming else plugin_error()) if v1 else MODEL_ERROR_015
        return p.error_code or ("invalid_param" if v1 else "completion_request_error"), p.error_message or default

    def _node_error(self) -> str:
        if self._node_err is None:  # one req_id per run, shared by node_finished, workflow_finished and error
            self._node_err = self.plan.error_message or (plugin_error() if self.wire.v1 else MODEL_ERROR_015)
        return self._node_err

    # ---- shared helpers ----------------------------------------------------------------

    @property
    def answer(self) -> str:
        return self.msg.answer

    def _finish_message(self, status: str = "normal", error: str | None = None) -> None:
        self.msg.status, self.msg.error = status, error
        self.msg.retriever_resources = list(self.plan.retriever_resources or [])
        self.conv.updated_at = self.msg.created_at
        if status == "normal" and self.auto_name and self.conv.name == "New conversation":
            self.conv.name = GENERATED_TITLE

    async def _hang_forever(self) -> None:
        await self.fake._closing.wait()  # only the server shutting down (or the client leaving) ends it
        await self._drop()

    async def _drop(self) -> None:
        if self.writer is not None:
            self.writer.abort()
        elif self.ctx.request.transport is not None:
            self.ctx.request.transport.abort()
        raise asyncio.CancelledError

    # ---- blocking ----------------------------------------------------------------------

    async def blocking(self) -> web.StreamResponse:
        p = self.plan
        try:
            await asyncio.sleep(p.first_token_delay)
            for i, token in enumerate(self.deltas):
                if (cut := self._cut()) is not None:
                    return await self._blocking_cut(cut)
                if i:
                    await asyncio.sleep(p.token_gap)
                self.msg.answer += token
                self.sent += 1
            if (cut := self._cut()) is not None:
                return await self._blocking_cut(cut)
            if p.replace_with is not None:
                self.msg.answer = p.replace_with
            self._finish_message()
            meta = self.ev.metadata(len(self.deltas), p.retriever_resources)
            body = self.wire.blocking(self.ev.blocking(self.answer, meta))
            resp = web.StreamResponse(status=200, reason="OK", headers={**self.wire.headers(),
                                                                         "Content-Type": self.wire.blocking_type})
            resp.content_length = len(body)
            self.writer = StreamWriter(self.ctx.request, resp, p.split_writes)
            await self.writer.write(body)
            return await self.writer.finish()
        finally:
            self.fake._tasks.pop(self.ev.task_id, None)

    async def _blocking_cut(self, cut: str) -> web.StreamResponse:
        if cut == "hang":
            await self._hang_forever()
        if cut == "drop":
            await self._drop()
        code, message = self._failure(streaming=False)
        self._finish_message("error", message)
        return self.wire.error(self.plan.error_status, code, message)

    # ---- streaming ---------------------------------------------------------------------

    async def _emit(self, obj: dict[str, Any]) -> None:
        assert self.writer is not None
        await self.writer.write(self.wire.sse(obj))

    async def _pause(self, seconds: float) -> bool:
        """Wait `seconds`, sending pings when due; False as soon as the task is stopped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        every = self.plan.ping_every
        while not self.stop.is_set():
            now = loop.time()
            if every and now >= self.next_ping:
                assert self.writer is not None
                await self.writer.write(self.wire.ping())
                self.next_ping = now + every
            if now >= deadline:
                return True
            wait = deadline - now if not every else min(deadline, self.next_ping) - now
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=max(wait, 0))
            except TimeoutError:
                pass
        return False

    async def stream(self) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, reason="OK", headers={
            **self.wire.headers(), "Content-Type": "text/event-stream; charset=utf-8"})
        self.writer = StreamWriter(self.ctx.request, resp, self.plan.split_writes)
        self.fake.active_streams += 1
        try:
            await self._stream_events()
            return await self.writer.finish()
        finally:
            self.fake.active_streams -= 1
            self.fake._tasks.pop(self.ev.task_id, None)
            await self.fake._notify()

    async def _stream_events(self) -> None:
        ev, p = self.ev, self.plan
        if not await self._pause(p.first_token_delay):
            return await self._end_stopped()
        if self.mode == "advanced-chat":
            for obj in (ev.workflow_started(self.dialogues), ev.node_started("start"),
                        ev.node_finished("start", dialogue_count=self.dialogues), ev.node_started("llm")):
                await self._emit(obj)
        elif self.mode == "agent-chat":
            final = "".join(self.deltas).removeprefix(AGENT_PREAMBLE) if p.replace_with is None else p.replace_with
            await self._emit(ev.agent_thought(final))
        for i, token in enumerate(self.deltas):
            if (cut := self._cut()) is not None:
                return await self._stream_cut(cut)
            if i and not await self._pause(p.token_gap):
                return await self._end_stopped()
            await self._emit(ev.delta(token))
            if self.msg.first_delta_at is None:
                self.msg.first_delta_at = time.monotonic()
            self.msg.answer += token
            self.sent += 1
        if (cut := self._cut()) is not None:
            return await self._stream_cut(cut)
        await self._end_normally()

    async def _end_normally(self) -> None:
        ev, p = self.ev, self.plan
        empties = {"chat": 1, "agent-chat": 0}.get(self.mode, 2 if self.wire.v1 else 1)
        for _ in range(empties):
            await self._emit(ev.delta(""))
        for extra in p.message_files or []:
            await self._emit(ev.message_file(extra))
        if p.replace_with is not None:
            await self._emit(ev.message_replace(p.replace_with))
            self.msg.answer = p.replace_with
        if self.mode == "advanced-chat":
            tokens = len(self.deltas)
            for obj in (ev.node_finished("llm", answer=self.answer, tokens=tokens), ev.node_started("answer"),
                        ev.node_finished("answer", answer=self.answer),
                        ev.workflow_finished("succeeded", self.answer, dialogue_count=self.dialogues, tokens=tokens)):
                await self._emit(obj)
        self._finish_message()
        await self._emit(ev.message_end(ev.metadata(len(self.deltas), p.retriever_resources)))
        self.msg.ended_at = time.monotonic()

    async def _end_stopped(self) -> None:
        """After a stop request Dify closes the answer at once with message_end (recording 27)."""
        if self.mode == "advanced-chat":
            await self._emit(self.ev.workflow_finished("stopped", self.answer, dialogue_count=self.dialogues,
                                                       error="Stopped by user.", steps=2))
        self._finish_message()
        await self._emit(self.ev.message_end(self.ev.metadata(self.sent, self.plan.retriever_resources, stopped=True)))

    async def _stream_cut(self, cut: str) -> None:
        if cut == "hang":
            await self._hang_forever()
        if cut == "drop":
            await self._drop()
        code, message = self._failure(streaming=True)
        if self.mode == "advanced-chat":
            node_error = self._node_error()
            await self._emit(self.ev.node_finished("llm", error=node_error))
            await self._emit(self.ev.workflow_finished("failed", self.answer, dialogue_count=self.dialogues,
                                                       error=node_error, steps=2))
        self._finish_message("error", message)
        await self._emit(self.ev.error(code, self.plan.error_status, message))

