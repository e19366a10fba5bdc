"""A running bridge with the knowledge base set up, between FakeTelegram and FakeDify.

`kb_bridge(**options)` is like `start_bridge` (see conftest.py) in webhook mode, with a dataset in
FakeDify, DIFY_DATASET_API_KEY / DIFY_DATASET_ID / KB_WRITERS set, and `bridge.kb` replaced (before the
adapter is built) by a KnowledgeBase that polls indexing every few milliseconds and stages downloads in
`tmp_dir`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.kb_bridge import start_fast_kb_bridge
from tests.adapters.telegram.conftest import FAST_FLOOD, FAST_LIMITS, SECRET, TgBridge, free_port
from tests.fakes.fake_dify import FakeDify
from tests.fakes.fake_telegram import FakeTelegram, SentMessage

DONE_MARKS = ("✅", "❌")


@dataclass
class KbTgBridge(TgBridge):
    dataset_id: str = ""
    tmp_dir: Path | None = None

    async def start(self) -> None:
        self.bridge, self.server = await start_fast_kb_bridge(self.env, self.dify, self.tmp_dir, self.port)
        self.port = self.server.bound_port

    def statuses(self, chat_id: int) -> list[SentMessage]:
        """The bot's (undeleted) messages in the chat, oldest first."""
        return [m for m in self.tg.chats.get(chat_id, []) if not m.deleted]

    async def finished(self, chat_id: int, count: int = 1, timeout: float = 10) -> list[str]:
        """Wait until `count` bot messages there show a result (✅/❌); returns their texts."""
        def done(f: FakeTelegram) -> bool:
            texts = f.final_text(chat_id)
            return len(texts) >= count and all(t.startswith(DONE_MARKS) for t in texts[:count])
        await self.tg.wait_for(done, timeout)
        return self.tg.final_text(chat_id)

    def temp_files(self) -> list[Path]:
        assert self.tmp_dir is not None
        return sorted(self.tmp_dir.iterdir())

    def creates(self) -> list[Any]:
        return [r for r in self.dify.requests if r.method == "POST" and "/document/create" in r.path]


StartKbBridge = Callable[..., Awaitable[KbTgBridge]]


@pytest.fixture
async def kb_bridge(tmp_path: Path) -> AsyncIterator[StartKbBridge]:
    """Factory: `await kb_bridge(env={"KB_WRITERS": "telegram:1001"}, dify_options={"version": "0.15"})`."""
    running: list[KbTgBridge] = []

    async def start(*, env: dict[str, str] | None = None, dify_options: dict[str, Any] | None = None,
                    **fake_options: Any) -> KbTgBridge:
        tg = FakeTelegram(limits=FAST_FLOOD, **fake_options)
        await tg.start()
        dify = await FakeDify(**(dify_options or {})).start()
        dataset_id = dify.add_dataset(name="team-kb")
        tmp_dir = tmp_path / f"kb-tmp-{len(running)}"
        tmp_dir.mkdir()
        port = free_port()
        base = {
            "DIFY_API_URL": dify.url, "DIFY_API_KEY": dify.app_key, "DIFY_DATASET_API_KEY": dify.dataset_key,
            "DIFY_DATASET_ID": dataset_id, "KB_WRITERS": "*",
            "TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_URL": tg.url, "TELEGRAM_LIMITS": json.dumps(FAST_LIMITS),
            "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/webhook",
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/kb-{len(running)}.db",
            "SHUTDOWN_GRACE_SECONDS": "5",
        }
        handle = KbTgBridge(tg=tg, dify=dify, db_url=base["DATABASE_URL"], env={**base, **(env or {})},
                            port=port, dataset_id=dataset_id, tmp_dir=tmp_dir)
        running.append(handle)
        await handle.start()
        return handle

    yield start
    for handle in reversed(running):
        await handle.stop()
        await handle.tg.stop()
        await handle.dify.stop()
