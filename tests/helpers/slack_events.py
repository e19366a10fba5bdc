"""Factories for Slack Events API / slash command / shortcut payloads, and request signing.

Payload shapes follow Slack's Events API envelope (platforms.md §S1, §S3, §S8). Signing uses
slack_sdk's own SignatureVerifier, so a Bolt app with the same signing secret accepts these requests.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

_last_us = 0
_ids = itertools.count(1)


def new_ts() -> str:
    """A unique, increasing Slack ts ("<unix seconds>.<6-digit micros>"), based on the wall clock."""
    global _last_us
    _last_us = max(time.time_ns() // 1000, _last_us + 1)
    return f"{_last_us // 1_000_000}.{_last_us % 1_000_000:06d}"


def _uid(prefix: str, width: int = 9) -> str:
    return f"{prefix}{uuid.uuid4().hex[:width].upper()}"


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """X-Slack-Signature and X-Slack-Request-Timestamp headers for `body`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": ts}


def event_envelope(event: dict[str, Any], *, team_id: str = "T0TEST", event_id: str | None = None,
                   api_app_id: str = "A0APP", bot_user_id: str = "U0BOT") -> dict[str, Any]:
    """Wrap an event in an `event_callback` envelope (unique event_id unless given)."""
    return {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or _uid("Ev", 10),
        "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": bot_user_id,
                            "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
        "event_context": _uid("4-", 24),
    }


def _message_fields(text: str, user: str, channel: str, ts: str | None, thread_ts: str | None,
                    team: str, files: list[dict[str, Any]] | None) -> dict[str, Any]:
    ts = ts or new_ts()
    out: dict[str, Any] = {"user": user, "text": text, "ts": ts, "channel": channel, "event_ts": ts,
                           "team": team, "client_msg_id": str(uuid.uuid4())}
    if thread_ts:
        out["thread_ts"] = thread_ts
    if files:
        out["files"] = files
        out["upload"] = False
    return out


def app_mention(text: str, *, user: str = "U1", channel: str = "C1", ts: str | None = None,
                thread_ts: str | None = None, team: str = "T0TEST", files: list[dict[str, Any]] | None = None,
                bot_user_id: str = "U0BOT") -> dict[str, Any]:
    """An `app_mention` event; prefixes `<@bot_user_id> ` unless the text already mentions the bot."""
    if f"<@{bot_user_id}>" not in text:
        text = f"<@{bot_user_id}> {text}"
    return {"type": "app_mention", **_message_fields(text, user, channel, ts, thread_ts, team, files)}


def channel_message(text: str, *, user: str = "U1", channel: str = "C1", ts: str | None = None,
                    thread_ts: str | None = None, subtype: str | None = None, bot_id: str | None = None,
                    files: list[dict[str, Any]] | None = None, channel_type: str = "channel",
                    team: str = "T0TEST") -> dict[str, Any]:
    """A `message` event (message.channels by default). Files imply subtype `file_share`."""
    event: dict[str, Any] = {"type": "message", **_message_fields(text, user, channel, ts, thread_ts, team, files),
                             "channel_type": channel_type}
    if files and subtype is None:
        subtype = "file_share"
    if subtype:
        event["subtype"] = subtype
    if bot_id:
        event["bot_id"] = bot_id
        event.pop("client_msg_id", None)
    return event


def dm_message(text: str, *, user: str = "U1", channel: str = "D1", ts: str | None = None,
               thread_ts: str | None = None, files: list[dict[str, Any]] | None = None,
               team: str = "T0TEST") -> dict[str, Any]:
    """A `message.im` event in a DM with the bot."""
    return channel_message(text, user=user, channel=channel, ts=ts, thread_ts=thread_ts, files=files,
                           channel_type="im", team=team)


def slash_command_form(command: str, text: str, *, user_id: str = "U1", channel_id: str = "C1",
                       team_id: str = "T0TEST", response_url: str | None = None,
                       api_app_id: str = "A0APP") -> bytes:
    """An x-www-form-urlencoded slash command body, as Slack posts it."""
    fields = {
        "token": "legacy-verification-token", "team_id": team_id, "team_domain": "fake-team",
        "channel_id": channel_id, "channel_name": "directmessage" if channel_id.startswith("D") else "general",
        "user_id": user_id, "user_name": f"user-{user_id.lower()}", "command": command, "text": text,
        "api_app_id": api_app_id, "is_enterprise_install": "false",
        "response_url": response_url or f"https://hooks.slack.com/commands/{team_id}/{next(_ids)}/fake",
        "trigger_id": f"{next(_ids)}.{int(time.time())}.{uuid.uuid4().hex}",
    }
    return urlencode(fields).encode()


def message_shortcut_form(callback_id: str, message: dict[str, Any], *, user_id: str = "U1",
                          channel_id: str = "C1", team_id: str = "T0TEST", response_url: str | None = None,
                          api_app_id: str = "A0APP") -> bytes:
    """A `message_action` (message shortcut) interactivity body: payload=<json>, form-encoded."""
    payload = {
        "type": "message_action", "token": "legacy-verification-token", "action_ts": new_ts(),
        "team": {"id": team_id, "domain": "fake-team"},
        "user": {"id": user_id, "username": f"user-{user_id.lower()}", "team_id": team_id,
                 "name": f"user-{user_id.lower()}"},
        "channel": {"id": channel_id, "name": "general"},
        "is_enterprise_install": False, "enterprise": None, "api_app_id": api_app_id,
        "callback_id": callback_id, "trigger_id": f"{next(_ids)}.{int(time.time())}.{uuid.uuid4().hex}",
        "response_url": response_url or f"https://hooks.slack.com/app/{team_id}/{next(_ids)}/fake",
        "message_ts": message.get("ts"), "message": message,
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


async def post_signed(session_or_url: aiohttp.ClientSession | str, path_url: str, body: bytes, secret: str, *,
                      content_type: str = "application/json", headers: dict[str, str] | None = None,
                      timestamp: int | None = None, timeout: float = 10) -> tuple[int, str]:
    """POST a signed body like Slack does. First argument: a ClientSession (then `path_url` is the URL,
    or a path relative to the session's base_url) or a base URL string joined with `path_url`."""
    all_headers = {"Content-Type": content_type, **sign(body, secret, timestamp), **(headers or {})}
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    if isinstance(session_or_url, aiohttp.ClientSession):
        async with session_or_url.post(path_url, data=body, headers=all_headers, timeout=client_timeout) as resp:
            return resp.status, await resp.text()
    url = path_url if path_url.startswith("http") else session_or_url.rstrip("/") + "/" + path_url.lstrip("/")
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        async with session.post(url, data=body, headers=all_headers) as resp:
            return resp.status, await resp.text()
