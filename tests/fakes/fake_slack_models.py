"""Data model, limits and pure helpers for the fake Slack Web API (see fake_slack.py).

Default rate budgets (sliding window, per app+workspace unless scope="channel").
Source: /work/shared/platforms.md §S4/§S5 (Slack rate-limit docs, slack_kit/slack-api-ref tiers):

- chat.postMessage "Special": "1 message per second per channel, short bursts allowed" -> modelled
  as 5 per 5 s per channel (burst of 5, then ~1/s). The workspace-wide cap is undocumented: not modelled.
- chat.update: Tier 3 (50+/min) -> 50 per 60 s per workspace (tier from slack_kit, UNVERIFIED on docs.slack.dev).
- chat.appendStream: Tier 4 (100+/min) -> 100 per 60 s.
- chat.stopStream: Tier 2 (20+/min) -> 20 per 60 s (api.slack.com/methods/chat.stopStream).
- chat.startStream: tier UNVERIFIED ("probably Tier 2") -> 20 per 60 s.
- chat.postEphemeral, files.info, users.info: Tier 4 -> 100 per 60 s (common knowledge, UNVERIFIED here).
- assistant.threads.*: tier UNVERIFIED -> Tier 3, 50 per 60 s.
- auth.test and the rest: unlimited in the fake.

Message size limits (platforms.md §S4/§S5): text 40,000 chars (msg_too_long); markdown blocks 12,000
chars cumulative per payload; 50 blocks; section text 3,000; markdown_text 12,000 per call.
Streams: a streamed message also has a *cumulative* cap — live reports (CopilotKit#6064/#6244) show
appendStream answering msg_too_long once a stream passes ~12k chars; modelled as STREAM_MAX_CHARS.
Expired streams answer message_not_in_streaming_state to appendStream AND stopStream; chat.update on
the stream's ts still works (python-slack-sdk#1859, PR #1880).
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RateLimit:
    """A sliding-window budget: at most `limit` calls per `per_seconds`, keyed per workspace or channel."""

    limit: int
    per_seconds: float
    scope: str = "workspace"  # or "channel"


TIER2 = RateLimit(20, 60.0)
TIER3 = RateLimit(50, 60.0)
TIER4 = RateLimit(100, 60.0)

DEFAULT_LIMITS: dict[str, RateLimit] = {
    "chat.postMessage": RateLimit(5, 5.0, "channel"),
    "chat.update": TIER3,
    "chat.postEphemeral": TIER4,
    "chat.startStream": TIER2,  # UNVERIFIED tier
    "chat.appendStream": TIER4,
    "chat.stopStream": TIER2,
    "assistant.threads.setStatus": TIER3,  # UNVERIFIED tier
    "assistant.threads.setTitle": TIER3,  # UNVERIFIED tier
    "assistant.threads.setSuggestedPrompts": TIER3,  # UNVERIFIED tier
    "files.info": TIER4,
    "users.info": TIER4,
}

MAX_TEXT_CHARS = 40_000
MAX_MARKDOWN_BLOCK_CHARS = 12_000
MAX_MARKDOWN_TEXT_CHARS = 12_000
MAX_BLOCKS = 50
MAX_SECTION_TEXT_CHARS = 3_000
STREAM_MAX_CHARS = 12_000


@dataclass
class Call:
    """One recorded Web API call."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    time: float
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return self.response.get("error")


@dataclass
class Msg:
    """A message the bot posted (or streamed) into a channel, as Slack stores it."""

    channel: str
    ts: str
    thread_ts: str | None = None
    text: str | None = None
    markdown_text: str | None = None  # streams: everything appended so far (start + appends + stop)
    blocks: list[dict[str, Any]] | None = None
    user: str | None = None
    bot_id: str | None = None
    stream: bool = False  # created by chat.startStream
    streaming: bool = False  # still accepts appendStream
    expired: bool = False  # the stream timed out server-side (never stopped cleanly)
    replaced: bool = False  # a stream message later rewritten with chat.update
    chunks: list[dict[str, Any]] = field(default_factory=list)  # non-text stream chunks (task/plan updates)
    appends: int = 0
    updates: int = 0
    started_at: float = 0.0
    history: list[str] = field(default_factory=list)  # every visible text, in order
    extra: dict[str, Any] = field(default_factory=dict)  # recipient ids, metadata, ...

    def visible(self) -> str:
        """What a user currently sees as the message body."""
        if self.stream and not self.replaced:
            return self.markdown_text or ""
        if self.markdown_text:
            return self.markdown_text
        texts = blocks_text(self.blocks or [])
        return texts if texts else (self.text or "")

    def snapshot(self) -> None:
        self.history.append(self.visible())

    def _api_text(self) -> str:
        if (self.stream and not self.replaced) or self.markdown_text:
            return self.visible()
        return self.text or ""

    def to_api(self, team: str, app_id: str) -> dict[str, Any]:
        """The `message` object Slack returns for this message."""
        out: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": self._api_text(),
            "user": self.user,
            "bot_id": self.bot_id,
            "app_id": app_id,
            "team": team,
            "ts": self.ts,
        }
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.blocks:
            out["blocks"] = self.blocks
        return out


def blocks_text(blocks: list[dict[str, Any]]) -> str:
    """Join the user-visible text of markdown/section/header/rich blocks (one per line)."""
    parts: list[str] = []
    for b in blocks:
        kind = b.get("type")
        t = b.get("text")
        if kind == "markdown" and isinstance(t, str):
            parts.append(t)
        elif kind in ("section", "header") and isinstance(t, dict):
            parts.append(str(t.get("text", "")))
        elif kind == "context":
            parts.extend(str(e.get("text", "")) for e in b.get("elements", []) if isinstance(e, dict) and "text" in e)
    return "\n".join(p for p in parts if p)


def parse_json_arg(value: Any) -> Any:
    """Form bodies carry blocks/chunks as JSON strings; JSON bodies carry them as lists."""
    if isinstance(value, str):
        return json.loads(value)
    return value


def validate_blocks(blocks: Any) -> str | None:
    """Return a Slack error code if `blocks` would be rejected, else None."""
    if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
        return "invalid_blocks_format"
    if len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    md_total = sum(len(b.get("text") or "") for b in blocks if b.get("type") == "markdown")
    if md_total > MAX_MARKDOWN_BLOCK_CHARS:
        return "invalid_blocks"
    for b in blocks:
        t = b.get("text")
        if b.get("type") == "section" and isinstance(t, dict) and len(t.get("text", "")) > MAX_SECTION_TEXT_CHARS:
            return "invalid_blocks"
    return None


class SlidingWindow:
    """Per-(method, key) sliding-window rate limiter on time.monotonic()."""

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str], deque[float]] = {}

    def check(self, method: str, key: str, rule: RateLimit, now: float | None = None) -> int | None:
        """Record a call and return None, or return Retry-After seconds (int >= 1) if over budget."""
        now = time.monotonic() if now is None else now
        hits = self._hits.setdefault((method, key), deque())
        while hits and hits[0] <= now - rule.per_seconds:
            hits.popleft()
        if len(hits) >= rule.limit:
            return max(1, math.ceil(hits[0] + rule.per_seconds - now))
        hits.append(now)
        return None

    def reset(self) -> None:
        self._hits.clear()
