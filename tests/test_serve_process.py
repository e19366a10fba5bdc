"""The real `dify-bridge serve` process end to end: Slack event in, streamed answer out, clean SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys

import aiohttp

from tests.fakes.fake_dify import FakeDify, Plan
from tests.fakes.fake_slack import FakeSlack
from tests.helpers.slack_events import app_mention, event_envelope, post_signed

SIGNING_SECRET = "e2e0signing0secret0value"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_ready(base: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(30):
            while True:
                assert proc.returncode is None, "serve exited early"
                try:
                    async with http.get(base + "/readyz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)  # polling a starting process; not test synchronization


async def _metrics_when(base: str, needle: str) -> str:
    """The /metrics text once it contains `needle` (the process records an answer after showing it)."""
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(20):
            while True:
                async with http.get(base + "/metrics") as r:
                    text = await r.text()
                if needle in text:
                    return text
                await asyncio.sleep(0.05)  # observing another process; not test synchronization


async def test_serve_answers_a_slack_mention_and_stops_cleanly(tmp_path):
    async with FakeDify() as dify, FakeSlack() as slack:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DIFY_", "SLACK_", "TELEGRAM_"))}
        env.update(
            DIFY_API_URL=dify.url, DIFY_API_KEY=dify.app_key,
            SLACK_BOT_TOKEN=slack.bot_token, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack.api_url,
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/e2e.db", HOST="127.0.0.1", PORT=str(port),
            LOG_LEVEL="DEBUG", LOG_FORMAT="json", SHUTDOWN_GRACE_SECONDS="5",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bots.cli", "--env-file", "/nonexistent", "serve",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            await _wait_ready(base, proc)
            dify.plan(Plan(answer="Streaming **works** end to end.", token_gap=0.01))
            event = app_mention("hello bridge", channel="C42")
            body = json.dumps(event_envelope(event)).encode()
            status, _ = await post_signed(base, "/slack/events", body, SIGNING_SECRET)
            assert status == 200
            await slack.wait_for(
                lambda s: any("Streaming **works** end to end." in s.final_text(m)
                              for m in s.thread("C42", event["ts"])), timeout=20)
            status, _ = await post_signed(base, "/slack/events", body, "forged-secret")
            assert status == 401
            metrics = await _metrics_when(base, 'dify_bridge_answers_total{outcome="done",platform="slack"} 1.0')
            assert 'dify_bridge_platform_writes_total{method="chat.startStream",platform="slack"} 1.0' in metrics
            proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0
        logs = (out + err).decode()
        assert "Traceback" not in logs
        for line in err.decode().splitlines():
            json.loads(line)
        for secret in (dify.app_key, slack.bot_token, SIGNING_SECRET):
            assert secret not in logs
        assert "stopped" in logs
        assert len(dify.chat_requests()) == 1, "the forged request reached nothing"
