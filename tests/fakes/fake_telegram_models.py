"""Records and wire helpers of the fake Bot API: calls, sent messages, errors, parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

# Parameters the Bot API reads as integers / booleans / plain strings. Everything else that
# looks like JSON (PTB JSON-encodes nested values in form posts) is decoded.
INT_PARAMS = frozenset({
    "chat_id", "message_id", "draft_id", "offset", "limit", "timeout", "message_thread_id",
    "reply_to_message_id", "max_connections", "user_id", "from_chat_id", "direct_messages_topic_id",
})
BOOL_PARAMS = frozenset({
    "disable_notification", "protect_content", "drop_pending_updates", "allow_sending_without_reply",
    "disable_web_page_preview", "allow_paid_broadcast", "is_big", "show_alert", "can_stop", "keep_on_stop",
})
STR_PARAMS = frozenset({
    "text", "caption", "parse_mode", "url", "secret_token", "action", "file_id", "language_code",
    "ip_address", "business_connection_id", "message_effect_id", "callback_query_id", "inline_message_id",
})


class ApiError(Exception):
    """An error answer: {"ok": false, "error_code": code, "description": ..., "parameters"?}."""

    def __init__(self, code: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass
class Call:
    """One request the fake answered (also failed ones, e.g. wrong token or 429)."""

    method: str  # canonical spelling ("sendMessage") when known, else as requested
    params: dict[str, Any]  # decoded: ints, bools, nested JSON values
    time: float  # time.monotonic() when the request arrived
    response: dict  # the JSON body answered
    status: int = 200
    files: dict[str, bytes] = field(default_factory=dict)  # multipart uploads by field name

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))


@dataclass
class SentMessage:
    """A message the bot sent, with its edit history."""

    chat_id: int
    message_id: int
    text: str
    entities: list[dict]
    parse_mode: str | None
    message_thread_id: int | None
    reply_to_message_id: int | None
    date: int
    reply_markup: Any = None
    edits: list[str] = field(default_factory=list)  # text after each successful edit
    history: list[dict] = field(default_factory=list)  # every version: text, entities, parse_mode, time
    edit_date: int | None = None
    deleted: bool = False


def decode_params(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Form / query / JSON-body parameters → typed values, as the Bot API reads them."""
    return {name: _decode(name, value) for name, value in raw.items()}


def _decode(name: str, value: Any) -> Any:
    if name in STR_PARAMS:
        return value if isinstance(value, str) else json.dumps(value)
    if not isinstance(value, str):
        return value
    if name in INT_PARAMS:
        try:
            return int(value)
        except ValueError:
            return value  # e.g. chat_id="@channelusername"
    if name in BOOL_PARAMS:
        return value.strip().lower() in ("true", "1", "yes")
    stripped = value.strip()
    if stripped[:1] in ("[", "{") or stripped in ("true", "false", "null"):
        try:
            return json.loads(stripped)
        except ValueError:
            return value
    return value


@dataclass
class StoredFile:
    """A file the fake can serve through getFile and /file/bot<token>/<file_path>."""

    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes
    file_size: int | None
