"""The HTTP server: health, readiness, metrics, graceful shutdown, and `serve` without adapters."""

from __future__ import annotations

import asyncio
import os
import sys

import aiohttp

from bots.app import Bridge
from bots.config import load_settings
from bots.server import Server
from tests.bots.conftest import RecordingSink, incoming
from tests.fakes.fake_dify import Plan


async def _server(fake, tmp_path, **env) -> Server:
    settings = load_settings(
        {"DIFY_API_URL": fake.url, "DIFY_API_KEY": fake.app_key,
         "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/s.db", "HOST": "127.0.0.1", "PORT": "1", **env},
        env_file=None,
    )
    bridge = await Bridge.create(settings, with_adapters=False)
    server = Server(bridge, "127.0.0.1", 0)
    await server.start()
    return server


async def test_health_readiness_and_metrics(fake_dify, tmp_path):
    server = await _server(fake_dify, tmp_path)
    base = f"http://127.0.0.1:{server.bound_port}"
    try:
        await server.bridge.engine.handle(incoming("hi"), RecordingSink())
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/healthz") as r:
                assert r.status == 200 and (await r.json())["status"] == "ok"
            async with http.get(base + "/readyz") as r:
                assert r.status == 200 and (await r.json())["database"] is True
            async with http.get(base + "/metrics") as r:
                body = await r.text()
                assert r.status == 200
                assert 'dify_bridge_answers_total{outcome="done",platform="test"} 1.0' in body
                assert "dify_bridge_dify_time_to_first_token_seconds_count 1.0" in body
                assert "dify_bridge_dify_duration_seconds_bucket" in body
                assert "dify_bridge_errors_total" in body
            await server.bridge.repo.close()  # the database goes away
            async with http.get(base + "/readyz") as r:
                assert r.status == 503 and (await r.json())["database"] is False
    finally:
        await server.shutdown()


async def test_error_metrics_by_kind(fake_dify, tmp_path):
    server = await _server(fake_dify, tmp_path)
    try:
        fake_dify.plan(Plan(http_error=(400, "app_unavailable", "App unavailable")))
        await server.bridge.engine.handle(incoming("hi"), RecordingSink())
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{server.bound_port}/metrics") as r:
                assert 'dify_bridge_errors_total{kind="app_unavailable"} 1.0' in await r.text()
    finally:
        await server.shutdown()


async def test_shutdown_lets_short_answers_finish_and_interrupts_long_ones(fake_dify, tmp_path):
    server = await _server(fake_dify, tmp_path, SHUTDOWN_GRACE_SECONDS="0.5")
    engine = server.bridge.engine
    quick, slow = RecordingSink(), RecordingSink()
    fake_dify.plan(Plan(answer=" ".join(["slow"] * 100), token_gap=0.1))
    engine.spawn(engine.handle(incoming("s", scope="b"), slow))
    await asyncio.wait_for(slow.first_update.wait(), 10)
    fake_dify.plan(Plan(answer="quick answer", first_token_delay=0.1))
    engine.spawn(engine.handle(incoming("q", scope="a"), quick))  # still running when shutdown starts
    repo = server.bridge.repo
    await server.shutdown()
    assert quick.answer is not None and quick.answer.text == "quick answer"
    assert slow.answer is None and slow.problem.kind == "interrupted" and slow.problem.partial
    assert engine.accepting is False and engine.in_flight == 0
    assert fake_dify.stopped_tasks
    assert not await repo.ping(), "the database is closed at the end"


async def test_serve_without_any_adapter_exits_2_naming_the_variables(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIFY_", "SLACK_", "TELEGRAM_"))}
    env["DIFY_API_KEY"] = "app-abcdefgh"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "serve", stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    for var in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "TELEGRAM_BOT_TOKEN"):
        assert var in err.decode()


async def test_old_delivery_claims_are_pruned_recent_ones_kept(fake_dify, tmp_path):
    from datetime import UTC, datetime, timedelta

    from storage import Repository

    server = await _server(fake_dify, tmp_path)
    try:
        old = await Repository.open(f"sqlite+aiosqlite:///{tmp_path}/s.db",
                                    clock=lambda: datetime.now(UTC) - timedelta(days=8))
        assert await old.claim("slack", "Ev-old")
        await old.close()
        repo = server.bridge.repo
        assert await repo.claim("slack", "Ev-new")
        assert await server.housekeep_once() == 1
        assert await repo.claim("slack", "Ev-old"), "an old claim is forgotten"
        assert not await repo.claim("slack", "Ev-new"), "a recent claim still dedupes"
    finally:
        await server.shutdown()
