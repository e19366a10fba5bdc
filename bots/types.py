"""The neutral contract between adapters and the engine.

An adapter turns a platform event into an `Incoming` and gives the engine a `ReplySink` that knows
how to show a growing answer on its platform. The engine never imports Slack or Telegram code;
adapters never see Dify's wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file the user sent with a message (downloaded lazily by its adapter)."""

    name: str
    mime_type: str | None
    size: int | None
    ref: Any = None  # adapter-owned handle (Slack file object, Telegram file_id…)


@dataclass(frozen=True, slots=True)
class Incoming:
    """One user message, stripped of its platform.

    `scope` identifies the conversation (a Slack thread, a Telegram chat or topic…); everyone who
    writes in one scope continues the same Dify conversation. `dify_user` is the Dify `user` to use
    when this message *starts* a conversation (`slack:<team>:<user>`, `telegram:<user_id>`).
    """

    platform: str
    scope: str
    user_id: str
    dify_user: str
    text: str
    attachments: tuple[Attachment, ...] = ()
    app: str | None = None
    received_at: float | None = None  # time.monotonic() when the platform event arrived


@dataclass(frozen=True, slots=True)
class FinalAnswer:
    text: str
    conversation_id: str | None = None
    message_id: str | None = None
    task_id: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    retriever_resources: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something went wrong; `text` is the one short line to show the user."""

    kind: str
    text: str
    partial: str = ""  # the part of the answer already shown, kept above a "stopped" footer


class ReplySink(Protocol):
    """Shows one answer on a platform. Called by the engine, in this order:

    `start()` once (sign of life), then `update(text)` any number of times with the *whole* answer
    so far (the sink coalesces and paces writes), optionally `notice(line)`, and finally exactly
    one of `finish(answer)` or `fail(problem)`. `location` is where the answer lives (channel,
    message id…): the engine stores every change, in order and off the answer's path, so a restart
    can finish an interrupted answer.
    """

    location: dict[str, Any]

    async def start(self) -> None: ...

    async def update(self, text: str) -> None: ...

    async def notice(self, text: str) -> None: ...

    async def finish(self, answer: FinalAnswer) -> None: ...

    async def fail(self, problem: Problem) -> None: ...
