"""A running bridge (real Server, Bolt AsyncApp, slack_sdk client, engine, SQLite file) between fakes.

`start_bridge(**fake_slack_options)` starts FakeDify + FakeSlack + Bridge + Server on 127.0.0.1:0 and
returns a `SlackBridge` handle: `post(event)` signs and POSTs an Events API body like Slack does,
`command(...)` a slash command, `restart()` a new Bridge and Server on the same database file.
Slack budgets are scaled from "per minute" to "per second" (same in the fake and in SLACK_LIMITS),
so tests that need many writes finish quickly while pacing is still exercised.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.slack import SlackAdapter
from bots.app import Bridge
from bots.config import load_settings
from bots.dify import DifyClient
from bots.server import Server
from tests.fakes.fake_dify import FakeDify
from tests.fakes.fake_slack import FakeSlack, RateLimit
from tests.helpers.slack_events import event_envelope, post_signed, slash_command_form

SECRET = "test-signing-secret"

FAST_LIMITS: dict[str, RateLimit] = {
    "chat.postMessage": RateLimit(5, 1.0, "channel"),
    "chat.update": RateLimit(50, 1.0),
    "chat.postEphemeral": RateLimit(100, 1.0),
    "chat.startStream": RateLimit(20, 1.0),
    "chat.appendStream": RateLimit(100, 1.0),
    "chat.stopStream": RateLimit(20, 1.0),
    "assistant.threads.setStatus": RateLimit(50, 1.0),
}


def limits_env(limits: dict[str, RateLimit], answer_interval: float = 0.05) -> str:
    """The same budgets for the bridge, as SLACK_LIMITS JSON. With 1-second windows a 10% margin (100 ms)
    absorbs the scheduling jitter of a loaded test loop (real windows are 60 s: 2% is 1.2 s)."""
    out: dict[str, Any] = {name: [rule.limit, rule.per_seconds] for name, rule in limits.items()}
    out.update(answer_interval=answer_interval, margin=0.1)
    return json.dumps(out)


@dataclass
class SlackBridge:
    slack: FakeSlack
    dify: FakeDify
    db_url: str
    env: dict[str, str]
    bridge: Bridge | None = None
    server: Server | None = None
    url: str = ""

    @property
    def adapter(self) -> SlackAdapter:
        assert self.bridge is not None
        return next(a for a in self.bridge.adapters if isinstance(a, SlackAdapter))

    async def start(self) -> None:
        settings = load_settings(self.env, env_file=None)
        dify = DifyClient(self.dify.url, self.dify.app_key, backoff=0.01, max_attempts=2)
        self.bridge = await Bridge.create(settings, dify=dify)
        self.server = Server(self.bridge, "127.0.0.1", 0)
        await self.server.start()
        self.url = f"http://127.0.0.1:{self.server.bound_port}"

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.shutdown()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def post(self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None,
                   timestamp: int | None = None, secret: str = SECRET) -> tuple[int, str]:
        """Sign and POST one Events API delivery (wrapped in an envelope unless it is one)."""
        body = event if event.get("type") == "event_callback" else event_envelope(event, event_id=event_id)
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
        return await post_signed(self.url, "/slack/events", json.dumps(body).encode(), secret,
                                 headers=headers, timestamp=timestamp)

    async def command(self, command: str, text: str = "", **kw: Any) -> tuple[int, str]:
        body = slash_command_form(command, text, **kw)
        return await post_signed(self.url, "/slack/events", body, SECRET,
                                 content_type="application/x-www-form-urlencoded")

    def chat_bodies(self) -> list[dict[str, Any]]:
        return [r.json for r in self.dify.chat_requests()]


StartBridge = Callable[..., Awaitable[SlackBridge]]


@pytest.fixture
async def start_bridge(tmp_path) -> AsyncIterator[StartBridge]:
    """Factory: `await start_bridge(native_streaming=False, env={"SLACK_STREAM_MODE": "update"})`."""
    running: list[tuple[SlackBridge, FakeSlack, FakeDify]] = []

    async def start(*, env: dict[str, str] | None = None, limits: dict[str, RateLimit] | None = None,
                    answer_interval: float = 0.05, **fake_slack: Any) -> SlackBridge:
        rules = {**FAST_LIMITS, **(limits or {})}
        slack = await FakeSlack(limits=dict(rules), **fake_slack).start()
        dify = await FakeDify().start()
        db_url = f"sqlite+aiosqlite:///{tmp_path}/bridge-{len(running)}.db"
        base = {
            "DIFY_API_URL": dify.url, "DIFY_API_KEY": dify.app_key,
            "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.api_url,
            "SLACK_LIMITS": limits_env(rules, answer_interval), "DATABASE_URL": db_url,
            "SHUTDOWN_GRACE_SECONDS": "5",
        }
        handle = SlackBridge(slack=slack, dify=dify, db_url=db_url, env={**base, **(env or {})})
        running.append((handle, slack, dify))
        await handle.start()
        return handle

    yield start
    for handle, slack, dify in reversed(running):
        await handle.stop()
        await slack.stop()
        await dify.stop()


@pytest.fixture
async def slack_bridge(start_bridge: StartBridge) -> SlackBridge:
    """A bridge with default fakes (native streaming allowed)."""
    return await start_bridge()
