"""A faithful fake of the Dify Service API (0.15.3 or 1.12.1 wire format) on loopback, for tests and benchmarks.

    async with FakeDify(version="0.15") as fake:
        fake.plan(Plan(answer="hi there", token_gap=0.05), Plan(http_error=(429, "too_many_requests", "busy")))
        client = DifyClient(base_url=fake.url, api_key=fake.app_key)  # fake.url ends in /v1

One app (key `app_key`, mode `app_mode`) and a knowledge API (key `dataset_key`). Every chat-messages request
takes the next queued Plan (default_plan or Plan() when none is queued), which decides the answer text, timing,
pings and failures. The byte format, status codes and error texts follow the recordings copied into
tests/data/dify-0.15.3 and tests/data/dify-1.12.1 (see fake_dify_wire.py for the per-version rules).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import BodyPartReader, hdrs, web

from tests.fakes import fake_dify_app as app_api
from tests.fakes import fake_dify_kb as kb_api
from tests.fakes.fake_dify_chat import chat_messages, stop_task
from tests.fakes.fake_dify_models import (
    DEFAULT_INDEXING_STEPS,
    Conversation,
    Dataset,
    Document,
    Message,
    Plan,
    RecordedRequest,
    UploadedFile,
)
from tests.fakes.fake_dify_wire import HTML_404, HTML_HOME, Ctx, Wire

__all__ = ["FakeDify", "Plan", "RecordedRequest", "Conversation", "Message", "Dataset", "Document", "UploadedFile"]

Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_DS = rf"/datasets/(?P<dsid>{_UUID})"


async def _not_workflow_app(ctx: Ctx) -> web.StreamResponse:
    return ctx.wire.error(400, "not_workflow_app", "Please check if your app mode matches the right API route.")


# (path regex under /v1, {method: handler}, key scope or None)
ROUTES: list[tuple[str, dict[str, Handler], str | None]] = [
    (r"/?", {"GET": app_api.index}, None),
    (r"/info", {"GET": app_api.info}, "app"),
    (r"/parameters", {"GET": app_api.parameters}, "app"),
    (r"/meta", {"GET": app_api.meta}, "app"),
    (r"/files/upload", {"POST": app_api.files_upload}, "app"),
    (r"/chat-messages", {"POST": chat_messages}, "app"),
    (r"/chat-messages/(?P<task_id>[^/]+)/stop", {"POST": stop_task}, "app"),
    (r"/messages", {"GET": app_api.messages}, "app"),
    (rf"/messages/(?P<mid>{_UUID})/feedbacks", {"POST": app_api.feedback}, "app"),
    (rf"/messages/(?P<mid>{_UUID})/suggested", {"GET": app_api.suggested}, "app"),
    (r"/conversations", {"GET": app_api.conversations}, "app"),
    (rf"/conversations/(?P<cid>{_UUID})", {"DELETE": app_api.delete_conversation}, "app"),
    (rf"/conversations/(?P<cid>{_UUID})/name", {"POST": app_api.rename}, "app"),
    (r"/workflows/run", {"POST": _not_workflow_app}, "app"),
    (r"/datasets", {"GET": kb_api.list_datasets, "POST": kb_api.create_dataset}, "dataset"),
    (_DS, {"GET": kb_api.get_dataset}, "dataset"),
    (_DS + r"/document/(?:create_by_text|create-by-text)", {"POST": kb_api.create_by_text}, "dataset"),
    (_DS + r"/document/(?:create_by_file|create-by-file)", {"POST": kb_api.create_by_file}, "dataset"),
    (_DS + r"/documents/(?P<batch>[^/]+)/indexing-status", {"GET": kb_api.indexing_status}, "dataset"),
    (_DS + r"/documents", {"GET": kb_api.list_documents}, "dataset"),
    (_DS + rf"/documents/(?P<docid>{_UUID})", {"DELETE": kb_api.delete_document}, "dataset"),
]
_COMPILED = [(re.compile(pattern), methods, scope) for pattern, methods, scope in ROUTES]


class FakeDify:
    """Fake Dify API server (aiohttp on 127.0.0.1, random port). Use `async with` or start()/stop()."""

    def __init__(
        self,
        *,
        version: str = "1.12",
        app_key: str = "app-test-key",
        dataset_key: str = "dataset-test-key",
        app_mode: str = "chat",
        default_plan: Plan | None = None,
        user_input_form: list | None = None,
        indexing_steps: list[str] | None = None,
        upload_limit_mb: float = 15,
        backlog: int = 128,
    ) -> None:
        """`version` "0.15" or "1.12"; `app_mode` "chat", "agent-chat" or "advanced-chat"; `indexing_steps` are
        the indexing_status values reported by successive indexing-status polls (the last one repeats);
        `upload_limit_mb` bounds /files/upload and create_by_file (413 file_too_large above it);
        `backlog` is the listen queue (raise it when hundreds of clients connect at once, as benchmarks do)."""
        self.wire = Wire(version)
        self.version = version
        self.app_key, self.dataset_key, self.app_mode = app_key, dataset_key, app_mode
        self.default_plan = default_plan
        self.user_input_form: list = list(user_input_form or [])
        self.indexing_steps = list(indexing_steps or DEFAULT_INDEXING_STEPS)
        self.upload_limit_mb = upload_limit_mb
        self.backlog = backlog
        self.opening_statement = "Hi from the chatflow." if app_mode == "advanced-chat" else "Hi, I am the fake app."
        self.account_id, self.tenant_id = str(uuid.uuid4()), str(uuid.uuid4())

        self.plans: collections.deque[Plan] = collections.deque()
        self.requests: list[RecordedRequest] = []
        self.conversations: dict[str, Conversation] = {}
        self.stopped_tasks: set[str] = set()
        self.active_streams = 0
        self.datasets: dict[str, Dataset] = {}
        self.uploads: dict[str, UploadedFile] = {}
        self.feedbacks: list[dict[str, Any]] = []

        self._tasks: dict[str, tuple[str, asyncio.Event]] = {}
        self._seq: dict[str, int] = {}
        self._counter = itertools.count(1)
        self._cond: asyncio.Condition | None = None
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.root_url = ""

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> FakeDify:
        self._cond, self._closing = asyncio.Condition(), asyncio.Event()
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=self.backlog)
        await site.start()
        port = self._runner.addresses[0][1]
        self.root_url = f"http://127.0.0.1:{port}"
        self.url = f"{self.root_url}/v1"
        return self

    async def stop(self) -> None:
        """Stop serving; hanging answers are cut off."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDify:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- test API ----------------------------------------------------------------------------

    def plan(self, *plans: Plan) -> None:
        """Queue plans; each chat-messages request (after auth) consumes one."""
        self.plans.extend(plans)

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/chat-messages"]

    async def wait_for_requests(
        self, n: int, path: str = "/chat-messages", timeout: float = 5
    ) -> list[RecordedRequest]:
        """Wait until `n` requests to `path` (relative to /v1) have arrived; returns them."""
        await self.wait_for(lambda f: len([r for r in f.requests if r.path == path]) >= n, timeout)
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, predicate: Callable[[FakeDify], bool], timeout: float = 5) -> None:
        """Wait until predicate(self) holds; re-checked on every request and every stream end."""
        assert self._cond is not None, "start() the fake first"
        try:
            async with asyncio.timeout(timeout):
                async with self._cond:
                    await self._cond.wait_for(lambda: predicate(self))
        except TimeoutError:
            recent = [f"{r.method} {r.path}" for r in self.requests[-10:]]
            raise TimeoutError(f"fake Dify: condition not met within {timeout}s; last requests {recent}") from None

    def add_dataset(self, id: str | None = None, name: str = "fake-kb", indexing_technique: str | None = "economy",
                    enable_api: bool = True) -> str:
        """Create a knowledge base directly (no HTTP) and return its id."""
        ds = Dataset(id=id or str(uuid.uuid4()), name=name, indexing_technique=indexing_technique,
                     enable_api=enable_api)
        self.datasets[ds.id] = ds
        self._order(ds.id)
        return ds.id

    def documents(self, dataset_id: str) -> list[Document]:
        return list(self.datasets[dataset_id].documents.values())

    def end_user_id(self, user: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-dify-end-user:{user}"))

    # ---- internals used by handlers --------------------------------------------------------

    def _next_plan(self) -> Plan:
        if self.plans:
            return self.plans.popleft()
        return self.default_plan or Plan()

    def _order(self, key: str) -> int:
        """Creation sequence number of an object id (assigned on first call)."""
        return self._seq.setdefault(key, next(self._counter))

    async def _notify(self) -> None:
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path != "/v1" and not path.startswith("/v1/"):
            await self._record(request, path, None, None, {})
            return Wire.html(200 if path == "/" else 404, HTML_HOME if path == "/" else HTML_404, server=None)
        ctx = Ctx(fake=self, request=request, wire=self.wire, path=path, query=dict(request.query))
        bad_json = await _read_body(request, ctx)
        await self._record(request, path[3:] or "/", ctx.json, ctx.form, ctx.files)
        for pattern, methods, scope in _COMPILED:
            match = pattern.fullmatch(path[3:])
            if match is None:
                continue
            handler = methods.get(request.method)
            if handler is None:
                return self.wire.method_not_allowed()
            if scope is not None and (denied := self._auth(request, scope)) is not None:
                return denied
            if bad_json:
                return self.wire.error(400, "bad_request",
                                       "The browser (or proxy) sent a request that this server could not understand.")
            ctx.params = {k: v for k, v in match.groupdict().items() if v is not None}
            return await handler(ctx)
        return self.wire.not_found_route(path)

    def _auth(self, request: web.Request, scope: str) -> web.Response | None:
        header = request.headers.get("Authorization")
        if header is None or " " not in header.strip() or header.split(None, 1)[0].lower() != "bearer":
            return self.wire.error(401, "unauthorized", "Authorization header must be provided and start with 'Bearer'")
        token = header.split(None, 1)[1].strip()
        if token != (self.app_key if scope == "app" else self.dataset_key):
            return self.wire.error(401, "unauthorized", "Access token is invalid")
        return None

    async def _record(self, request: web.Request, path: str, body: Any, form: dict | None, files: dict) -> None:
        self.requests.append(RecordedRequest(
            method=request.method, path=path, headers=dict(request.headers), json=body, form=form, files=files,
            time=time.monotonic(), query=dict(request.query)))
        await self._notify()


async def _read_body(request: web.Request, ctx: Ctx) -> bool:
    """Fill ctx.json / ctx.form / ctx.files; True when a JSON body could not be parsed."""
    if not request.can_read_body:
        return False
    if request.content_type == "multipart/form-data":
        ctx.form = {}
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                ctx.file_count += 1
                content_type = part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
                ctx.files[part.name] = (part.filename, bytes(await part.read()), content_type)
            else:
                ctx.form[part.name] = await part.text()
        return False
    if request.content_type == "application/x-www-form-urlencoded":
        ctx.form = {k: str(v) for k, v in (await request.post()).items()}
        return False
    raw = await request.read()
    if not raw.strip():
        return False
    try:
        ctx.json = json.loads(raw)
    except ValueError:
        return True
    return False
