"""Slack events → messages the bot may answer: filtering, scopes, plain-word commands (pure code).

What is answered: `app_mention` in channels (the answer goes in the mention's thread), later
messages in a thread that already has a conversation (checked by the adapter), and every DM. Own
and (by default) other bots' messages, edits, deletions, joins and other subtypes are ignored;
`file_share` and `thread_broadcast` are ordinary user messages with extras.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bots.types import Attachment

ANSWERED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
COMMAND_WORDS = {"new": "new", "reset": "new", "help": "help"}
_KB_ADD = re.compile(r"/?kb[ \t]+add(?:\s+(.*))?", re.IGNORECASE | re.DOTALL)
_ID_TYPES = {"D": "im", "G": "group", "C": "channel"}


@dataclass(frozen=True)
class Identity:
    """Who the bot is in Slack (from `auth.test`)."""

    bot_user_id: str
    bot_id: str | None = None


@dataclass(frozen=True)
class SlackMessage:
    """One user message the bot may answer."""

    team: str
    channel: str
    channel_type: str  # im, channel, group or mpim
    user: str
    user_team: str
    ts: str
    thread_ts: str | None  # the thread it was written in (None: top level)
    text: str  # without the bot's mention
    kind: str  # app_mention or message
    files: tuple[dict[str, Any], ...] = ()
    mentioned: bool = False  # the text mentions the bot (always true for app_mention)

    @property
    def is_dm(self) -> bool:
        return self.channel_type == "im"

    @property
    def scope(self) -> str:
        """Top-level DMs share one rolling scope per DM; anything else is its thread."""
        if self.is_dm and self.thread_ts is None:
            return dm_scope(self.team, self.channel)
        return f"slack:{self.team}:{self.channel}:{self.thread_ts or self.ts}"

    @property
    def reply_thread(self) -> str | None:
        """Where the answer goes: the thread, or the top level of a DM."""
        return self.thread_ts or (None if self.is_dm else self.ts)

    @property
    def needs_conversation(self) -> bool:
        """A channel thread message without a mention continues an existing conversation only."""
        return not self.is_dm and self.kind == "message"

    @property
    def command(self) -> str | None:
        """`new` or `help` when the whole message is a command word said to the bot (DM or mention).

        Decided on the mention, not the event type: the `message.channels` copy of a mention may
        arrive before its `app_mention`, and must not carry the command to Dify."""
        if not (self.is_dm or self.mentioned):
            return None
        return COMMAND_WORDS.get(self.text.strip().lower().rstrip(".!"))

    @property
    def kb_add(self) -> str | None:
        """The text after `kb add` / `/kb add` ('' if none) when said to the bot (DM or mention), else None."""
        if not (self.is_dm or self.mentioned):
            return None
        m = _KB_ADD.fullmatch(self.text.strip())
        return None if m is None else (m.group(1) or "").strip()

    @property
    def dify_user(self) -> str:
        return f"slack:{self.team}:{self.user}"

    @property
    def attachments(self) -> tuple[Attachment, ...]:
        return tuple(Attachment(name=str(f.get("name") or f.get("title") or "file"), mime_type=f.get("mimetype"),
                                size=f.get("size"), ref=f) for f in self.files)


def dm_scope(team: str, channel: str) -> str:
    return f"slack:{team}:{channel}"


def channel_type_of(channel: str, given: str | None = None) -> str:
    return given or _ID_TYPES.get(channel[:1], "channel")


def strip_mention(text: str, bot_user_id: str) -> str:
    return re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text).strip()


def classify(body: dict[str, Any], me: Identity, *, ignore_bots: bool = True) -> SlackMessage | None:
    """The message in an Events API body the bot may answer, or None if it must be ignored."""
    event = body.get("event") or {}
    kind = event.get("type")
    if kind not in ("app_mention", "message") or event.get("subtype") not in ANSWERED_SUBTYPES:
        return None
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not user or not channel or not ts or user == me.bot_user_id:
        return None
    bot_id = event.get("bot_id")
    if bot_id and (bot_id == me.bot_id or ignore_bots):
        return None
    channel_type = channel_type_of(channel, event.get("channel_type"))
    thread_ts = event.get("thread_ts")
    if thread_ts == ts:
        thread_ts = None
    if kind == "message" and channel_type != "im" and thread_ts is None:
        return None  # a top-level channel message: only a mention (app_mention) starts a conversation
    team = str(body.get("team_id") or event.get("team") or "")
    return SlackMessage(
        team=team,
        channel=channel,
        channel_type=channel_type,
        user=user,
        user_team=str(event.get("user_team") or event.get("team") or team),
        ts=ts,
        thread_ts=thread_ts,
        text=strip_mention(event.get("text") or "", me.bot_user_id),
        kind=kind,
        files=tuple(f for f in event.get("files") or () if isinstance(f, dict)),
        mentioned=kind == "app_mention" or f"<@{me.bot_user_id}" in (event.get("text") or ""),
    )
