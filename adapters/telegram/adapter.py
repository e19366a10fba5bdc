"""The Telegram adapter: python-telegram-bot `Application` wiring, commands, answers, restart recovery.

Transport (see transport.py): long polling by default; webhook mode at `POST /telegram/webhook`
when TELEGRAM_WEBHOOK_URL is set. The Application is built with `.updater(None)` and
`base_url`/`base_file_url` from TELEGRAM_API_URL (`local_mode` with TELEGRAM_LOCAL_API), and every
update goes through `Application.process_update` to one `TypeHandler`, after its `update_id` was
claimed durably. Answers run in tasks the engine owns. Which group conversation a reply to one of
the bot's answers continues is remembered per answer message (repository conversations under the
platform name `telegram-answers`, scope `<chat_id>:<message_id>`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from telegram import BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats, Update
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler

from adapters.shared.pacing import FINAL
from bots import messages
from bots.config import Settings
from bots.engine import Engine
from bots.kb import KnowledgeBase
from bots.types import Incoming
from storage import Repository
from storage.repository import ReplyRecord

from .kb import TelegramKb
from .render import Part, append_line, render_parts
from .sink import DraftRefusal, SinkEnv, Target, TelegramReplySink
from .transport import ALLOWED_UPDATES, poll, webhook_handler
from .updates import Identity, TgMessage, classify, root_scope
from .writer import TelegramWriter

if TYPE_CHECKING:
    from bots.app import Bridge

log = logging.getLogger("adapters.telegram")

ANSWERS = "telegram-answers"  # repository platform name of the answer message → scope mapping
PRIVATE_COMMANDS = ("new", "help", "kb")
GROUP_COMMANDS = ("ask", "new", "help", "kb")
RETRY_START = 10.0  # seconds between attempts to reach the Bot API at start-up
TOLD_PRIVATE = 10_000  # (user, chat) pairs remembered as already told the bot is private
RECENT_ANSWERS = 10_000  # answer messages remembered in memory too (a reply may come before the row is written)

KbHandler = Callable[[TgMessage], Awaitable[None]]


class TelegramAdapter:
    """Telegram for the bridge (see module docstring). `kb_handler` answers `/kb` and is swappable."""

    name = "telegram"

    def __init__(self, *, engine: Engine, repo: Repository, settings: Settings,
                 kb: KnowledgeBase | None = None) -> None:
        assert settings.telegram_bot_token is not None
        self.engine, self.repo, self.settings = engine, repo, settings
        root = settings.telegram_api_url
        self.app: Application[Any, Any, Any, Any, Any, Any] = (
            Application.builder().token(settings.telegram_bot_token.get_secret_value())
            .base_url(f"{root}/bot").base_file_url(f"{root}/file/bot")
            .local_mode(settings.telegram_local_api).updater(None)
            .connect_timeout(5.0).read_timeout(15.0).write_timeout(15.0).pool_timeout(10.0).build())
        self.app.add_handler(TypeHandler(Update, self._on_update))
        self.app.add_error_handler(self._on_error)
        self.writer = TelegramWriter(self.app.bot, settings.telegram_limits, metrics=engine.metrics)
        self.env = SinkEnv(self.writer, DraftRefusal(), settings.telegram_stream_mode, self._remember_answer)
        self.webhook = settings.telegram_webhook_url
        kb = kb or KnowledgeBase(engine.apps[engine.default_app].client, repo, settings)
        self.kb = TelegramKb(kb, engine=engine, writer=self.writer, settings=settings, say=self.say)
        self.kb_handler: KbHandler = self.kb.handle
        self.me: Identity | None = None
        self.ready = asyncio.Event()
        self.received = 0  # updates received (claimed or duplicate), for tests and benchmarks
        self._progress = asyncio.Condition()
        self._told_private: collections.OrderedDict[tuple[int, int], None] = collections.OrderedDict()
        self._answers: collections.OrderedDict[tuple[int, int], str] = collections.OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_settings(cls, bridge: Bridge) -> TelegramAdapter:
        return cls(engine=bridge.engine, repo=bridge.repo, settings=bridge.settings, kb=bridge.kb)

    # ------------------------------------------------------------------ lifecycle

    @property
    def is_ready(self) -> bool:
        """True once updates are accepted (after setWebhook / deleteWebhook and recovery)."""
        return self.ready.is_set()

    def routes(self) -> list[web.RouteDef]:
        if not self.webhook:
            return []
        assert self.settings.telegram_webhook_secret is not None
        handler = webhook_handler(self.settings.telegram_webhook_secret.get_secret_value(), self.app.bot,
                                  self.receive, self._accepting)
        return [web.post("/telegram/webhook", handler)]

    async def start(self) -> None:
        if self.settings.allowed_users.empty:
            log.warning("Telegram: ALLOWED_USERS is empty, so anyone who finds the bot can use it")
        try:
            await self._prepare()
        except Exception as exc:  # noqa: BLE001 - keep serving the rest; doctor explains
            log.error("Telegram: cannot reach the Bot API (%s); retrying every %.0f s (run `dify-bridge doctor`)",
                      type(exc).__name__, RETRY_START)
            self._own(self._prepare_later(), "telegram-start")

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await self.kb.stop()
        with contextlib.suppress(Exception):
            await self.app.shutdown()

    async def wait_received(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` updates have been received (for tests and benchmarks)."""
        async with asyncio.timeout(timeout):
            async with self._progress:
                await self._progress.wait_for(lambda: self.received >= count)

    def _own(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _accepting(self) -> bool:
        return self.ready.is_set() and self.engine.accepting

    async def _prepare(self) -> None:
        """getMe, commands, webhook or polling; the interrupted answers are listed before any update."""
        await self.app.initialize()
        bot = self.app.bot
        self.me = Identity(bot.id, bot.username)
        interrupted = await self.engine.interrupted_replies("telegram")
        await self._set_commands()
        if self.webhook:
            assert self.settings.telegram_webhook_secret is not None
            await bot.set_webhook(self.webhook, secret_token=self.settings.telegram_webhook_secret.get_secret_value(),
                                  allowed_updates=ALLOWED_UPDATES)
        else:
            await bot.delete_webhook()
        log.info("Telegram: connected as @%s (%s)", bot.username, "webhook" if self.webhook else "long polling")
        self.ready.set()
        self.kb.start()  # finishes knowledge-base uploads a restart interrupted
        if interrupted:
            self.engine.spawn(self.recover(interrupted), name="telegram-recovery")
        if not self.webhook:
            self._own(poll(bot, self.receive, self._accepting), "telegram-polling")

    async def _prepare_later(self) -> None:
        while not self.ready.is_set():
            await asyncio.sleep(RETRY_START)
            try:
                await self._prepare()
            except Exception as exc:  # noqa: BLE001
                log.warning("Telegram: still cannot start (%s)", type(exc).__name__)

    async def _set_commands(self) -> None:
        def menu(names: tuple[str, ...]) -> list[BotCommand]:
            return [BotCommand(n, messages.TELEGRAM_COMMANDS[n]) for n in names]

        try:
            await self.app.bot.set_my_commands(menu(PRIVATE_COMMANDS), scope=BotCommandScopeAllPrivateChats())
            await self.app.bot.set_my_commands(menu(GROUP_COMMANDS), scope=BotCommandScopeAllGroupChats())
        except TelegramError as exc:
            log.warning("Telegram: could not set the command menu (%s)", exc)

    # ------------------------------------------------------------------ updates

    async def receive(self, update: Update) -> None:
        """Claim the update, then let the Application process it (at most once per update_id)."""
        try:
            if await self.repo.claim("telegram", str(update.update_id)):
                await self.app.process_update(update)
        finally:
            self.received += 1
            async with self._progress:
                self._progress.notify_all()

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert self.me is not None
        msg = classify(update, self.me)
        if msg is not None:
            self.engine.spawn(self._act(msg, time.monotonic()), name=f"telegram-{update.update_id}")

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("Telegram update could not be handled", exc_info=context.error)

    async def _act(self, msg: TgMessage, received: float) -> None:
        if not self._allowed(msg.user_id):
            await self._tell_private(msg)
        elif msg.command:
            await self._command(msg)
        else:
            await self._answer(msg, received)

    async def _answer(self, msg: TgMessage, received: float) -> None:
        scope = msg.scope or await self._answer_scope(msg)
        target = Target(chat_id=msg.chat_id, private=msg.private, thread_id=msg.thread_id,
                        reply_to=msg.reply_to, scope=scope, dify_user=msg.dify_user)
        incoming = Incoming(platform="telegram", scope=scope, user_id=str(msg.user_id), dify_user=msg.dify_user,
                            text=msg.text, attachments=msg.attachments, received_at=received)
        await self.engine.handle(incoming, TelegramReplySink(self.env, target))

    async def _answer_scope(self, msg: TgMessage) -> str:
        """A reply to one of the bot's answers continues that answer's conversation."""
        recent = self._answers.get((msg.chat_id, msg.reply_to_bot or 0))
        if recent is not None:
            return recent
        record = await self.repo.get_conversation(ANSWERS, f"{msg.chat_id}:{msg.reply_to_bot}")
        return record.conversation_id if record else root_scope(msg.chat_id, msg.message_id)

    async def _remember_answer(self, target: Target, message_id: int) -> None:
        if not target.private and target.thread_id is None:
            self._answers[(target.chat_id, message_id)] = target.scope  # before any await: no reply can miss it
            while len(self._answers) > RECENT_ANSWERS:
                self._answers.popitem(last=False)
            await self.repo.save_conversation(ANSWERS, f"{target.chat_id}:{message_id}", target.scope,
                                              target.dify_user)

    # ------------------------------------------------------------------ commands and short lines

    def _allowed(self, user_id: int) -> bool:
        access = self.settings.allowed_users
        return access.empty or access.allows("telegram", str(user_id))

    async def _tell_private(self, msg: TgMessage) -> None:
        key = (msg.user_id, msg.chat_id)
        if key in self._told_private:
            return
        log.info("Telegram: telegram:%s is not in ALLOWED_USERS; told once that the bot is private", msg.user_id)
        self._told_private[key] = None
        while len(self._told_private) > TOLD_PRIVATE:
            self._told_private.popitem(last=False)
        await self.say(msg, messages.PRIVATE_BOT)

    async def _command(self, msg: TgMessage) -> None:
        if msg.command == "kb":
            await self.kb_handler(msg)
        elif msg.command == "new":
            if msg.scope is None or not (msg.private or msg.thread_id is not None):
                await self.say(msg, messages.TELEGRAM_GROUP_NEW_HINT)
                return
            had = await self.engine.new_conversation("telegram", msg.scope)
            await self.say(msg, messages.NEW_CONVERSATION if had else messages.NO_CONVERSATION)
        else:  # help, start, a lone mention, an unknown command for this bot
            await self.say(msg, messages.help_text("telegram"))

    async def say(self, msg: TgMessage, markdown: str) -> None:
        """A short line for the user, where they wrote (a reply in groups)."""
        for i, part in enumerate(render_parts(markdown)):
            await self.writer.send(msg.chat_id, part, priority=FINAL, thread_id=msg.thread_id,
                                   reply_to=msg.reply_to if i == 0 else None)

    # ------------------------------------------------------------------ restart recovery

    async def recover(self, records: list[ReplyRecord]) -> int:
        """Finish answers a crash left streaming, with an "interrupted" footer. Returns how many."""
        finished = 0
        for record in records:
            try:
                await self._finish_interrupted(record.location)
            except TelegramError as exc:  # gone for good (deleted chat, bot blocked…)
                log.warning("could not finish interrupted answer %s: %s", record.id, exc)
            except Exception:
                log.exception("could not finish interrupted answer %s; will retry at next start", record.id)
                continue
            await self.engine.mark_reply(record.id, "interrupted")
            finished += 1
        return finished

    async def _finish_interrupted(self, loc: dict[str, Any]) -> None:
        chat_id, thread_id = loc.get("chat_id"), loc.get("thread_id")
        if chat_id is None or loc.get("mode") == "done":
            return
        footer = messages.stopped_footer(messages.INTERRUPTED)
        ids = list(loc.get("message_ids") or [])
        if loc.get("mode") == "edit" and ids and loc.get("text"):
            first, *rest = append_line(Part(loc["text"], tuple(loc.get("entities") or ())), footer)
            if await self.writer.edit(chat_id, ids[-1], first, priority=FINAL):
                for part in rest:
                    await self.writer.send(chat_id, part, priority=FINAL, thread_id=thread_id)
                return
        for part in render_parts(footer):  # only a draft was showing: say the answer was cut short
            await self.writer.send(chat_id, part, priority=FINAL, thread_id=thread_id,
                                   reply_to=None if ids else loc.get("reply_to"))
