"""The Slack adapter: slack-bolt `AsyncApp` wiring, exactly-once delivery, commands, restart recovery.

HTTP mode: Events API, slash commands and interactivity at `POST /slack/events` on the bridge's
aiohttp server, verified with SLACK_SIGNING_SECRET. Socket Mode when SLACK_APP_TOKEN is set. Bolt
acks before any listener runs; the answer runs in a task the engine owns. Every delivery
(`event_id`) and every message (channel + ts) is claimed durably, so retries, `app_mention` +
`message.channels` twins and redeliveries after a restart are answered once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from adapters.shared.pacing import FIRST
from bots import messages
from bots.config import Settings
from bots.engine import Engine
from bots.kb import KnowledgeBase
from bots.types import Incoming
from storage import Repository

from .kb import SlackKb
from .listeners import Identity, SlackMessage, classify, dm_scope
from .pacing import SlackWriter, slack_error
from .recovery import recover
from .sink import SlackReplySink
from .target import Refusals, SinkEnv, Target

if TYPE_CHECKING:
    from bots.app import Bridge

log = logging.getLogger("adapters.slack")

API_TIMEOUT = 15.0  # seconds for one Web API call
ACK_BUDGET = 2.0  # seconds a slash command may spend before it must ack
ACTIVE_SCOPES = 10_000  # threads remembered as "ours" before their conversation id is saved

KbHandler = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class SlackAdapter:
    """Slack for the bridge (see module docstring). `kb_handler` / `kb_shortcut_handler` are swappable."""

    name = "slack"

    def __init__(self, *, engine: Engine, repo: Repository, settings: Settings,
                 kb: KnowledgeBase | None = None) -> None:
        assert settings.slack_bot_token is not None
        self.engine, self.repo, self.settings = engine, repo, settings
        self._token = settings.slack_bot_token.get_secret_value()
        self.client = AsyncWebClient(token=self._token, base_url=settings.slack_api_url, timeout=API_TIMEOUT)
        # Bolt's client has no token: `authorize` hands it ours with the cached auth.test result, so a burst
        # of first events does not become a burst of auth.test calls.
        self._bolt_client = AsyncWebClient(base_url=settings.slack_api_url, timeout=API_TIMEOUT)
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""

        async def authorize() -> AuthorizeResult:  # a closure: Bolt inspects argument names
            await self.identity()
            return AuthorizeResult.from_auth_test_response(auth_test_response=self._auth, bot_token=self._token)

        self.app = AsyncApp(client=self._bolt_client, authorize=authorize, signing_secret=secret,
                            process_before_response=False, name="dify-bridge", logger=logging.getLogger("slack_bolt"))
        self.writer = SlackWriter(self.client, settings.slack_limits, metrics=engine.metrics)
        self.env = SinkEnv(self.writer, Refusals(), settings.slack_stream_mode)
        self.socket_mode = settings.slack_app_token is not None
        kb = kb or KnowledgeBase(engine.apps[engine.default_app].client, repo, settings)
        self.kb = SlackKb(kb, engine=engine, writer=self.writer, client=self.client, settings=settings,
                          allowed=self._allowed, say=self._say)
        self.kb_handler: KbHandler = self.kb.slash
        self.kb_shortcut_handler: KbHandler = self.kb.shortcut
        self._me: Identity | None = None
        self._auth: Any = None
        self._me_lock = asyncio.Lock()
        self._active: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._told_private: set[tuple[str, str]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._socket: Any = None
        self._connecting: asyncio.Task[None] | None = None
        self.recovery: asyncio.Task[int] | None = None  # finishing interrupted answers (started by start())
        self.handled = 0  # event deliveries fully processed (answered, ignored or deduplicated)
        self._progress = asyncio.Condition()
        self._register()

    @classmethod
    def from_settings(cls, bridge: Bridge) -> SlackAdapter:
        return cls(engine=bridge.engine, repo=bridge.repo, settings=bridge.settings, kb=bridge.kb)

    # ------------------------------------------------------------------ lifecycle

    def routes(self) -> list[web.RouteDef]:
        return [] if self.socket_mode else [web.post("/slack/events", self._http)]

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=API_TIMEOUT))
        self.client.session = self._bolt_client.session = self._session
        try:
            me = await self.identity()
            log.info("Slack: connected as %s (%s)", me.bot_user_id, "Socket Mode" if self.socket_mode else "HTTP")
        except Exception as exc:  # noqa: BLE001 - retried on the first event; doctor explains
            log.error("Slack: auth.test failed (%s); run `dify-bridge doctor`", slack_error(exc) or type(exc).__name__)
        if self.socket_mode:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            assert self.settings.slack_app_token is not None
            self._socket = AsyncSocketModeHandler(
                self.app, self.settings.slack_app_token.get_secret_value(), web_client=self.client)
            self._connecting = asyncio.create_task(self._socket.connect_async(), name="slack-socket-mode")
        self.recovery = self.engine.spawn(recover(self.engine, self.writer), name="slack-recovery")
        self.kb.start()  # finishes knowledge-base uploads a restart interrupted

    async def stop(self) -> None:
        await self.kb.stop()
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting
        if self._session is not None:
            await self._session.close()
            self._session = self.client.session = self._bolt_client.session = None

    async def wait_handled(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` event deliveries have been processed (for tests and benchmarks)."""
        async with asyncio.timeout(timeout):
            async with self._progress:
                await self._progress.wait_for(lambda: self.handled >= count)

    async def identity(self) -> Identity:
        """Who the bot is (one `auth.test`, cached)."""
        async with self._me_lock:
            if self._me is None:
                self._auth = await self.client.auth_test()
                self._me = Identity(str(self._auth["user_id"]), self._auth.get("bot_id"))
            return self._me

    # ------------------------------------------------------------------ transport

    async def _http(self, request: web.Request) -> web.Response:
        if not self.engine.accepting:  # shutting down: Slack redelivers later
            return web.Response(status=503, text="shutting down")
        response = await self.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(response)

    def _register(self) -> None:
        app = self.app

        async def accepting(next: Callable[[], Awaitable[Any]]) -> Any:
            if not self.engine.accepting:  # Socket Mode: no ack, so Slack redelivers later
                return BoltResponse(status=503, body="shutting down")
            return await next()

        async def on_event(body: dict[str, Any]) -> None:
            received = time.monotonic()
            if self.engine.accepting:
                self.engine.spawn(self.process(body, received), name=f"slack-{body.get('event_id')}")

        async def on_new(ack: Any, command: dict[str, Any]) -> None:
            await ack(text=await self._slash_new(command), response_type="ephemeral")

        async def on_help(ack: Any, command: dict[str, Any]) -> None:
            allowed = self._allowed(command.get("user_id", ""))
            text = messages.help_text("slack") if allowed else messages.PRIVATE_BOT
            await ack(text=text, response_type="ephemeral")

        async def on_kb(ack: Any, command: dict[str, Any], respond: Any) -> None:
            await self.kb_handler(command, ack, respond)

        async def on_kb_shortcut(ack: Any, shortcut: dict[str, Any], respond: Any) -> None:
            await self.kb_shortcut_handler(shortcut, ack, respond)

        app.use(accepting)
        app.event("app_mention")(on_event)
        app.event("message")(on_event)
        app.command("/new")(on_new)
        app.command("/help")(on_help)
        app.command("/kb")(on_kb)
        app.shortcut("kb_add")(on_kb_shortcut)

    # ------------------------------------------------------------------ messages

    async def process(self, body: dict[str, Any], received: float | None = None) -> None:
        """Answer one event delivery at most once (runs in an engine-owned task)."""
        try:
            await self._process(body, received)
        finally:
            self.handled += 1
            async with self._progress:
                self._progress.notify_all()

    async def _process(self, body: dict[str, Any], received: float | None) -> None:
        msg = classify(body, await self.identity(), ignore_bots=self.settings.slack_ignore_bots)
        if msg is None:
            return
        if msg.needs_conversation and not await self._has_conversation(msg.scope):
            return  # a thread the bot is not part of
        event_id = body.get("event_id")
        keys = ([str(event_id)] if event_id else []) + [f"msg:{msg.channel}:{msg.ts}"]
        if not await self.repo.claim_all("slack", keys):
            return  # a retried delivery, or the same message through another event type
        if not self._allowed(msg.user):
            await self._tell_private(msg)
        elif msg.kb_add is not None:
            await self.kb.on_message(msg, msg.kb_add)
        elif msg.command:
            await self._word_command(msg)
        elif not msg.text:
            if msg.kind == "app_mention":
                await self._say(msg, messages.help_text("slack"))
        else:
            await self._answer(msg, received)

    async def _answer(self, msg: SlackMessage, received: float | None) -> None:
        self._active[msg.scope] = None
        while len(self._active) > ACTIVE_SCOPES:
            self._active.popitem(last=False)
        target = Target(team=msg.team, channel=msg.channel, channel_type=msg.channel_type,
                        thread_ts=msg.reply_thread, user=msg.user, user_team=msg.user_team)
        incoming = Incoming(platform="slack", scope=msg.scope, user_id=msg.user, dify_user=msg.dify_user,
                            text=msg.text, attachments=msg.attachments, received_at=received)
        await self.engine.handle(incoming, SlackReplySink(self.env, target))

    async def _has_conversation(self, scope: str) -> bool:
        if scope in self._active:
            return True
        return await self.repo.get_conversation("slack", scope, self.engine.default_app) is not None

    def _allowed(self, user: str) -> bool:
        access = self.settings.allowed_users
        return access.empty or access.allows("slack", user)

    async def _word_command(self, msg: SlackMessage) -> None:
        if msg.command == "help":
            await self._say(msg, messages.help_text("slack"))
        elif msg.is_dm:
            had = await self.engine.new_conversation("slack", msg.scope)
            await self._say(msg, messages.NEW_CONVERSATION if had else messages.NO_CONVERSATION)
        else:
            await self._say(msg, messages.CHANNEL_NEW_HINT)

    async def _tell_private(self, msg: SlackMessage) -> None:
        key = (msg.user, msg.scope)
        if key not in self._told_private:
            self._told_private.add(key)
            await self._say(msg, messages.PRIVATE_BOT, ephemeral=True)

    async def _say(self, msg: SlackMessage, text: str, *, ephemeral: bool | None = None) -> None:
        """A short line for the user: in a DM a message, in a channel one only they see."""
        args: dict[str, Any] = {"channel": msg.channel, "text": text}
        if msg.reply_thread:
            args["thread_ts"] = msg.reply_thread
        if ephemeral or (ephemeral is None and not msg.is_dm):
            await self.writer.call(msg.team, "chat.postEphemeral", {**args, "user": msg.user}, FIRST)
        else:
            await self.writer.call(msg.team, "chat.postMessage", args, FIRST)

    async def _slash_new(self, command: dict[str, Any]) -> str:
        if not self._allowed(command.get("user_id", "")):
            return messages.PRIVATE_BOT
        channel = str(command.get("channel_id", ""))
        if not channel.startswith("D"):
            return messages.CHANNEL_NEW_HINT
        scope = dm_scope(str(command.get("team_id", "")), channel)
        reset = self.engine.spawn(self.engine.new_conversation("slack", scope), name="slack-new")
        done, _ = await asyncio.wait({reset}, timeout=ACK_BUDGET)  # an answer in flight holds the scope
        had = reset.result() if done and not reset.exception() else True
        return messages.NEW_CONVERSATION if had else messages.NO_CONVERSATION
