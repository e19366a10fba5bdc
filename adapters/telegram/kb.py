"""`/kb` in Telegram: documents and texts into the Dify knowledge base, one status message per upload.

Ways in (`handle`, the adapter's `kb_handler`):
- a document whose caption is `/kb add`;
- `/kb add` as a reply to a message that has a document (anyone's, e.g. a file shared in a group);
- `/kb add <text>`: a document from text (title from `Title:` or the first line);
- `/kb add` with neither explains the ways above; `/kb list`, `/kb status`, `/kb help`.

Files are fetched with `getFile` (python-telegram-bot, so the bot token only goes to
TELEGRAM_API_URL) and streamed from its file URL into the pipeline's temporary file; with a local
Bot API server (TELEGRAM_LOCAL_API) a file the server stored on this machine is read in place. A
file over the cloud Bot API's 20 MB download limit is refused before `getFile`. Uploads run in the
adapter's engine-owned tasks; each file shows its progress in one `TelegramKbStatus` message that
replies to the user's message. `start()` resumes the uploads a restart left unfinished.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from telegram import Bot, Document
from telegram.error import BadRequest

from bots import messages
from bots.config import Settings
from bots.dify import DifyError
from bots.engine import Engine
from bots.kb import FileSource, KbRefused, KnowledgeBase, config_problem, format_documents, format_uploads, reason_for

from .kb_status import TelegramKbStatus
from .updates import TgMessage, root_scope
from adapters.shared.kb_host import KbHost

from .writer import TelegramWriter

log = logging.getLogger("adapters.telegram.kb")

CHUNK = 64 * 1024
# The cloud Bot API's getFile limit: tdlib's MAX_DOWNLOAD_FILE_SIZE (20 << 20; PTB's constant says 20e6).
BOT_API_DOWNLOAD_LIMIT = 20 << 20
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=300, sock_connect=10, sock_read=30)

KB_HELP = (
    "**Knowledge base**\n"
    "• Send a document with the caption /kb add, or reply /kb add to a message that has a document.\n"
    "• /kb add <text> adds a document from text: /kb add Title: text, or the first line names it.\n"
    "• /kb list shows the documents; /kb status shows your recent uploads."
)
KB_ADD_HOW = (
    "To add a file, send it with the caption /kb add, or reply /kb add to a message that has a document. "
    "To add text, write it after the command: /kb add Title: text (without Title:, the first line names "
    "the document)."
)
KB_TG_TOO_BIG = ("Telegram lets bots download files up to 20 MB only; send a smaller file, or an admin can "
                 "run a local Bot API server (TELEGRAM_LOCAL_API)")

Say = Callable[[TgMessage, str], Awaitable[Any]]


def _bold_heads(markdown: str) -> str:
    """Slack-style `*Head*` at a line start → `**Head**` (bold, not italic, in standard Markdown)."""
    return re.sub(r"^\*([^*\n]+)\*", r"**\1**", markdown, flags=re.MULTILINE)


class TelegramFiles:
    """Turns Telegram documents into `FileSource`s whose bytes stream from the Bot API."""

    def __init__(self, bot: Bot, settings: Settings, session: Callable[[], aiohttp.ClientSession]) -> None:
        self.bot, self.local = bot, settings.telegram_local_api
        self._file_base = f"{settings.telegram_api_url}/file/bot"
        self._session = session

    def source(self, doc: Document) -> FileSource:
        name = doc.file_name or "document"

        def chunks() -> AsyncIterator[bytes]:
            return self.download(doc.file_id, doc.file_size)

        return FileSource(name=name, size=doc.file_size, mime_type=doc.mime_type, chunks=chunks)

    async def download(self, file_id: str, size: int | None) -> AsyncIterator[bytes]:
        """The file's bytes, chunk by chunk; KbRefused past the Bot API's download limit (before getFile)."""
        if not self.local and size is not None and size > BOT_API_DOWNLOAD_LIMIT:
            raise KbRefused(KB_TG_TOO_BIG)
        try:
            file = await self.bot.get_file(file_id)
        except BadRequest as exc:
            if "too big" in str(exc.message).lower():
                raise KbRefused(KB_TG_TOO_BIG) from exc
            raise
        path = file.file_path or ""
        if self.local and path and await asyncio.to_thread(Path(path).is_file):
            async for chunk in _read_local(Path(path)):
                yield chunk
            return
        if not path.startswith(self._file_base):  # PTB builds it from TELEGRAM_API_URL; never anything else
            raise aiohttp.ClientError("getFile gave no downloadable file path")
        async with self._session().get(path, allow_redirects=False, timeout=DOWNLOAD_TIMEOUT) as resp:
            if resp.status != 200:  # the URL holds the token: never put it in an error or a log
                raise aiohttp.ClientError(f"file download answered HTTP {resp.status}")
            async for chunk in resp.content.iter_chunked(CHUNK):
                yield chunk


async def _read_local(path: Path) -> AsyncIterator[bytes]:
    fh = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(fh.read, CHUNK):
            yield chunk
    finally:
        await asyncio.to_thread(fh.close)


class TelegramKb(KbHost):
    platform = "telegram"

    """The Telegram side of the knowledge base (see module docstring)."""

    def __init__(self, kb: KnowledgeBase, *, engine: Engine, writer: TelegramWriter, settings: Settings,
                 say: Say) -> None:
        super().__init__(kb, engine)
        self.writer, self.settings, self.say = writer, settings, say
        self.files = TelegramFiles(writer.bot, settings, self.session)

    # ------------------------------------------------------------------ lifecycle

    def _restore(self, location: dict[str, Any]) -> TelegramKbStatus | None:
        if location.get("chat_id") is None:
            return None
        return TelegramKbStatus(self.writer, location, on_close=self._statuses.discard)

    def _status(self, msg: TgMessage) -> TelegramKbStatus:
        return self._track(TelegramKbStatus.new(self.writer, msg.chat_id, msg.thread_id, msg.message_id,
                                                on_close=self._statuses.discard))

    # ------------------------------------------------------------------ entry point

    async def handle(self, msg: TgMessage) -> None:
        """`/kb …` from a user allowed to chat (runs in the adapter's engine-owned task)."""
        sub, rest = _split(msg.text)
        if sub == "add":
            await self._add(msg, rest)
        elif sub == "list":
            await self.say(msg, await self._list())
        elif sub == "status":
            await self.say(msg, await self._uploads(str(msg.user_id)))
        else:
            await self.say(msg, KB_HELP)

    async def _add(self, msg: TgMessage, text: str) -> None:
        refusal = self.kb.refusal_for("telegram", str(msg.user_id))
        if refusal is not None:
            await self.say(msg, refusal)
            return
        doc = _document_of(msg)
        if doc is None and not text:
            await self.say(msg, KB_ADD_HOW)
            return
        await self._ready()
        scope = msg.scope or root_scope(msg.chat_id, msg.message_id)
        try:
            if doc is not None:
                await self.kb.add_file(self.files.source(doc), platform="telegram", user_id=str(msg.user_id),
                                       scope=scope, progress=self._status(msg))
            else:
                await self.kb.add_text(None, text, platform="telegram", user_id=str(msg.user_id), scope=scope,
                                       progress=self._status(msg))
        except KbRefused as exc:
            await self.say(msg, str(exc))

    async def _list(self) -> str:
        if config_problem(self.settings) is not None:
            return messages.KB_NOT_CONFIGURED
        try:
            docs, total = await self.kb.list_documents()
        except DifyError as exc:
            log.warning("/kb list failed: %s", type(exc).__name__)
            return _sentence(reason_for(exc, self.settings.dify_dataset_id or ""))
        except Exception:
            log.exception("/kb list failed")
            return messages.UNEXPECTED
        return _bold_heads(format_documents(docs, total))

    async def _uploads(self, user: str) -> str:
        try:
            return _bold_heads(format_uploads(await self.kb.recent_uploads("telegram", user)))
        except Exception:
            log.exception("/kb status failed")
            return messages.UNEXPECTED


def _document_of(msg: TgMessage) -> Document | None:
    """The message's own document, else the document of the message it replies to."""
    if msg.message.document is not None:
        return msg.message.document
    replied = msg.message.reply_to_message
    return replied.document if replied is not None else None


_SUB = re.compile(r"\s*(\S*)\s*(.*)\Z", re.DOTALL)


def _split(text: str) -> tuple[str, str]:
    """`add Title: text` → ("add", "Title: text")."""
    m = _SUB.match(text)
    assert m is not None
    return m.group(1).lower(), m.group(2).strip()


def _sentence(fragment: str) -> str:
    fragment = fragment.strip()
    return (fragment[:1].upper() + fragment[1:]).rstrip(".") + "." if fragment else fragment
