"""Typed events of Dify's chat-family SSE stream.

Every `data:` frame is a JSON object whose `event` key names its type. `parse_event` turns one
decoded object into one of the dataclasses below; unknown types become `UnknownEvent` so a newer
Dify never breaks the stream. Pings are dropped before this point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class StreamEvent:
    event: str
    conversation_id: str | None
    message_id: str | None
    task_id: str | None
    created_at: int | None
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class MessageEvent(StreamEvent):
    """`message`: a text delta of a chat or chatflow answer."""

    answer: str = ""


@dataclass(frozen=True, slots=True)
class AgentMessageEvent(StreamEvent):
    """`agent_message`: a text delta of an agent answer."""

    answer: str = ""


@dataclass(frozen=True, slots=True)
class AgentThoughtEvent(StreamEvent):
    id: str | None = None
    position: int | None = None
    thought: str = ""
    observation: str = ""
    tool: str = ""
    tool_input: str = ""
    message_files: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MessageFileEvent(StreamEvent):
    id: str | None = None
    type: str = ""
    belongs_to: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class MessageReplaceEvent(StreamEvent):
    """`message_replace`: moderation replaced the whole answer with `answer`."""

    answer: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class MessageEndEvent(StreamEvent):
    metadata: dict[str, Any] = field(default_factory=dict)
    files: list[Any] | None = None

    @property
    def usage(self) -> dict[str, Any]:
        return self.metadata.get("usage") or {}

    @property
    def retriever_resources(self) -> list[dict[str, Any]]:
        return self.metadata.get("retriever_resources") or []


@dataclass(frozen=True, slots=True)
class TtsMessageEvent(StreamEvent):
    audio: str = ""


@dataclass(frozen=True, slots=True)
class TtsMessageEndEvent(StreamEvent):
    audio: str = ""


@dataclass(frozen=True, slots=True)
class WorkflowEvent(StreamEvent):
    """Workflow, node, iteration, loop, parallel-branch and agent-log events (payload in `data`)."""

    workflow_run_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WorkflowStartedEvent(WorkflowEvent):
    pass


@dataclass(frozen=True, slots=True)
class NodeStartedEvent(WorkflowEvent):
    pass


@dataclass(frozen=True, slots=True)
class NodeFinishedEvent(WorkflowEvent):
    @property
    def status(self) -> str:
        return str(self.data.get("status") or "")


@dataclass(frozen=True, slots=True)
class WorkflowFinishedEvent(WorkflowEvent):
    @property
    def status(self) -> str:
        return str(self.data.get("status") or "")

    @property
    def error(self) -> str:
        return str(self.data.get("error") or "")


@dataclass(frozen=True, slots=True)
class ErrorEvent(StreamEvent):
    """`error`: the stream failed; the same `{code, message, status}` as an HTTP error."""

    code: str = ""
    message: str = ""
    status: int | None = None


@dataclass(frozen=True, slots=True)
class UnknownEvent(StreamEvent):
    pass


_WORKFLOW_EVENTS: dict[str, type[WorkflowEvent]] = {
    "workflow_started": WorkflowStartedEvent,
    "node_started": NodeStartedEvent,
    "node_finished": NodeFinishedEvent,
    "workflow_finished": WorkflowFinishedEvent,
}
_GENERIC_WORKFLOW_PREFIXES = (
    "node_",
    "iteration_",
    "loop_",
    "parallel_branch_",
    "agent_log",
    "text_chunk",
    "text_replace",
    "reasoning_chunk",
    "workflow_",
    "human_input_",
)


def parse_event(obj: dict[str, Any]) -> StreamEvent:
    """Map one decoded `data:` object onto its typed event."""
    name = str(obj.get("event") or "")
    common = dict(
        event=name,
        conversation_id=obj.get("conversation_id") or None,
        message_id=obj.get("message_id") or None,
        task_id=obj.get("task_id") or None,
        created_at=obj.get("created_at"),
        raw=obj,
    )
    if name == "message":
        return MessageEvent(**common, answer=str(obj.get("answer") or ""))
    if name == "agent_message":
        return AgentMessageEvent(**common, answer=str(obj.get("answer") or ""))
    if name == "agent_thought":
        return AgentThoughtEvent(
            **common,
            id=obj.get("id"),
            position=obj.get("position"),
            thought=str(obj.get("thought") or ""),
            observation=str(obj.get("observation") or ""),
            tool=str(obj.get("tool") or ""),
            tool_input=str(obj.get("tool_input") or ""),
            message_files=list(obj.get("message_files") or []),
        )
    if name == "message_file":
        return MessageFileEvent(
            **common,
            id=obj.get("id"),
            type=str(obj.get("type") or ""),
            belongs_to=str(obj.get("belongs_to") or ""),
            url=str(obj.get("url") or ""),
        )
    if name == "message_replace":
        return MessageReplaceEvent(
            **common, answer=str(obj.get("answer") or ""), reason=str(obj.get("reason") or "")
        )
    if name == "message_end":
        return MessageEndEvent(
            **common, metadata=dict(obj.get("metadata") or {}), files=obj.get("files")
        )
    if name == "tts_message":
        return TtsMessageEvent(**common, audio=str(obj.get("audio") or ""))
    if name == "tts_message_end":
        return TtsMessageEndEvent(**common, audio=str(obj.get("audio") or ""))
    if name == "error":
        status = obj.get("status")
        return ErrorEvent(
            **common,
            code=str(obj.get("code") or ""),
            message=str(obj.get("message") or ""),
            status=status if isinstance(status, int) else None,
        )
    cls = _WORKFLOW_EVENTS.get(name)
    if cls is None and name.startswith(_GENERIC_WORKFLOW_PREFIXES):
        cls = WorkflowEvent
    if cls is not None:
        data = obj.get("data")
        return cls(
            **common,
            workflow_run_id=obj.get("workflow_run_id"),
            data=data if isinstance(data, dict) else {},
        )
    return UnknownEvent(**common)
