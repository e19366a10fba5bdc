"""`dify-bridge doctor`: one ✓/✗ line per check, with the fix, non-zero exit on any failure."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import sys

import pytest

from bots.config import load_settings
from bots.doctor import run_doctor
from tests.fakes.fake_dify import FakeDify
from tests.fakes.fake_slack import FakeSlack


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def slack():
    async with FakeSlack() as fake:
        yield fake


def _settings(fake: FakeDify, slack: FakeSlack, tmp_path, **env):
    base = {
        "DIFY_API_URL": fake.url,
        "DIFY_API_KEY": fake.app_key,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/doctor.db",
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": "signing-secret",
        "SLACK_API_URL": slack.api_url,
    }
    base.update(env)
    return load_settings({k: v for k, v in base.items() if v is not None}, env_file=None)


async def _doctor(settings) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_doctor(settings, out)
    return code, out.getvalue()


async def test_all_good(fake_dify, slack, tmp_path):
    code, out = await _doctor(_settings(fake_dify, slack, tmp_path))
    assert code == 0, out
    assert "✗" not in out and out.count("✓") >= 5 and "all checks passed" in out
    assert "Slack: connected as @" in out


async def test_web_ui_url_is_explained(fake_dify, slack, tmp_path):
    code, out = await _doctor(_settings(fake_dify, slack, tmp_path, DIFY_API_URL=fake_dify.root_url + "/app"))
    assert code == 1
    assert "✗" in out and "web UI" in out and "/v1" in out


async def test_bad_key(fake_dify, slack, tmp_path):
    code, out = await _doctor(_settings(fake_dify, slack, tmp_path, DIFY_API_KEY="app-not-the-key"))
    assert code == 1 and "refused (401)" in out and "DIFY_API_KEY" in out
    assert "app-not-the-key" not in out


async def test_unreachable_dify(fake_dify, slack, tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/v1"
    code, out = await _doctor(_settings(fake_dify, slack, tmp_path, DIFY_API_URL=url))
    assert code == 1 and "cannot connect" in out


@pytest.mark.parametrize("mode", ["workflow", "completion"])
async def test_app_type_that_cannot_chat(slack, tmp_path, mode):
    async with FakeDify(version="1.12", app_mode=mode) as fake:
        code, out = await _doctor(_settings(fake, slack, tmp_path))
    assert code == 1 and f"a {mode} app, which cannot chat" in out and "Chatbot, Agent or Chatflow" in out


async def test_dify_015_without_mode_is_accepted(slack, tmp_path):
    async with FakeDify(version="0.15") as fake:
        code, out = await _doctor(_settings(fake, slack, tmp_path))
    assert code == 0 and "type not reported" in out


async def test_required_input_without_value(fake_dify, slack, tmp_path):
    fake_dify.user_input_form = [{"text-input": {"label": "Team", "variable": "team", "required": True}}]
    code, out = await _doctor(_settings(fake_dify, slack, tmp_path))
    assert code == 1 and "required input(s) without a value: team" in out and "DIFY_INPUTS" in out
    code, out = await _doctor(_settings(fake_dify, slack, tmp_path, DIFY_INPUTS='{"team": "ops"}'))
    assert code == 0


async def test_dataset_checks(fake_dify, slack, tmp_path):
    dataset = fake_dify.add_dataset()
    ok = _settings(fake_dify, slack, tmp_path, DIFY_DATASET_API_KEY=fake_dify.dataset_key, DIFY_DATASET_ID=dataset)
    code, out = await _doctor(ok)
    assert code == 0 and f"knowledge base {dataset} reachable" in out
    unknown = _settings(fake_dify, slack, tmp_path, DIFY_DATASET_API_KEY=fake_dify.dataset_key,
                        DIFY_DATASET_ID="00000000-0000-0000-0000-000000000000")
    code, out = await _doctor(unknown)
    assert code == 1 and "no knowledge base" in out
    bad_key = _settings(fake_dify, slack, tmp_path, DIFY_DATASET_API_KEY="dataset-wrong", DIFY_DATASET_ID=dataset)
    code, out = await _doctor(bad_key)
    assert code == 1 and "DIFY_DATASET_API_KEY" in out
    only_id = _settings(fake_dify, slack, tmp_path, DIFY_DATASET_ID=dataset)
    code, out = await _doctor(only_id)
    assert code == 1 and "DIFY_DATASET_API_KEY is not" in out


async def test_slack_token_refused(fake_dify, slack, tmp_path):
    code, out = await _doctor(_settings(fake_dify, slack, tmp_path, SLACK_BOT_TOKEN="xoxb-revoked"))
    assert code == 1 and "Slack: auth.test failed (invalid_auth)" in out and "xoxb-revoked" not in out


async def test_telegram_token_refused_and_accepted(fake_dify, slack, tmp_path):
    from tests.fakes.fake_telegram import FakeTelegram

    async with FakeTelegram() as tg:
        good = _settings(fake_dify, slack, tmp_path, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.url)
        code, out = await _doctor(good)
        assert code == 0 and "Telegram: connected as @" in out
        bad = _settings(fake_dify, slack, tmp_path, TELEGRAM_BOT_TOKEN="999:wrong-token", TELEGRAM_API_URL=tg.url)
        code, out = await _doctor(bad)
        assert code == 1 and "Telegram: getMe refused the token" in out and "wrong-token" not in out


async def test_database_unreachable(fake_dify, slack, tmp_path):
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{_free_port()}/none"
    code, out = await _doctor(_settings(fake_dify, slack, tmp_path, DATABASE_URL=url))
    assert code == 1 and "Database: cannot open" in out


async def test_no_platform_configured(fake_dify, slack, tmp_path):
    code, out = await _doctor(_settings(fake_dify, slack, tmp_path, SLACK_BOT_TOKEN=None, SLACK_SIGNING_SECRET=None))
    assert code == 1 and "neither Slack nor Telegram" in out


async def test_invalid_configuration_as_a_subprocess(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIFY_", "SLACK_", "TELEGRAM_"))}
    env["DIFY_INPUTS"] = "not json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "doctor", stdout=asyncio.subprocess.PIPE, env=env, cwd=tmp_path
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 1
    assert "✗ Configuration: invalid" in out.decode() and "DIFY_INPUTS:" in out.decode()
