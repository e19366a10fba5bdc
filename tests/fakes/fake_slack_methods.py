"""Web API method handlers for the fake Slack server (see fake_slack.py).

Each handler takes the FakeSlack instance and the merged request arguments (query + form/JSON) and
returns the JSON body Slack would answer with HTTP 200: {"ok": true, ...} or {"ok": false, "error": ...}.
Authentication and rate limiting happen before a handler runs.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from tests.fakes.fake_slack_models import (
    MAX_MARKDOWN_TEXT_CHARS,
    MAX_TEXT_CHARS,
    Msg,
    parse_json_arg,
    validate_blocks,
)
from tests.helpers.slack_events import new_ts

if TYPE_CHECKING:
    from tests.fakes.fake_slack import FakeSlack

Handler = Callable[["FakeSlack", dict[str, Any]], dict[str, Any]]
METHODS: dict[str, Handler] = {}
STREAM_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream")


def method(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        METHODS[name] = fn
        return fn

    return register


def err(code: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": code, **extra}


def missing(field: str) -> dict[str, Any]:
    """Slack's answer for a missing required argument."""
    return err("invalid_arguments", response_metadata={"messages": [f"[ERROR] missing required field: {field}"]})


def _content(args: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Validate text/blocks/markdown_text. Returns (error, fields)."""
    text, md = args.get("text"), args.get("markdown_text")
    blocks = None
    if args.get("blocks") not in (None, ""):
        try:
            blocks = parse_json_arg(args["blocks"])
        except ValueError:
            return err("invalid_blocks_format"), {}
        problem = validate_blocks(blocks)
        if problem:
            return err(problem), {}
    if md and (text or blocks):
        return err("markdown_text_conflict"), {}
    if text and len(text) > MAX_TEXT_CHARS:
        return err("msg_too_long"), {}
    if md and len(md) > MAX_MARKDOWN_TEXT_CHARS:
        return err("msg_too_long"), {}  # exact code for an over-long markdown_text UNVERIFIED
    if not text and not blocks and not md and not args.get("attachments"):
        return err("no_text"), {}
    return None, {"text": text or None, "blocks": blocks, "markdown_text": md or None}


@method("auth.test")
def auth_test(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": True,
        "url": f"https://{fake.team_domain}.slack.com/",
        "team": "Fake Team",
        "user": "fakebot",
        "team_id": fake.team_id,
        "user_id": fake.bot_user_id,
        "bot_id": fake.bot_id,
        "is_enterprise_install": False,
    }


@method("chat.postMessage")
def post_message(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    channel = args.get("channel")
    if not channel:
        return err("channel_not_found")
    problem, fields = _content(args)
    if problem:
        return problem
    msg = Msg(channel=channel, ts=new_ts(), thread_ts=args.get("thread_ts") or None,
              user=fake.bot_user_id, bot_id=fake.bot_id, **fields)
    fake._store(msg)
    return {"ok": True, "channel": channel, "ts": msg.ts, "message": msg.to_api(fake.team_id, fake.app_id)}


@method("chat.update")
def update(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    channel, ts = args.get("channel"), args.get("ts")
    if not channel:
        return err("channel_not_found")
    if not ts:
        return missing("ts")
    msg = fake._find(channel, ts)
    if msg is None:
        return err("message_not_found")
    problem, fields = _content(args)
    if problem:
        return problem
    if fields["markdown_text"]:
        msg.markdown_text, msg.text, msg.blocks = fields["markdown_text"], None, None
    else:
        msg.markdown_text, msg.text = None, fields["text"]
        if fields["blocks"] is not None:  # omitted blocks are retained, like Slack
            msg.blocks = fields["blocks"]
    if msg.stream:
        msg.replaced, msg.streaming = True, False  # UNVERIFIED: an update ends the streaming state
    msg.updates += 1
    msg.snapshot()
    out = msg.to_api(fake.team_id, fake.app_id)
    return {"ok": True, "channel": channel, "ts": ts, "text": out["text"], "message": out}


@method("chat.postEphemeral")
def post_ephemeral(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    channel, user = args.get("channel"), args.get("user")
    if not channel:
        return err("channel_not_found")
    if not user:
        return err("user_not_in_channel")
    problem, fields = _content(args)
    if problem:
        return problem
    ts = new_ts()
    fake.ephemerals.append({"channel": channel, "user": user, "ts": ts, "thread_ts": args.get("thread_ts"), **fields})
    return {"ok": True, "message_ts": ts}


def _stream_text(args: dict[str, Any]) -> tuple[dict[str, Any] | None, str, list[dict[str, Any]]]:
    """Text appended by a stream call: markdown_text plus markdown_text chunks. Other chunks kept aside."""
    text = args.get("markdown_text") or ""
    if len(text) > MAX_MARKDOWN_TEXT_CHARS:
        return err("msg_too_long"), "", []
    other: list[dict[str, Any]] = []
    try:
        chunks = parse_json_arg(args.get("chunks")) or []
    except ValueError:
        return err("invalid_arguments"), "", []
    for chunk in chunks:
        if not isinstance(chunk, dict) or "type" not in chunk:
            return err("invalid_arguments"), "", []
        if chunk["type"] == "markdown_text":
            text += str(chunk.get("text", ""))
        else:
            other.append(chunk)
    return None, text, other


@method("chat.startStream")
def start_stream(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    if isinstance(fake.native_streaming, str):
        return err(fake.native_streaming)
    channel = args.get("channel")
    if not channel:
        return err("channel_not_found")
    if not args.get("thread_ts"):
        return missing("thread_ts")
    if not channel.startswith("D"):
        if not args.get("recipient_user_id"):
            return err("missing_recipient_user_id")
        if not args.get("recipient_team_id"):
            return err("missing_recipient_team_id")
    problem, text, other = _stream_text(args)
    if problem:
        return problem
    if len(text) > fake.stream_max_chars:
        return err("msg_too_long")
    msg = Msg(channel=channel, ts=new_ts(), thread_ts=args["thread_ts"], markdown_text=text,
              user=fake.bot_user_id, bot_id=fake.bot_id, stream=True, streaming=True,
              chunks=other, started_at=time.monotonic(),
              extra={k: args[k] for k in ("recipient_user_id", "recipient_team_id", "task_display_mode") if k in args})
    fake._store(msg)
    return {"ok": True, "channel": channel, "ts": msg.ts}


def _live_stream(fake: FakeSlack, args: dict[str, Any]) -> tuple[dict[str, Any] | None, Msg | None]:
    channel, ts = args.get("channel"), args.get("ts")
    if not channel:
        return err("channel_not_found"), None
    if not ts:
        return missing("ts"), None
    msg = fake._find(channel, ts)
    if msg is None:
        return err("message_not_found"), None
    if msg.streaming and fake.stream_ttl is not None and time.monotonic() - msg.started_at > fake.stream_ttl:
        msg.streaming, msg.expired = False, True
    if not msg.streaming:
        return err("message_not_in_streaming_state"), None
    return None, msg


@method("chat.appendStream")
def append_stream(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    problem, msg = _live_stream(fake, args)
    if problem or msg is None:
        return problem or err("message_not_found")
    problem, text, other = _stream_text(args)
    if problem:
        return problem
    if not text and not other:
        return err("no_text")
    if len(msg.markdown_text or "") + len(text) > fake.stream_max_chars:
        return err("msg_too_long")
    msg.markdown_text = (msg.markdown_text or "") + text
    msg.chunks.extend(other)
    msg.appends += 1
    msg.snapshot()
    if fake.stream_expires_after is not None and msg.appends >= fake.stream_expires_after:
        msg.streaming, msg.expired = False, True
    return {"ok": True, "channel": msg.channel, "ts": msg.ts}


@method("chat.stopStream")
def stop_stream(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    problem, msg = _live_stream(fake, args)
    if problem or msg is None:
        return problem or err("message_not_found")
    problem, text, other = _stream_text(args)
    if problem:
        return problem
    if len(msg.markdown_text or "") + len(text) > fake.stream_max_chars:
        return err("msg_too_long")
    if args.get("blocks") not in (None, ""):
        try:
            blocks = parse_json_arg(args["blocks"])
        except ValueError:
            return err("invalid_blocks_format")
        bad = validate_blocks(blocks)
        if bad:
            return err(bad)
        msg.blocks = blocks
    if "metadata" in args:
        msg.extra["metadata"] = args["metadata"]
    msg.markdown_text = (msg.markdown_text or "") + text
    msg.chunks.extend(other)
    msg.streaming = False
    msg.snapshot()
    return {"ok": True, "channel": msg.channel, "ts": msg.ts, "message": msg.to_api(fake.team_id, fake.app_id)}


def _assistant(field_names: tuple[str, ...], record: str | None = None) -> Handler:
    def handler(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
        for f in field_names:
            if not args.get(f):
                return missing(f)
        if record:
            fake.statuses.append({k: args.get(k) for k in ("channel_id", "thread_ts", "status", "loading_messages")})
        return {"ok": True}

    return handler


METHODS["assistant.threads.setStatus"] = _assistant(("channel_id", "thread_ts"), record="status")
METHODS["assistant.threads.setTitle"] = _assistant(("channel_id", "thread_ts", "title"))
METHODS["assistant.threads.setSuggestedPrompts"] = _assistant(("channel_id", "prompts"))


@method("files.info")
def files_info(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    obj = fake.file_objects.get(args.get("file") or "")
    if obj is None:
        return err("file_not_found")
    return {"ok": True, "file": obj, "comments": [], "response_metadata": {"next_cursor": ""}}


@method("users.info")
def users_info(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    user = args.get("user")
    if not user:
        return err("user_not_found")
    is_bot = user == fake.bot_user_id
    name = "fakebot" if is_bot else f"user-{user.lower()}"
    return {"ok": True, "user": {
        "id": user, "team_id": fake.team_id, "name": name, "real_name": name.title(), "deleted": False,
        "is_bot": is_bot, "tz": "Etc/UTC", "profile": {"display_name": name, "real_name": name.title()},
    }}


@method("apps.connections.open")
def connections_open(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    # Only reached with the app-level (xapp-) token; nothing listens on this URL.
    return {"ok": True, "url": f"ws://127.0.0.1:9/link/?ticket=fake-ticket&app_id={fake.app_id}"}
