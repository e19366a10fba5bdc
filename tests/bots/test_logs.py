"""Logs: JSON lines when asked, and no key or token in any log line, even at DEBUG."""

from __future__ import annotations

import io
import json
import logging

from bots.app import Bridge
from bots.config import load_settings
from bots.logs import Redactor, setup_logging
from tests.bots.conftest import RecordingSink, incoming
from tests.fakes.fake_dify import Plan

SECRETS = {
    "DIFY_DATASET_API_KEY": "dataset-ds0secret0value",
    "SLACK_SIGNING_SECRET": "slack0signing0secret",
    "SLACK_BOT_TOKEN": "xoxb-slack0bot0token",
    "TELEGRAM_BOT_TOKEN": "777:tg0secret0token",
}


def test_redactor_masks_configured_secrets_and_token_shapes():
    redact = Redactor(["my-own-secret-value"])
    line = (
        "my-own-secret-value xoxb-123-456-abc xapp-1-A-2-b app-abcdefghijkl dataset-abcdefghijk "
        "GET https://api.telegram.org/bot123456:AAE-xyz_123/getMe Authorization: Bearer abc.def"
    )
    out = redact(line)
    for leaked in ("my-own-secret-value", "xoxb-123", "xapp-1-A", "app-abcdefghijkl", "dataset-abcdefghijk", "AAE-xyz_123", "abc.def"):
        assert leaked not in out
    assert "/bot[redacted]/getMe" in out


async def test_a_full_run_with_errors_logs_no_secret_in_json_lines(fake_dify, tmp_path):
    stream = io.StringIO()
    env = {
        "DIFY_API_URL": fake_dify.url,
        "DIFY_API_KEY": fake_dify.app_key,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/l.db",
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "json",
        **SECRETS,
    }
    settings = load_settings(env, env_file=None)
    setup_logging(settings.log_level, settings.log_format, settings.secrets(), stream=stream)
    try:
        bridge = await Bridge.create(settings, with_adapters=False)
        logging.getLogger("httpx").setLevel(logging.DEBUG)  # request URLs and headers, the usual leak
        logging.getLogger("httpcore").setLevel(logging.DEBUG)
        fake_dify.plan(Plan(answer="fine"), Plan(http_error=(401, "unauthorized", f"Access token {fake_dify.app_key} is invalid")),
                       Plan(answer="partial answer here", error_after=2))
        for i in range(3):
            await bridge.engine.handle(incoming(f"q{i}", scope=f"s{i}"), RecordingSink())
        logging.getLogger("bots.test").info("key=%s token=%s", fake_dify.app_key, SECRETS["TELEGRAM_BOT_TOKEN"])
        await bridge.aclose()
    finally:
        logging.getLogger().handlers.clear()
    output = stream.getvalue()
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) > 5
    for line in lines:
        json.loads(line)  # one JSON object per line
    for secret in [fake_dify.app_key, *SECRETS.values()]:
        assert secret not in output
    assert "answer failed" in output
