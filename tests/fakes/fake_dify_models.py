"""Data kept by the fake Dify server: answer plans, recorded requests, conversations, knowledge bases.

Everything here is plain data; the HTTP side lives in fake_dify.py and the fake_dify_*.py handlers.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

DEFAULT_INDEXING_STEPS = ["waiting", "parsing", "splitting", "indexing", "completed"]
# ETL_TYPE=dify document extensions (create_by_file); anything else answers 400 invalid_param "" (recording 56).
DOCUMENT_EXTENSIONS = {
    "txt", "markdown", "md", "mdx", "pdf", "html", "htm", "xlsx", "xls", "docx", "csv", "vtt", "properties",
}
SUGGESTED_QUESTIONS = ["What is Dify?", "How does it work?", "Can you say more?"]
GENERATED_TITLE = "Fake conversation title"  # what the recordings' test model named conversations
FAIL_MARK = "FAILINDEX"


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> int:
    return int(time.time())


AGENT_PREAMBLE = " I can answer directly.\n\n"


def default_answer(query: str, mode: str = "chat") -> list[str]:
    """The deltas of the recordings' deterministic model: chat/chatflow "Hello from the fake LLM. You said:
    <query> . This reply is deterministic." (note the space before the period); agent-chat streams the
    preamble " I can answer directly.\\n\\n" char by char, three empty deltas, then "Fake agent answer to: <query>"."""
    if mode == "agent-chat":
        return list(AGENT_PREAMBLE) + ["", "", "", f"Fake agent answer to: {query}"]
    head = ["Hello ", "from ", "the ", "fake ", "LLM. ", "You ", "said: "]
    return head + [w + " " for w in query.split()] + [". This ", "reply ", "is deterministic."]


@dataclass
class Plan:
    """How the fake answers ONE chat-messages request (see FakeDify.plan)."""

    answer: str | None = None  # full answer; None: the recordings' deterministic answer built from the query
    tokens: list[str] | None = None  # explicit deltas (override answer splitting)
    mode: str = "chat"  # "agent-chat" / "advanced-chat" force that event sequence; "chat" follows app_mode
    first_token_delay: float = 0.0  # seconds before the first event (headers go out with the first write)
    token_gap: float = 0.0  # seconds between deltas
    ping_every: float | None = None  # `event: ping` every N seconds while waiting
    http_error: tuple[int, str, str] | None = None  # (status, code, message): JSON envelope instead of an answer
    retry_after: float | None = None  # Retry-After header on an http_error answer
    error_after: int | None = None  # after N deltas: model failure (error event; blocking: HTTP error_status)
    error_code: str | None = None  # None: per version (0.15 completion_request_error, 1.12 invalid_param)
    error_message: str | None = None  # None: the recordings' upstream-failure text for that version and mode
    error_status: int = 400
    workflow_failed: bool = False  # advanced-chat failure like recording 83 (same as error_after=0)
    replace_with: str | None = None  # message_replace with this text before message_end
    split_writes: int | None = None  # write the raw bytes in pieces of this many bytes
    hang_after: int | None = None  # after N deltas send nothing more, keep the connection open
    drop_after: int | None = None  # after N deltas cut the TCP connection (no error event)
    html_error: bool = False  # nginx HTML error page (status from http_error, else 502)
    message_files: list[dict] | None = None  # message_file events (merged over id/type/belongs_to/url defaults)
    retriever_resources: list[dict] | None = None  # message_end.metadata.retriever_resources

    def deltas(self, query: str, mode: str = "chat") -> list[str]:
        """The answer deltas to stream: explicit tokens, else the answer split into words, else the default."""
        if self.tokens is not None:
            return list(self.tokens)
        if self.answer is None:
            return default_answer(query, mode)
        return re.findall(r"\s+|\S+\s*", self.answer)


@dataclass
class RecordedRequest:
    """One HTTP request the fake received (path is relative to /v1 for API calls)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)
    time: float = 0.0
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class Message:
    id: str
    conversation_id: str
    query: str
    inputs: dict[str, Any]
    task_id: str
    answer: str = ""
    status: str = "normal"
    error: str | None = None
    feedback: dict[str, Any] | None = None
    files: list[dict] = field(default_factory=list)
    retriever_resources: list[dict] = field(default_factory=list)
    created_at: int = field(default_factory=now)
    first_delta_at: float | None = None  # time.monotonic() when the first streamed answer delta was written
    ended_at: float | None = None  # time.monotonic() when the streamed message_end was written


@dataclass
class Conversation:
    id: str
    user: str
    app: str  # the app mode it belongs to
    inputs: dict[str, Any] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    deleted: bool = False
    name: str = "New conversation"
    created_at: int = field(default_factory=now)
    updated_at: int = field(default_factory=now)


@dataclass
class UploadedFile:
    id: str
    name: str
    content: bytes
    mime_type: str
    user: str
    created_at: float = field(default_factory=time.time)

    @property
    def extension(self) -> str:
        return self.name.rsplit(".", 1)[-1].lower() if "." in self.name else ""


@dataclass
class Document:
    """A knowledge-base document; `polls` counts indexing-status polls to advance through `steps`."""

    id: str
    name: str
    position: int
    batch: str
    file: UploadedFile
    steps: list[str]
    doc_form: str = "text_model"
    process_rule_id: str = field(default_factory=new_id)
    polls: int = 0
    created_at: int = field(default_factory=now)

    @property
    def text(self) -> str:
        return self.file.content.decode("utf-8", errors="replace")

    @property
    def total_segments(self) -> int:
        return max(1, math.ceil(len(self.text) / 500))

    @property
    def failed(self) -> bool:
        return FAIL_MARK in self.text

    @property
    def status(self) -> str:
        status = self.steps[min(max(self.polls - 1, 0), len(self.steps) - 1)]
        return "error" if status == "completed" and self.failed else status

    @property
    def error(self) -> str | None:
        return f"fake indexing failure: {FAIL_MARK} found in {self.name}" if self.status == "error" else None


@dataclass
class Dataset:
    id: str
    name: str
    indexing_technique: str | None = "economy"
    enable_api: bool = True
    description: str = ""
    documents: dict[str, Document] = field(default_factory=dict)
    created_at: int = field(default_factory=now)
