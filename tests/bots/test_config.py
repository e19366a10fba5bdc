"""Configuration: every contract form of DIFY_API_URL, clear errors, secrets never printed."""

import pytest

from bots.config import ConfigError, load_settings, normalize_dify_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.dify.ai", "https://api.dify.ai/v1"),
        ("https://api.dify.ai/", "https://api.dify.ai/v1"),
        ("https://api.dify.ai/v1", "https://api.dify.ai/v1"),
        ("https://api.dify.ai/v1/", "https://api.dify.ai/v1"),
        ("https://api.dify.ai/v1//", "https://api.dify.ai/v1"),
        ("https://dify.example.com/v1/chat-messages", "https://dify.example.com/v1"),
        ("https://dify.example.com/v1/chat-messages/", "https://dify.example.com/v1"),
        ("http://10.0.0.5:5001/v1/parameters", "http://10.0.0.5:5001/v1"),
        ("https://example.com/dify/v1", "https://example.com/dify/v1"),
        ("https://example.com/dify", "https://example.com/dify/v1"),
        ("https://example.com/v1/datasets/abc/document/create_by_file", "https://example.com/v1"),
        ("https://example.com/chat-messages", "https://example.com/v1"),
        ("dify.example.com", "https://dify.example.com/v1"),
        ("  https://api.dify.ai/v1  ", "https://api.dify.ai/v1"),
    ],
)
def test_dify_url_forms_normalize_to_v1(given, expected):
    assert normalize_dify_url(given) == expected
    assert load_settings({"DIFY_API_URL": given}, env_file=None).dify_api_url == expected


def test_defaults_match_the_contract():
    s = load_settings({}, env_file=None)
    assert s.dify_api_url == "https://api.dify.ai/v1"
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.telegram_api_url == "https://api.telegram.org"
    assert s.database_url == "sqlite+aiosqlite:///data/dify-bridge.db"
    assert (s.host, s.port) == ("0.0.0.0", 3000)
    assert (s.log_level, s.log_format) == ("INFO", "text")
    assert s.kb_writers.empty and not s.kb_writers.allows("slack", "U1")


@pytest.mark.parametrize(
    ("env", "variable", "example"),
    [
        ({"DIFY_INPUTS": "[1, 2]"}, "DIFY_INPUTS", 'DIFY_INPUTS={"language"'),
        ({"DIFY_INPUTS": "{not json"}, "DIFY_INPUTS", "DIFY_INPUTS="),
        ({"PORT": "eighty"}, "PORT", "PORT=3000"),
        ({"PORT": "70000"}, "PORT", "PORT=3000"),
        ({"DIFY_API_KEY": "dataset-abcdef"}, "DIFY_API_KEY", "DIFY_API_KEY=app-"),
        ({"DIFY_DATASET_API_KEY": "app-abcdef"}, "DIFY_DATASET_API_KEY", "DIFY_DATASET_API_KEY=dataset-"),
        ({"SLACK_BOT_TOKEN": "xoxp-user-token", "SLACK_SIGNING_SECRET": "s"}, "SLACK_BOT_TOKEN", "xoxb-"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET="),
        ({"SLACK_SIGNING_SECRET": "abc"}, "SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN=xoxb-"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2"}, "SLACK_APP_TOKEN", "xapp-"),
        ({"TELEGRAM_WEBHOOK_URL": "https://x/telegram/webhook"}, "TELEGRAM_WEBHOOK_SECRET", "TELEGRAM_WEBHOOK_SECRET="),
        ({"TELEGRAM_WEBHOOK_SECRET": "has spaces!"}, "TELEGRAM_WEBHOOK_SECRET", "TELEGRAM_WEBHOOK_SECRET="),
        ({"ALLOWED_USERS": "bob"}, "ALLOWED_USERS", "slack:U012AB3CD"),
        ({"KB_WRITERS": "discord:1"}, "KB_WRITERS", "KB_WRITERS="),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT", "LOG_FORMAT=text"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL", "LOG_LEVEL=INFO"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL", "DATABASE_URL=sqlite"),
        ({"DIFY_API_URL": "ftp://x"}, "DIFY_API_URL", "DIFY_API_URL=https://"),
        ({"SLACK_STREAM_MODE": "fast"}, "SLACK_STREAM_MODE", "SLACK_STREAM_MODE=auto"),
    ],
)
def test_each_mistake_names_the_variable_and_shows_an_example(env, variable, example):
    with pytest.raises(ConfigError) as info:
        load_settings(env, env_file=None)
    text = str(info.value)
    assert text.startswith(variable + ":") or f"\n{variable}:" in text
    assert example in text


def test_secrets_are_hidden_when_settings_are_printed():
    env = {
        "DIFY_API_KEY": "app-supersecretkey1",
        "DIFY_DATASET_API_KEY": "dataset-supersecret2",
        "SLACK_BOT_TOKEN": "xoxb-supersecret3",
        "SLACK_SIGNING_SECRET": "signsecret4",
        "TELEGRAM_BOT_TOKEN": "123:supersecret5",
    }
    s = load_settings(env, env_file=None)
    for shown in (str(s), repr(s), s.model_dump_json()):
        for secret in env.values():
            assert secret not in shown
    assert sorted(s.secrets()) == sorted(env.values())


def test_dotenv_file_is_read(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text('DIFY_API_URL=https://dify.internal/\nDIFY_INPUTS={"lang": "fr"}\nALLOWED_USERS=slack:U1,telegram:42\n')
    for var in ("DIFY_API_URL", "DIFY_INPUTS", "ALLOWED_USERS"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings(env_file=str(env_file))
    assert s.dify_api_url == "https://dify.internal/v1"
    assert s.dify_inputs == {"lang": "fr"}
    assert s.allowed_users.allows("telegram", "42") and not s.allowed_users.allows("telegram", "43")


def test_allowlist_star_allows_everyone():
    s = load_settings({"KB_WRITERS": "*"}, env_file=None)
    assert s.kb_writers.allows("slack", "Uanyone")
