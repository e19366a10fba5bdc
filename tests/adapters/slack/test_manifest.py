"""slack-manifest.yaml asks for exactly what the adapter uses."""

from __future__ import annotations

from pathlib import Path

import yaml

MANIFEST = Path(__file__).resolve().parents[3] / "slack-manifest.yaml"
EVENTS_URL = "https://YOUR-BRIDGE-HOST/slack/events"


def _manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def test_events_scopes_and_urls():
    m = _manifest()
    settings = m["settings"]
    events = settings["event_subscriptions"]
    assert events["request_url"] == EVENTS_URL and settings["interactivity"]["request_url"] == EVENTS_URL
    assert settings["interactivity"]["is_enabled"] is True
    assert sorted(events["bot_events"]) == ["app_mention", "message.channels", "message.groups", "message.im",
                                             "message.mpim"]
    assert sorted(m["oauth_config"]["scopes"]["bot"]) == [
        "app_mentions:read", "channels:history", "chat:write", "commands", "files:read", "groups:history", "im:history",
        "mpim:history"]
    assert settings["socket_mode_enabled"] is False


def test_commands_and_the_kb_shortcut():
    features = _manifest()["features"]
    commands = {c["command"]: c for c in features["slash_commands"]}
    assert sorted(commands) == ["/help", "/kb", "/new"]
    assert all(c["url"] == EVENTS_URL for c in commands.values())
    [shortcut] = features["shortcuts"]
    assert (shortcut["type"], shortcut["callback_id"]) == ("message", "kb_add")
    assert shortcut["name"] == "Add to knowledge base"
    assert features["app_home"]["messages_tab_enabled"] is True, "users can DM the bot"
    assert features["bot_user"]["display_name"]
