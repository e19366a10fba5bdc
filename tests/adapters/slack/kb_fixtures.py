"""A running bridge with the knowledge base set up, between FakeSlack, FakeDify and a foreign file host.

`kb_bridge(**options)` is like `start_bridge` (see conftest.py) with a dataset in FakeDify,
DIFY_DATASET_API_KEY / DIFY_DATASET_ID / KB_WRITERS set, and `bridge.kb` replaced (before the adapter is
built) by a KnowledgeBase that polls indexing every few milliseconds and stages downloads in `tmp_dir`.
`ForeignHost` is a second loopback server that records every request's headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.helpers.kb_bridge import start_fast_kb_bridge
from tests.adapters.slack.conftest import FAST_LIMITS, SECRET, SlackBridge, limits_env
from tests.fakes.fake_dify import FakeDify
from tests.fakes.fake_slack import FakeSlack, Msg
from tests.helpers.slack_events import message_shortcut_form, post_signed

DONE_MARKS = ("✅", "❌")


@dataclass
class KbBridge(SlackBridge):
    dataset_id: str = ""
    tmp_dir: Path | None = None

    async def start(self) -> None:
        self.bridge, self.server = await start_fast_kb_bridge(self.env, self.dify, self.tmp_dir)
        self.url = f"http://127.0.0.1:{self.server.bound_port}"

    async def shortcut(self, message: dict[str, Any], *, channel_id: str = "C1", user_id: str = "U1",
                       rid: str = "shortcut") -> tuple[int, str]:
        form = message_shortcut_form("kb_add", message, channel_id=channel_id, user_id=user_id,
                                     response_url=self.slack.response_url(rid))
        return await post_signed(self.url, "/slack/events", form, SECRET,
                                 content_type="application/x-www-form-urlencoded")

    def statuses(self, channel: str, thread_ts: str | None = None) -> list[Msg]:
        """The bot's messages in `channel` (in `thread_ts`, or at the top level when None)."""
        return [m for m in self.slack.messages.get(channel, []) if m.thread_ts == thread_ts]

    async def finished(self, channel: str, count: int, thread_ts: str | None = None,
                       timeout: float = 10) -> list[str]:
        """Wait until `count` status messages there show a result (✅/❌); returns their final texts."""
        def done(f: FakeSlack) -> bool:
            texts = [f.final_text(m) for m in self.statuses(channel, thread_ts)]
            return len(texts) >= count and all(t.startswith(DONE_MARKS) for t in texts[:count])
        await self.slack.wait_for(done, timeout)
        return [self.slack.final_text(m) for m in self.statuses(channel, thread_ts)]

    def temp_files(self) -> list[Path]:
        assert self.tmp_dir is not None
        return sorted(self.tmp_dir.iterdir())

    def creates(self) -> list[Any]:
        return [r for r in self.dify.requests if r.method == "POST" and "/document/create" in r.path]


StartKbBridge = Callable[..., Awaitable[KbBridge]]


@pytest.fixture
async def kb_bridge(tmp_path: Path) -> AsyncIterator[StartKbBridge]:
    """Factory: `await kb_bridge(env={"KB_WRITERS": "slack:U1"}, dify_options={"version": "0.15"})`."""
    running: list[KbBridge] = []

    async def start(*, env: dict[str, str] | None = None, dify_options: dict[str, Any] | None = None,
                    dataset: bool = True, **fake_slack: Any) -> KbBridge:
        slack = await FakeSlack(limits=dict(FAST_LIMITS), **fake_slack).start()
        dify = await FakeDify(**(dify_options or {})).start()
        dataset_id = dify.add_dataset(name="team-kb") if dataset else "00000000-0000-4000-8000-000000000000"
        tmp_dir = tmp_path / f"kb-tmp-{len(running)}"
        tmp_dir.mkdir()
        base = {
            "DIFY_API_URL": dify.url, "DIFY_API_KEY": dify.app_key, "DIFY_DATASET_API_KEY": dify.dataset_key,
            "DIFY_DATASET_ID": dataset_id, "KB_WRITERS": "*",
            "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.api_url,
            "SLACK_LIMITS": limits_env(FAST_LIMITS),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/kb-{len(running)}.db",
            "SHUTDOWN_GRACE_SECONDS": "5",
        }
        handle = KbBridge(slack=slack, dify=dify, db_url=base["DATABASE_URL"], env={**base, **(env or {})},
                          dataset_id=dataset_id, tmp_dir=tmp_dir)
        running.append(handle)
        await handle.start()
        return handle

    yield start
    for handle in reversed(running):
        await handle.stop()
        await handle.slack.stop()
        await handle.dify.stop()


@dataclass
class ForeignHost:
    """A loopback web server that is not Slack: serves `files` (path → bytes) or redirects (path → URL)."""

    files: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    html: set[str] = field(default_factory=set)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> ForeignHost:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.headers)))
        if request.path in self.redirects:
            raise web.HTTPFound(self.redirects[request.path])
        if request.path in self.html:
            return web.Response(text="<html><title>Slack</title>Sign in</html>", content_type="text/html")
        if request.path in self.files:
            return web.Response(body=self.files[request.path], content_type="application/octet-stream")
        return web.Response(status=404)


@pytest.fixture
async def foreign_host() -> AsyncIterator[ForeignHost]:
    host = await ForeignHost().start()
    yield host
    await host.stop()
