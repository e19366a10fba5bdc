"""`/kb` in Slack: files and texts into the Dify knowledge base, one status message per upload.

Ways in:
- a message with files whose text is `kb add` or `/kb add`, in a DM to the bot or mentioning it
  (`on_message`, called by the adapter); `kb add <text>` without files adds the text;
- the message shortcut "Add to knowledge base" (`kb_add`): the message's files, else its text;
- the slash command: `/kb add <text>` (title from `Title:` or the first line), `/kb list`,
  `/kb status`, `/kb help`; a bare `/kb add` explains the ways above.

Uploads run in engine-owned tasks through the platform-neutral `KnowledgeBase`; each file shows
its progress in one `SlackKbStatus` message in the thread (or DM). `start()` resumes the uploads a
restart left unfinished, finishing their status messages; new uploads wait until those are listed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bots import messages
from bots.config import Settings
from bots.dify import DifyError
from bots.engine import Engine
from bots.kb import KbRefused, KnowledgeBase, config_problem, format_documents, format_uploads, reason_for

from adapters.shared.kb_host import KbHost

from .kb_files import SlackFiles, SlackHosts
from .kb_status import Fallback, SlackKbStatus, slack_text
from .listeners import SlackMessage
from .pacing import SlackWriter

log = logging.getLogger("adapters.slack.kb")

ACK_BUDGET = 2.0  # seconds `/kb list` may take before it acks and answers through response_url

KB_HELP = (
    "*Knowledge base*\n"
    "• `/kb add <text>` adds a document from text: `/kb add Title: text`, or the first line names it.\n"
    "• To add files, send them to me with the message `kb add` (in a DM, or mentioning me in a channel or "
    "thread), or choose *Add to knowledge base* in a message's ⋯ menu.\n"
    "• `/kb list` shows the documents; `/kb status` shows your recent uploads."
)
KB_ADD_HOW = (
    "To add files, send them to me with the message `kb add` (in a DM, or mentioning me in a channel or "
    "thread), or choose *Add to knowledge base* in the ⋯ menu of a message with files. To add text, write it "
    "after the command: `/kb add Title: text` (without `Title:`, the first line names the document)."
)
KB_SHORTCUT_NOTHING = "This message has no files or text to add to the knowledge base."

Say = Callable[[SlackMessage, str], Awaitable[Any]]


@dataclass(frozen=True)
class _Origin:
    """Where an add request came from and how to answer its author privately."""

    team: str
    channel: str
    thread: str | None  # where status messages go (None: the top level of the conversation)
    user: str
    scope: str
    tell: Callable[[str], Awaitable[Any]]  # one private line (Markdown) to the user
    fallback: Fallback | None = None  # shows a result privately when the bot cannot post there


def unescape(text: str) -> str:
    """Slack's text with its three HTML escapes undone."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _sentence(fragment: str) -> str:
    fragment = fragment.strip()
    return (fragment[:1].upper() + fragment[1:]).rstrip(".") + "." if fragment else fragment


class SlackKb(KbHost):
    platform = "slack"

    """The Slack side of the knowledge base (see module docstring)."""

    def __init__(self, kb: KnowledgeBase, *, engine: Engine, writer: SlackWriter, client: AsyncWebClient,
                 settings: Settings, allowed: Callable[[str], bool], say: Say) -> None:
        assert settings.slack_bot_token is not None
        super().__init__(kb, engine)
        self.writer, self.settings = writer, settings
        self.allowed, self.say = allowed, say
        self.files = SlackFiles(settings.slack_bot_token.get_secret_value(), SlackHosts(settings.slack_api_url),
                                client, self.session)

    # ------------------------------------------------------------------ lifecycle

    def _restore(self, location: dict[str, Any]) -> SlackKbStatus | None:
        if location.get("private") or not location.get("channel"):
            return None
        return SlackKbStatus(self.writer, location, on_close=self._statuses.discard)

    def _status(self, o: _Origin) -> SlackKbStatus:
        return self._track(SlackKbStatus.new(self.writer, o.team, o.channel, o.thread, fallback=o.fallback,
                                             on_close=self._statuses.discard))

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self.engine.spawn(coro, name=name)

    # ------------------------------------------------------------------ entry points

    async def on_message(self, msg: SlackMessage, text: str) -> None:
        """`kb add` said to the bot, with files or text (runs in the adapter's event task)."""

        async def tell(line: str) -> None:
            await self.say(msg, slack_text(line))

        refusal = self.kb.refusal_for("slack", msg.user)
        if refusal is not None:
            await tell(refusal)
            return
        origin = _Origin(msg.team, msg.channel, msg.reply_thread, msg.user, msg.scope, tell)
        if msg.files:
            await self._add_files(origin, list(msg.files))
        elif text.strip():
            await self._add_text(origin, unescape(text))
        else:
            await tell(KB_ADD_HOW)

    async def slash(self, command: dict[str, Any], ack: Any, respond: Any) -> None:
        """`/kb add <text>`, `/kb list`, `/kb status`, `/kb help` (acked within 3 s, answered ephemerally)."""
        user, team = str(command.get("user_id") or ""), str(command.get("team_id") or "")
        channel = str(command.get("channel_id") or "")
        sub, rest = _split(unescape(str(command.get("text") or "")))
        if not self.allowed(user):
            await ack(text=messages.PRIVATE_BOT, response_type="ephemeral")
        elif sub == "add":
            refusal = self.kb.refusal_for("slack", user)
            if refusal is not None or not rest:
                await ack(text=slack_text(refusal or KB_ADD_HOW), response_type="ephemeral")
                return
            await ack()
            send = _responder(respond)
            origin = _Origin(team, channel, None, user, f"slack:{team}:{channel}", _teller(send), send)
            self._spawn(self._add_text(origin, rest), "slack-kb-text")
        elif sub == "list":
            await self._answer(ack, respond, self._list())
        elif sub == "status":
            await self._answer(ack, respond, self._uploads(user))
        else:
            await ack(text=slack_text(KB_HELP), response_type="ephemeral")

    async def shortcut(self, shortcut: dict[str, Any], ack: Any, respond: Any) -> None:
        """The "Add to knowledge base" message shortcut: the message's files, else its text."""
        await ack()
        user = str((shortcut.get("user") or {}).get("id") or "")
        team = str((shortcut.get("team") or {}).get("id") or (shortcut.get("user") or {}).get("team_id") or "")
        channel = str((shortcut.get("channel") or {}).get("id") or "")
        message = shortcut.get("message") or {}
        send = _responder(respond)
        tell = _teller(send)
        if not self.allowed(user):
            await send(messages.PRIVATE_BOT)
            return
        refusal = self.kb.refusal_for("slack", user)
        if refusal is not None:
            await tell(refusal)
            return
        thread = message.get("thread_ts") or message.get("ts")
        origin = _Origin(team, channel, thread, user, f"slack:{team}:{channel}:{thread}", tell, send)
        files = [f for f in message.get("files") or () if isinstance(f, dict)]
        text = unescape(str(message.get("text") or "")).strip()
        if files:
            self._spawn(self._add_files(origin, files), "slack-kb-files")
        elif text:
            self._spawn(self._add_text(origin, text), "slack-kb-text")
        else:
            await tell(KB_SHORTCUT_NOTHING)

    # ------------------------------------------------------------------ work

    async def _add_files(self, o: _Origin, files: list[dict[str, Any]]) -> None:
        """Each file in turn, with its own status message (one after the other)."""
        await self._ready()
        sources = [self.files.source(await self.files.complete(f)) for f in files]
        try:
            await self.kb.add_files(sources, platform="slack", user_id=o.user, scope=o.scope,
                                    progress_for=lambda _source: self._status(o))
        except KbRefused as exc:
            await o.tell(str(exc))

    async def _add_text(self, o: _Origin, text: str) -> None:
        await self._ready()
        try:
            await self.kb.add_text(None, text, platform="slack", user_id=o.user, scope=o.scope,
                                   progress=self._status(o))
        except KbRefused as exc:
            await o.tell(str(exc))

    async def _answer(self, ack: Any, respond: Any, work: Coroutine[Any, Any, str]) -> None:
        """Ack with the answer when it is ready within ACK_BUDGET, else ack now and answer via response_url."""
        task = self.engine.spawn(work, name="slack-kb-answer")
        done, _ = await asyncio.wait({task}, timeout=ACK_BUDGET)
        if done:
            await ack(text=task.result(), response_type="ephemeral")
            return
        await ack()
        await _responder(respond)(await task)

    async def _list(self) -> str:
        if config_problem(self.settings) is not None:
            return slack_text(messages.KB_NOT_CONFIGURED)
        try:
            docs, total = await self.kb.list_documents()
        except DifyError as exc:
            log.warning("/kb list failed: %s", type(exc).__name__)
            return slack_text(_sentence(reason_for(exc, self.settings.dify_dataset_id or "")))
        except Exception:
            log.exception("/kb list failed")
            return messages.UNEXPECTED
        return slack_text(format_documents(docs, total))

    async def _uploads(self, user: str) -> str:
        try:
            return slack_text(format_uploads(await self.kb.recent_uploads("slack", user)))
        except Exception:
            log.exception("/kb status failed")
            return messages.UNEXPECTED


_SUB = re.compile(r"\s*(\S*)\s*(.*)\Z", re.DOTALL)


def _split(text: str) -> tuple[str, str]:
    """`add Title: text` → ("add", "Title: text")."""
    m = _SUB.match(text)
    assert m is not None
    return m.group(1).lower(), m.group(2).strip()


def _responder(respond: Any) -> Fallback:
    """Sends Slack text privately through the request's response_url (failures are logged, not raised)."""

    async def send(text: str) -> None:
        try:
            await respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception as exc:  # noqa: BLE001 - response_url expired or unreachable
            log.warning("could not answer through response_url: %s", type(exc).__name__)

    return send


def _teller(send: Fallback) -> Callable[[str], Awaitable[Any]]:
    async def tell(line: str) -> None:
        await send(slack_text(line))

    return tell
