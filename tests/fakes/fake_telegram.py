"""A fake Telegram Bot API server on loopback, faithful enough for python-telegram-bot.

    async with FakeTelegram() as tg:
        bot = telegram.Bot(tg.token, base_url=f"{tg.url}/bot", base_file_url=f"{tg.url}/file/bot")

Speaks the real wire format: `/bot<token>/<method>` by GET or POST (query string,
form-urlencoded, multipart or JSON body; method names are case-insensitive), answers
`{"ok": true, "result": ...}` or `{"ok": false, "error_code": N, "description": ...}`, and
serves files at `/file/bot<token>/<file_path>`. Like api.telegram.org, a wrong token gets
401 "Unauthorized" and an unknown method 404 "Not Found" (a self-hosted telegram-bot-api
says "Not Found: method not found"). Methods live in the mixins:
`fake_telegram_messages` (messages, drafts, actions, commands, files) and
`fake_telegram_updates` (getUpdates, webhooks); text rules in `fake_telegram_text`,
flood control in `fake_telegram_flood`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from types import TracebackType
from typing import Any, Awaitable, Callable

import aiohttp
from aiohttp import web

from tests.fakes.fake_telegram_flood import FloodControl, FloodLimits
from tests.fakes.fake_telegram_messages import MessagingMethods
from tests.fakes.fake_telegram_models import ApiError, Call, SentMessage, StoredFile, decode_params
from tests.fakes.fake_telegram_updates import UpdateMethods

__all__ = ["Call", "FakeTelegram", "FloodLimits", "SentMessage"]

Handler = Callable[[dict, dict], Awaitable[Any]]
_NOT_FOUND = {"ok": False, "error_code": 404, "description": "Not Found"}


class FakeTelegram(MessagingMethods, UpdateMethods):
    """The Bot API for one bot; inspect what the bot did through the public attributes."""

    def __init__(self, *, token: str = "123456:TEST-token", bot_id: int = 123456,
                 username: str = "dify_test_bot", drafts: bool | str = True,
                 limits: FloodLimits | None = None, latency: float = 0.0) -> None:
        """`drafts`: True = sendMessageDraft works in private chats; False = the method is unknown
        (404, like a Bot API older than 9.3); a string = the description of the 400 every draft
        call gets. `latency`: seconds every API call waits before answering (benchmarks)."""
        self.token, self.bot_id, self.username = token, bot_id, username
        self.draft_mode = drafts
        self.flood = FloodControl(limits or FloodLimits())
        self.latency = latency
        self.url = ""
        self.calls: list[Call] = []
        self.webhook: dict | None = None
        self.allowed_updates: list[str] | None = None
        self.webhook_deliveries: list[dict] = []
        self.polls_waiting = 0  # getUpdates requests now waiting for an update
        self.chats: dict[int, list[SentMessage]] = {}
        self.drafts: dict[int, list[dict]] = {}
        self.chat_actions: list[dict] = []
        self.commands: list[dict] = []
        self.ratelimited = 0
        self.file_downloads: list[str] = []
        self._updates: list[dict] = []
        self._chat_info: dict[int, dict] = {}
        self._seen: dict[tuple[int, int], dict] = {}
        self._last_ids: dict[int, int] = {}
        self._files: dict[str, StoredFile] = {}
        self._file_numbers = itertools.count(1)
        self._my_commands: dict[str, list[dict]] = {}
        self._cond = asyncio.Condition()
        self._closing = False
        self._poll_generation = 0
        self._last_update_id = 0
        self._delivery: asyncio.Task | None = None
        self._webhook_error: tuple[int, str] | None = None
        self._background: set[asyncio.Task] = set()
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        table = {**self.MESSAGING_METHODS, **self.UPDATE_METHODS}
        self._methods: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, getattr(self, attr)) for name, attr in table.items()}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listens on 127.0.0.1 at a free port; sets `url`."""
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._http = aiohttp.ClientSession()

    async def stop(self) -> None:
        """Ends waiting long polls and webhook deliveries, then closes the server."""
        self._closing = True
        await self._notify()
        if self._delivery is not None:
            self._delivery.cancel()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str) -> list[Call]:
        """Calls of one method (case-insensitive), in the order they were answered."""
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def final_text(self, chat_id: int, message_thread_id: int | None = None) -> list[str]:
        """The current text of each (undeleted) bot message in the chat / topic, oldest first."""
        return [msg.text for msg in self.chats.get(chat_id, [])
                if not msg.deleted and (message_thread_id is None or msg.message_thread_id == message_thread_id)]

    async def wait_for(self, predicate: Callable[[FakeTelegram], bool], timeout: float = 10) -> None:
        """Waits until `predicate(self)` holds; re-checked after every call, update and delivery."""
        try:
            async with asyncio.timeout(timeout):
                async with self._cond:
                    await self._cond.wait_for(lambda: predicate(self))
        except TimeoutError:
            recent = ", ".join(f"{c.method}:{c.status}" for c in self.calls[-10:]) or "none"
            raise AssertionError(f"fake Telegram: condition not met within {timeout}s; "
                                 f"last calls: {recent}") from None

    def add_file(self, content: bytes, *, file_path: str | None = None, file_size: int | None = None) -> str:
        """Stores a file for getFile + download and returns its file_id. `file_size` overrides
        the reported size (e.g. 25 MB to get "file is too big"); file_path defaults to
        documents/file_<n>.txt."""
        number = next(self._file_numbers)
        file_id = f"BQACAgIAAxkBAAI{number:04d}{secrets.token_urlsafe(18)}"
        stored = StoredFile(file_id=file_id, file_unique_id=f"AgAD{number:04d}{secrets.token_hex(4)}",
                            file_path=file_path or f"documents/file_{number}.txt", content=content,
                            file_size=len(content) if file_size is None else file_size)
        self._files[file_id] = stored
        return file_id

    # ------------------------------------------------------------------ HTTP

    async def _handle_api(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        params, files = await self._read_params(request)
        name = request.match_info["method"]
        status, body = await self._answer(request.match_info["token"], name, params, files)
        method = self._methods.get(name.lower(), (name,))[0]
        self.calls.append(Call(method=method, params=params, time=arrived, response=body, status=status,
                               files=files))
        await self._notify()
        return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def _answer(self, token: str, name: str, params: dict, files: dict) -> tuple[int, dict]:
        if token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        entry = self._methods.get(name.lower())
        if entry is None or (entry[0] == "sendMessageDraft" and self.draft_mode is False):
            return 404, dict(_NOT_FOUND)
        if self.latency:
            await asyncio.sleep(self.latency)  # simulated network + server time
        try:
            return 200, {"ok": True, "result": await entry[1](params, files)}
        except ApiError as exc:
            if exc.code == 429:
                self.ratelimited += 1
            return exc.code, exc.payload()

    @staticmethod
    async def _read_params(request: web.Request) -> tuple[dict, dict[str, bytes]]:
        """Query string + body (form, multipart or JSON) → decoded params and uploaded files."""
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        if request.content_type == "application/json" and request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                raw.update(body)
        elif request.can_read_body:
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                else:
                    raw[key] = value
        return decode_params(raw), files

    async def _handle_file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        stored = next((f for f in self._files.values() if f.file_path == path), None)
        if request.match_info["token"] != self.token or stored is None:
            return web.json_response(_NOT_FOUND, status=404)
        self.file_downloads.append(path)
        await self._notify()
        return web.Response(body=stored.content, content_type="application/octet-stream")
