"""The conversation engine: one `Incoming` in, one answer streamed into a `ReplySink`.

It knows Dify and conversations, nothing of Slack or Telegram; it reaches storage only through
the repository. Messages in one scope are answered in order; scopes never wait for each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from storage import Repository
from storage.repository import ReplyRecord

from . import messages
from .dify import (
    AgentMessageEvent,
    DifyClient,
    DifyConversationNotFound,
    DifyError,
    DifyTransportError,
    MessageEndEvent,
    MessageEvent,
    MessageFileEvent,
    MessageReplaceEvent,
)
from .inputs import InputsResolver
from .metrics import Metrics
from .types import FinalAnswer, Incoming, Problem, ReplySink

log = logging.getLogger("bots.engine")


@dataclass
class DifyApp:
    """One Dify app the bridge can route to (one today; the engine takes a table of them)."""

    name: str
    client: DifyClient
    inputs: dict[str, Any] = field(default_factory=dict)


class ScopeLocks:
    """One lock per scope, created on demand and dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, list[Any]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        entry = self._locks.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                self._locks.pop(key, None)


class Engine:
    def __init__(
        self,
        *,
        repo: Repository,
        apps: dict[str, DifyApp],
        default_app: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if not apps:
            raise ValueError("at least one Dify app is needed")
        self.repo = repo
        self.apps = apps
        self.default_app = default_app or next(iter(apps))
        self.metrics = metrics or Metrics()
        self.locks = ScopeLocks()
        self.accepting = True
        self._inputs = {name: InputsResolver(app.client, app.inputs) for name, app in apps.items()}
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ task ownership

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run `coro` in a task the engine owns (cancelled by `drain` at shutdown)."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, grace: float) -> None:
        """Stop taking work, give running answers `grace` seconds, then cancel the rest."""
        self.accepting = False
        pending = set(self._tasks)
        if pending and grace > 0:
            _, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    # ------------------------------------------------------------------ routing and commands

    def app_for(self, incoming: Incoming) -> DifyApp:
        return self.apps.get(incoming.app or self.default_app) or self.apps[self.default_app]

    async def new_conversation(self, platform: str, scope: str, app: str | None = None) -> bool:
        """`/new`: forget the scope's conversation. True if there was one."""
        name = app or self.default_app
        async with self.locks.hold(f"{platform}|{scope}|{name}"):
            return await self.repo.delete_conversation(platform, scope, name)

    async def missing_inputs(self, app: str | None = None) -> list[str]:
        _, missing = await self._inputs[app or self.default_app].resolve()
        return missing

    async def interrupted_replies(self, platform: str) -> list[ReplyRecord]:
        """Answers a crash left `streaming`, for the adapter to finish as interrupted."""
        return await self.repo.replies_in_state("streaming", platform)

    async def mark_reply(self, reply_id: int, state: str, error: str | None = None) -> None:
        await self.repo.update_reply(reply_id, state=state, error=error)

    # ------------------------------------------------------------------ answering

    async def handle(self, incoming: Incoming, sink: ReplySink) -> FinalAnswer | None:
        """Answer one message; never raises for Dify or sink trouble (the user sees a line)."""
        app = self.app_for(incoming)
        async with self.locks.hold(f"{incoming.platform}|{incoming.scope}|{app.name}"):
            return await self._answer(app, incoming, sink)

    async def _answer(self, app: DifyApp, incoming: Incoming, sink: ReplySink) -> FinalAnswer | None:
        repo, platform = self.repo, incoming.platform
        run = _Run(location=dict(sink.location))
        self.metrics.in_flight.inc()
        try:
            # The `replies` row is written in the background, first in this answer's ordered chain
            # of progress writes; the sign of life and the lookups the Dify request needs run at once.
            self._persist(run, lambda: self._create_reply(run, incoming, app))
            _, mapping, (inputs, missing) = await asyncio.gather(
                sink.start(),
                repo.get_conversation(platform, incoming.scope, app.name),
                self._inputs[app.name].resolve(),
            )
            self._save_location(run, sink)
            if missing:
                await self._fail(run, sink, platform, messages.inputs_missing(missing))
                return None
            try:
                answer = await self._stream(app, incoming, sink, run, mapping, inputs)
            except DifyConversationNotFound as exc:
                if exc.mid_stream or mapping is None:
                    raise
                log.info("conversation %s is gone in Dify; starting a new one", mapping.conversation_id)
                await repo.delete_conversation(platform, incoming.scope, app.name)
                await sink.notice(messages.CONVERSATION_RESTARTED)
                answer = await self._stream(app, incoming, sink, run, None, inputs)
            await sink.finish(answer)
            await self._settle(run)
            await self._update_reply(run, state="done", location=dict(sink.location))
            self.metrics.answers.labels(platform, "done").inc()
            return answer
        except DifyError as exc:
            log.warning("answer failed: %s: %s", type(exc).__name__, exc)
            self.metrics.errors.labels(exc.kind).inc()
            await self._fail(run, sink, platform, messages.problem_for(exc))
        except asyncio.CancelledError:
            await asyncio.shield(self._interrupt(app, run, sink, platform))
            raise
        except Exception:
            log.exception("unexpected error while answering")
            self.metrics.errors.labels("internal").inc()
            await self._fail(run, sink, platform, Problem("internal", messages.UNEXPECTED, run.text))
        finally:
            self.metrics.in_flight.dec()
        return None

    async def _stream(
        self,
        app: DifyApp,
        incoming: Incoming,
        sink: ReplySink,
        run: _Run,
        mapping: Any,
        inputs: dict[str, Any],
    ) -> FinalAnswer:
        run.user = mapping.dify_user if mapping else incoming.dify_user
        conversation_id = mapping.conversation_id if mapping else None
        started = time.monotonic()
        first_text_at: float | None = None
        text, end, files = "", None, []
        events = app.client.stream_chat(
            query=incoming.text, user=run.user, conversation_id=conversation_id, inputs=inputs
        )
        async with contextlib.aclosing(events):
            async for event in events:
                if event.conversation_id and event.conversation_id != conversation_id:
                    conversation_id = event.conversation_id
                    self._persist(run, functools.partial(
                        self.repo.save_conversation, incoming.platform, incoming.scope, conversation_id, run.user, app.name
                    ))
                if event.task_id and run.task_id is None:
                    run.task_id = event.task_id
                    self._persist(run, functools.partial(
                        self._update_reply, run,
                        dify_task_id=event.task_id,
                        dify_message_id=event.message_id,
                        conversation_id=conversation_id,
                    ))
                if isinstance(event, (MessageEvent, AgentMessageEvent)):
                    if not event.answer:
                        continue
                    text += event.answer
                elif isinstance(event, MessageReplaceEvent):
                    text = event.answer
                elif isinstance(event, MessageEndEvent):
                    end = event
                    continue
                elif isinstance(event, MessageFileEvent):
                    files.append({"type": event.type, "url": event.url, "belongs_to": event.belongs_to})
                    continue
                else:
                    continue
                if first_text_at is None:
                    first_text_at = time.monotonic()
                    self.metrics.ttft.observe(first_text_at - started)
                run.text = text
                await sink.update(text)
                self._save_location(run, sink)
        self.metrics.duration.observe(time.monotonic() - started)
        if end is None:
            raise DifyTransportError(
                "the Dify stream ended before the answer was complete", partial_answer=text, mid_stream=True
            )
        return FinalAnswer(
            text=text or messages.EMPTY_ANSWER,
            conversation_id=end.conversation_id or conversation_id,
            message_id=end.message_id,
            task_id=end.task_id or run.task_id,
            usage=end.usage,
            retriever_resources=end.retriever_resources,
            files=files,
        )

    # ------------------------------------------------------------------ persistence off the hot path
    #
    # Writes that only matter after a crash or for the next message run in order in the background,
    # behind the writes the user is waiting for; `_settle` waits for them before the answer ends.

    def _persist(self, run: _Run, write: Callable[[], Awaitable[Any]]) -> None:
        previous = run.pending

        async def chained() -> None:
            if previous is not None:
                await asyncio.shield(previous)
            try:
                await write()
            except Exception:
                log.exception("could not save the answer's progress")

        run.pending = asyncio.ensure_future(chained())

    async def _settle(self, run: _Run) -> None:
        if run.pending is not None:
            await asyncio.shield(run.pending)

    async def _create_reply(self, run: _Run, incoming: Incoming, app: DifyApp) -> None:
        run.reply_id = await self.repo.create_reply(
            incoming.platform, incoming.scope, app=app.name, location=dict(run.location)
        )

    async def _update_reply(self, run: _Run, **fields: Any) -> None:
        if run.reply_id is not None:
            await self.repo.update_reply(run.reply_id, **fields)

    def _save_location(self, run: _Run, sink: ReplySink) -> None:
        """Save where the answer is (and the text it shows) whenever the sink reports a change:
        that happens once per platform write, which the pacer already bounds."""
        if sink.location != run.location:
            run.location = dict(sink.location)
            self._persist(run, functools.partial(self._update_reply, run, location=run.location))

    async def _fail(self, run: _Run, sink: ReplySink, platform: str, problem: Problem) -> None:
        if not problem.partial and run.text:
            problem = Problem(problem.kind, problem.text, run.text)
        try:
            await sink.fail(problem)
        except Exception:
            log.exception("could not show the error to the user")
        await self._settle(run)
        await self._update_reply(run, state="failed", error=problem.kind, location=dict(sink.location))
        self.metrics.answers.labels(platform, "failed").inc()

    async def _interrupt(self, app: DifyApp, run: _Run, sink: ReplySink, platform: str) -> None:
        """Cancelled (shutdown, Ctrl-C): stop Dify's generation and end the answer visibly."""
        if run.task_id and run.user:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await app.client.stop(run.task_id, run.user)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await sink.fail(Problem("interrupted", messages.SHUTTING_DOWN, run.text))
        with contextlib.suppress(Exception):
            await self._settle(run)
            await self._update_reply(run, state="interrupted", location=dict(sink.location))
        self.metrics.answers.labels(platform, "interrupted").inc()


@dataclass
class _Run:
    location: dict[str, Any]
    reply_id: int | None = None
    text: str = ""
    task_id: str | None = None
    user: str | None = None
    pending: asyncio.Future[None] | None = None
