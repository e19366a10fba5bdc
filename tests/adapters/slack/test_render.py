"""Slack rendering rules: nothing pings, streaming prefixes only grow, parts fit, limits parse."""

from __future__ import annotations

import random

import pytest

from adapters.shared.render import _blocks
from adapters.slack.listeners import Identity, classify
from adapters.slack.pacing import DEFAULT_RATES, parse_limits
from adapters.slack.render import (
    PART_LIMIT, ZWSP, final_parts, final_payload, neutralize, plain_fallback, split_parts, stable_prefix,
)
from tests.helpers.slack_events import app_mention, channel_message, dm_message, event_envelope

PINGS = ("<!here", "<!channel", "<!everyone", "<!subteam", "<@U", "<@W", "@here", "@channel", "@everyone")


def _pings(text: str) -> list[str]:
    lowered = text.lower()
    return [p for p in PINGS if p.lower() in lowered and not (p.startswith("@") and _emailish(lowered, p.lower()))]


def _emailish(text: str, ping: str) -> bool:
    return all(i > 0 and (text[i - 1].isalnum() or text[i - 1] in ".+-") for i in _find_all(text, ping))


def _find_all(text: str, sub: str) -> list[int]:
    out, i = [], text.find(sub)
    while i >= 0:
        out.append(i)
        i = text.find(sub, i + 1)
    return out


@pytest.mark.parametrize("text", [
    "hi <!here>", "<!channel|channel> now", "<!everyone>", "<!subteam^S123|@team>", "ping <@U123> and <@W9|bob>",
    "@here look", "@Channel!", "(@everyone)", "@here@here",
])
def test_every_kind_of_mention_is_made_inert(text):
    out = neutralize(text)
    assert not _pings(out), out
    assert out.replace(ZWSP, "") == text, "the text reads the same"


def test_ordinary_text_and_code_are_left_alone():
    text = "mail me at bob@here.com; a < b; <https://x.y|link>; @param; ```\n@property\n<!-- c -->\n```"
    assert neutralize(text) == text


def test_streaming_prefixes_only_grow_and_never_ping():
    rng = random.Random(7)
    atoms = ["<", "@", "!", "here", "channel", "U12", "W3", "|bob", ">", " ", "x", "everyone", "subteam^S1", "\n"]
    for _ in range(300):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(1, 40)))
        full = neutralize(text)
        assert not _pings(full), (text, full)
        previous = ""
        for end in range(len(text) + 1):
            shown = neutralize(stable_prefix(text[:end]))
            assert shown.startswith(previous), (text, end, previous, shown)
            assert full.startswith(shown)
            assert not _pings(shown)
            previous = shown


def test_stable_prefix_holds_back_only_a_possible_mention():
    assert stable_prefix("hello wor") == "hello wor"
    assert stable_prefix("hello <") == "hello "
    assert stable_prefix("hello <!he") == "hello "
    assert stable_prefix("ask @chan") == "ask "
    assert stable_prefix("ask @channel") == "ask @channel"


def test_markdown_blocks_round_trip_the_text():
    text = "Intro\n```py\nx = 1\n```\nMiddle\n\n```\ny\n```\n\nEnd"
    assert "".join(chunk for chunk, _ in _blocks(text)) == text


def test_final_parts_fit_one_message_and_carry_the_footer_last():
    text = "\n\n".join(f"Paragraph {i} " + "word " * 400 for i in range(20))
    parts = final_parts(text, "_stopped: busy_")
    assert len(parts) >= 3 and all(len(p) <= PART_LIMIT for p in parts)
    assert parts[-1].endswith("\n\n_stopped: busy_") and not any("stopped" in p for p in parts[:-1])
    assert split_parts("short") == ["short"]


def test_final_payload_is_a_markdown_block_with_a_short_escaped_fallback():
    payload = final_payload("**Hi** <b> & " + "x" * 5000)
    assert payload["blocks"] == [{"type": "markdown", "text": "**Hi** <b> & " + "x" * 5000}]
    assert payload["text"].startswith("**Hi** &lt;b&gt; &amp; ") and len(payload["text"]) <= 3900
    assert plain_fallback("") == " "


def test_slack_limits_override_the_defaults():
    limits = parse_limits({"chat.update": [10, 1], "chat.postMessage": {"limit": 2, "per": 0.5},
                           "answer_interval": 0.2, "margin": 0.1})
    rates = limits.rates
    assert (rates["chat.update"].limit, rates["chat.update"].per) == (10, 1.0)
    assert (rates["chat.postMessage"].limit, rates["chat.postMessage"].per) == (2, 0.5)
    assert rates["chat.stopStream"] == DEFAULT_RATES["chat.stopStream"]
    assert (limits.answer_interval, limits.margin) == (0.2, 0.1)
    with pytest.raises(ValueError, match="chat.update"):
        parse_limits({"chat.update": "fast"})
    with pytest.raises(ValueError, match="limit >= 1"):
        parse_limits({"chat.update": [0, 1]})


ME = Identity("U0BOT", "B0BOT")


def test_scopes_and_reply_threads():
    mention = classify(event_envelope(app_mention("hi", channel="C1", ts="1.1")), ME)
    assert mention.scope == "slack:T0TEST:C1:1.1" and mention.reply_thread == "1.1" and mention.text == "hi"
    reply = classify(event_envelope(channel_message("more", channel="C1", ts="1.2", thread_ts="1.1")), ME)
    assert reply.scope == mention.scope and reply.needs_conversation
    dm = classify(event_envelope(dm_message("hey", channel="D1", ts="2.1")), ME)
    assert dm.scope == "slack:T0TEST:D1" and dm.reply_thread is None and not dm.needs_conversation
    dm_thread = classify(event_envelope(dm_message("in thread", channel="D1", ts="2.3", thread_ts="2.1")), ME)
    assert dm_thread.scope == "slack:T0TEST:D1:2.1" and dm_thread.reply_thread == "2.1"
    assert classify(event_envelope(channel_message("top", channel="C1")), ME) is None
    assert classify(event_envelope(dm_message("x", channel="D1") | {"subtype": "message_changed"}), ME) is None
    shared = classify(event_envelope(dm_message("file", channel="D1", files=[{"name": "a.txt", "size": 3}])), ME)
    assert shared.attachments[0].name == "a.txt"


def test_command_words():
    assert classify(event_envelope(dm_message(" Reset! ", channel="D1")), ME).command == "new"
    assert classify(event_envelope(app_mention("help", channel="C1")), ME).command == "help"
    assert classify(event_envelope(dm_message("new idea please", channel="D1")), ME).command is None
    in_thread = classify(event_envelope(channel_message("new", channel="C1", thread_ts="1.1")), ME)
    assert in_thread.command is None, "without a mention a thread message is not said to the bot"
