"""A running bridge (real Server, PTB Application, engine, SQLite file) between FakeTelegram and FakeDify.

`start_bridge(mode="polling" | "webhook", env=..., **fake_telegram_options)` starts FakeDify +
FakeTelegram + Bridge + Server on 127.0.0.1 and returns a `TgBridge` handle. Telegram's flood
limits are scaled down tenfold (per-second budgets per 0.1 s; the group budget per 6 s instead of
60 s), the same in the fake (`FloodLimits`) and in the bridge (`TELEGRAM_LIMITS`), so tests that need
many writes finish quickly while pacing and flood control are still exercised.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from adapters.telegram import TelegramAdapter
from bots.app import Bridge
from bots.config import load_settings
from bots.dify import DifyClient
from bots.server import Server
from tests.fakes.fake_dify import FakeDify
from tests.fakes.fake_telegram import FakeTelegram, FloodLimits

SECRET = "test-webhook-secret_0123"
PRIVATE = 1001  # a user id == their private chat id
GROUP = -100200

FAST_FLOOD = FloodLimits(per_chat=(1, 0.1), per_chat_burst=3, per_group=(20, 6.0), global_=(30, 0.1),
                         drafts=(4, 0.1))
FAST_LIMITS: dict[str, Any] = {
    "global": [30, 0.1], "per_chat": [3, 0.3], "per_group": [20, 6.0], "group_updates": [15, 6.0],
    "drafts": [4, 0.1], "edit_interval": 0.1, "group_interval": 0.2, "typing_interval": 0.3,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class TgBridge:
    tg: FakeTelegram
    dify: FakeDify
    db_url: str
    env: dict[str, str]
    port: int = 0
    bridge: Bridge | None = None
    server: Server | None = None

    @property
    def adapter(self) -> TelegramAdapter:
        assert self.bridge is not None
        return next(a for a in self.bridge.adapters if isinstance(a, TelegramAdapter))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        settings = load_settings(self.env, env_file=None)
        dify = DifyClient(self.dify.url, self.dify.app_key, backoff=0.01, max_attempts=2)
        self.bridge = await Bridge.create(settings, dify=dify)
        self.server = Server(self.bridge, "127.0.0.1", self.port)
        await self.server.start()
        self.port = self.server.bound_port

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.shutdown()

    async def restart(self, **env: str | None) -> None:
        await self.stop()
        for key, value in env.items():
            if value is None:
                self.env.pop(key, None)
            else:
                self.env[key] = value
        await self.start()

    async def post(self, update: dict[str, Any], *, secret: str | None = SECRET) -> int:
        """POST one update to the bridge's webhook like Telegram does; returns the HTTP status."""
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.url}/telegram/webhook", data=json.dumps(update), headers={
                    "Content-Type": "application/json", **headers}) as response:
                return response.status

    def chat_bodies(self) -> list[dict[str, Any]]:
        return [r.json for r in self.dify.chat_requests()]

    def sent(self, chat_id: int, thread_id: int | None = None) -> list[str]:
        return self.tg.final_text(chat_id, thread_id)


StartBridge = Callable[..., Awaitable[TgBridge]]


@pytest.fixture
async def start_bridge(tmp_path) -> AsyncIterator[StartBridge]:
    """Factory: `await start_bridge(mode="webhook", env={"TELEGRAM_STREAM_MODE": "edit"}, drafts=False)`;
    `launch=False` starts only the fakes (the handle's `env` then runs a bridge elsewhere)."""
    running: list[TgBridge] = []

    async def start(*, mode: str = "polling", env: dict[str, str] | None = None,
                    limits: dict[str, Any] | None = None, flood: FloodLimits | None = FAST_FLOOD,
                    dify: FakeDify | None = None, launch: bool = True, **fake_options: Any) -> TgBridge:
        tg = FakeTelegram(limits=flood, **fake_options)
        await tg.start()
        fake_dify = dify or await FakeDify().start()
        port = free_port() if mode == "webhook" else 0
        db_url = f"sqlite+aiosqlite:///{tmp_path}/bridge-{len(running)}.db"
        base = {
            "DIFY_API_URL": fake_dify.url, "DIFY_API_KEY": fake_dify.app_key, "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_URL": tg.url, "TELEGRAM_LIMITS": json.dumps({**FAST_LIMITS, **(limits or {})}),
            "DATABASE_URL": db_url, "SHUTDOWN_GRACE_SECONDS": "5",
        }
        if mode == "webhook":
            base.update(TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook",
                        TELEGRAM_WEBHOOK_SECRET=SECRET)
        handle = TgBridge(tg=tg, dify=fake_dify, db_url=db_url, env={**base, **(env or {})}, port=port)
        running.append(handle)
        if launch:
            await handle.start()
        return handle

    yield start
    for handle in reversed(running):
        await handle.stop()
        await handle.tg.stop()
        await handle.dify.stop()


@pytest.fixture
async def polling(start_bridge: StartBridge) -> TgBridge:
    return await start_bridge()


@pytest.fixture
async def webhook(start_bridge: StartBridge) -> TgBridge:
    return await start_bridge(mode="webhook")
