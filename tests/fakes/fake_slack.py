"""A faithful fake of the Slack Web API on loopback, for adapter tests and benchmarks.

Point the real client at it: ``AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)``.
It speaks Slack's wire format: POST/GET ``/api/<method>`` with a JSON, form or multipart body (or a
query string), the token in ``Authorization: Bearer ...`` or a ``token`` argument; answers HTTP 200
with ``{"ok": ...}``, or HTTP 429 + ``Retry-After`` + ``{"ok": false, "error": "ratelimited"}``.
It also hosts private files (``/files-pri/...``, token required) and records ``response_url`` posts.
Default budgets and size limits, with their sources, are in fake_slack_models.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from typing import Any, Callable

from aiohttp import web

from tests.fakes.fake_slack_methods import METHODS, STREAM_METHODS
from tests.fakes.fake_slack_models import DEFAULT_LIMITS, STREAM_MAX_CHARS, Call, Msg, RateLimit, SlidingWindow

__all__ = ["FakeSlack", "RateLimit", "Call", "Msg", "DEFAULT_LIMITS"]

LOGIN_PAGE = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"


class FakeSlack:
    """Fake Slack Web API + private file host + response_url receiver (aiohttp, 127.0.0.1, random port)."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        team_id: str = "T0TEST",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        app_id: str = "A0APP",
        app_token: str = "xapp-test-token",
        limits: dict[str, RateLimit | None] | None = None,
        native_streaming: bool | str = True,
        stream_expires_after: int | None = None,
        stream_ttl: float | None = None,
        stream_max_chars: int = STREAM_MAX_CHARS,
        latency: float = 0.0,
    ) -> None:
        """`limits` overrides DEFAULT_LIMITS per method (None = unlimited). `native_streaming`: a string makes
        every chat.startStream answer that error ("unknown_method" disables all three stream methods);
        False means "channel_type_not_supported".
        `stream_expires_after`: a stream stops accepting appends/stop after N appends; `stream_ttl`: after
        that many seconds. `latency` delays every API answer (seconds)."""
        self.bot_token, self.app_token = bot_token, app_token
        self.team_id, self.bot_user_id, self.bot_id, self.app_id = team_id, bot_user_id, bot_id, app_id
        self.team_domain = "fake-team"
        merged: dict[str, RateLimit | None] = {**DEFAULT_LIMITS, **(limits or {})}
        self.limits: dict[str, RateLimit] = {k: v for k, v in merged.items() if v is not None}
        if native_streaming is False:
            native_streaming = "channel_type_not_supported"
        self.native_streaming: bool | str = native_streaming
        self.stream_expires_after, self.stream_ttl = stream_expires_after, stream_ttl
        self.stream_max_chars, self.latency = stream_max_chars, latency

        self.calls: list[Call] = []
        self.messages: dict[str, list[Msg]] = defaultdict(list)
        self.ephemerals: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.ratelimited = 0
        self.files: dict[str, bytes] = {}
        self.file_objects: dict[str, dict[str, Any]] = {}
        self.file_downloads: list[tuple[str, dict[str, str]]] = []
        self.responses: dict[str, list[dict[str, Any]]] = defaultdict(list)

        self._index: dict[tuple[str, str], Msg] = {}
        self._window = SlidingWindow()
        self._file_ids = itertools.count(1)
        self._cond: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self.root_url = ""
        self.api_url = ""

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        self._cond = asyncio.Condition()
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/files-pri/{tf}/download/{name}", self._download)
        app.router.add_get("/files-pri/{tf}/{name}", self._download)
        app.router.add_post("/response-url/{rid}", self._response_url)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.root_url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.root_url}/api/"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- inspection ------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def thread(self, channel: str, thread_ts: str) -> list[Msg]:
        """Bot messages posted in that thread, in posting order."""
        return [m for m in self.messages.get(channel, []) if m.thread_ts == thread_ts]

    @staticmethod
    def final_text(msg: Msg) -> str:
        """What a user finally sees: a stream's accumulated markdown, else markdown_text, block text or text."""
        return msg.visible()

    def response_url(self, rid: str) -> str:
        return f"{self.root_url}/response-url/{rid}"

    def add_file(self, name: str, content: bytes, mimetype: str, filetype: str, *, user: str = "U1") -> dict[str, Any]:
        """Host a private file and return its Slack file object (as in message events / files.info)."""
        fid = f"F0FILE{next(self._file_ids):05d}"
        base = f"{self.root_url}/files-pri/{self.team_id}-{fid}"
        now = int(time.time())
        obj = {
            "id": fid, "created": now, "timestamp": now, "name": name, "title": name,
            "mimetype": mimetype, "filetype": filetype, "pretty_type": filetype.upper(),
            "user": user, "user_team": self.team_id, "editable": False, "size": len(content),
            "mode": "hosted", "is_external": False, "external_type": "", "is_public": False,
            "public_url_shared": False, "display_as_bot": False, "username": "",
            "url_private": f"{base}/{name}", "url_private_download": f"{base}/download/{name}",
            "permalink": f"https://{self.team_domain}.slack.com/files/{user}/{fid}/{name}",
        }
        self.files[fid] = content
        self.file_objects[fid] = obj
        return obj

    async def wait_for(self, predicate: Callable[[FakeSlack], bool], timeout: float = 10) -> None:
        """Wait until predicate(self) holds, re-checked whenever the fake records something."""
        assert self._cond is not None, "start() the fake first"
        try:
            async with asyncio.timeout(timeout):
                async with self._cond:
                    await self._cond.wait_for(lambda: predicate(self))
        except TimeoutError:
            recent = [f"{c.method}:{c.status}:{c.error or 'ok'}" for c in self.calls[-15:]]
            raise TimeoutError(f"fake Slack: condition not met within {timeout}s; last calls {recent}") from None

    # ---- internals used by handlers ------------------------------------------------------

    def _store(self, msg: Msg) -> None:
        msg.snapshot()
        self.messages[msg.channel].append(msg)
        self._index[(msg.channel, msg.ts)] = msg

    def _find(self, channel: str, ts: str) -> Msg | None:
        return self._index.get((channel, ts))

    async def _notify(self) -> None:
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()

    # ---- HTTP handlers ---------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        call = Call(method=method, args=args, headers=dict(request.headers), time=time.monotonic())
        status, body, headers = self._dispatch(method, args, request.headers.get("Authorization", ""))
        call.status, call.response = status, body
        self.calls.append(call)
        if self.latency:
            await asyncio.sleep(self.latency)  # simulated network/API latency
        await self._notify()
        return web.json_response(body, status=status, headers=headers)

    def _dispatch(self, method: str, args: dict[str, Any], authorization: str) -> tuple[int, dict, dict]:
        handler = METHODS.get(method)
        if handler is None or (method in STREAM_METHODS and self.native_streaming == "unknown_method"):
            return 200, {"ok": False, "error": "unknown_method"}, {}
        token = authorization[7:].strip() if authorization.startswith("Bearer ") else str(args.get("token") or "")
        wants_app = method == "apps.connections.open"
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token != (self.app_token if wants_app else self.bot_token):
            known = token in (self.app_token, self.bot_token)
            return 200, {"ok": False, "error": "not_allowed_token_type" if known else "invalid_auth"}, {}
        rule = self.limits.get(method)
        if rule is not None:
            key = self.team_id if rule.scope == "workspace" else str(args.get("channel") or args.get("channel_id"))
            retry_after = self._window.check(method, key, rule)
            if retry_after is not None:
                self.ratelimited += 1
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
        return 200, handler(self, args), {}

    async def _download(self, request: web.Request) -> web.Response:
        self.file_downloads.append((request.path, dict(request.headers)))
        await self._notify()
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
            return web.Response(text=LOGIN_PAGE, content_type="text/html")  # real Slack: 200 + login page
        fid = request.match_info["tf"].rsplit("-", 1)[-1]
        obj = self.file_objects.get(fid)
        if obj is None or obj["name"] != request.match_info["name"]:
            return web.Response(status=404, text="<html><body>File not found</body></html>", content_type="text/html")
        return web.Response(body=self.files[fid], content_type=obj["mimetype"])

    async def _response_url(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            return web.Response(status=400, text="invalid_payload", content_type="text/plain")
        self.responses[request.match_info["rid"]].append(payload)
        await self._notify()
        return web.Response(text="ok", content_type="text/plain")


async def _read_args(request: web.Request) -> dict[str, Any]:
    """Merge query-string, JSON and form (urlencoded or multipart) arguments like Slack does."""
    args: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return args
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            args.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for key, value in (await request.post()).items():
            args[key] = value.file.read() if isinstance(value, web.FileField) else value
    return args
