"""Answers in Slack: native streams, the update fallback, stream expiry, long answers, no pings, errors."""

from __future__ import annotations

import re
import time

import pytest

from bots import messages
from tests.fakes.fake_dify import Plan
from tests.helpers.slack_events import app_mention, dm_message

ANSWER = "Hello there, this answer streams word by word into the thread, as Slack shows it."


def _errors(fake) -> list[str]:
    return [f"{c.method}:{c.error}" for c in fake.calls if not c.ok]


async def test_mention_streams_a_threaded_answer(slack_bridge):
    sb = slack_bridge
    sb.dify.plan(Plan(answer=ANSWER, token_gap=0.02))
    event = app_mention("<@U0BOT> what is dify?", channel="C1", user="U1")
    status, _ = await sb.post(event)
    assert status == 200
    await sb.slack.wait_for(lambda f: f.calls_to("chat.stopStream"))
    [msg] = sb.slack.thread("C1", event["ts"])
    assert sb.slack.final_text(msg) == ANSWER and msg.stream and not msg.streaming
    start = sb.slack.calls_to("chat.startStream")[0].args
    assert start["thread_ts"] == event["ts"] and start["recipient_user_id"] == "U1"
    assert start["recipient_team_id"] == "T0TEST"
    assert len(sb.slack.calls_to("chat.appendStream")) >= 2, "the answer grows in place"
    assert len(msg.history) > 2 and all(ANSWER.startswith(h) for h in msg.history)
    assert sb.chat_bodies()[0]["query"] == "what is dify?", "the mention is not sent to Dify"
    assert sb.chat_bodies()[0]["user"] == "slack:T0TEST:U1"
    assert _errors(sb.slack) == []


async def test_a_sign_of_life_appears_within_a_second_when_dify_is_slow(slack_bridge):
    sb = slack_bridge
    sb.dify.plan(Plan(answer="Finally.", first_token_delay=1.5), Plan(answer="Also slow.", first_token_delay=1.5))
    event = app_mention("slow one", channel="C1")
    began = time.monotonic()
    await sb.post(event)
    await sb.slack.wait_for(lambda f: f.statuses, timeout=1.0)
    assert time.monotonic() - began < 1.0
    assert sb.slack.statuses[0]["thread_ts"] == event["ts"] and sb.slack.statuses[0]["status"]

    dm = dm_message("slow in a DM", channel="D1")  # top-level DM: no thread, so a placeholder message
    began = time.monotonic()
    await sb.post(dm)
    await sb.slack.wait_for(lambda f: f.messages.get("D1"), timeout=1.0)
    assert time.monotonic() - began < 1.0
    assert sb.slack.final_text(sb.slack.messages["D1"][0]) == messages.THINKING
    await sb.slack.wait_for(lambda f: f.final_text(f.messages["D1"][0]) == "Also slow.", timeout=5)
    await sb.slack.wait_for(lambda f: any(f.final_text(m) == "Finally." for m in f.thread("C1", event["ts"])))


async def test_refused_native_stream_falls_back_and_the_refusal_is_remembered(start_bridge):
    sb = await start_bridge(native_streaming=False)  # chat.startStream -> channel_type_not_supported
    sb.dify.plan(Plan(answer=ANSWER, token_gap=0.02), Plan(answer="Second answer, no stream attempt.", token_gap=0.02))
    first = app_mention("one", channel="C1")
    await sb.post(first)
    await sb.slack.wait_for(lambda f: any(f.final_text(m) == ANSWER for m in f.thread("C1", first["ts"])))
    [msg] = sb.slack.thread("C1", first["ts"])
    assert not msg.stream and msg.blocks == [{"type": "markdown", "text": ANSWER}], "final write is a markdown block"
    assert sb.slack.calls_to("chat.update")[-1].args["text"] == ANSWER, "with a plain text fallback"
    assert len(sb.slack.calls_to("chat.startStream")) == 1

    second = app_mention("two", channel="C2")
    await sb.post(second)
    await sb.slack.wait_for(
        lambda f: any(f.final_text(m) == "Second answer, no stream attempt." for m in f.thread("C2", second["ts"])))
    assert len(sb.slack.calls_to("chat.startStream")) == 1, "the refusal is remembered for this workspace"


async def test_unknown_stream_methods_fall_back_too(start_bridge):
    sb = await start_bridge(native_streaming="unknown_method")
    sb.dify.plan(Plan(answer=ANSWER, token_gap=0.01))
    event = app_mention("hi", channel="C1")
    await sb.post(event)
    await sb.slack.wait_for(lambda f: any(f.final_text(m) == ANSWER for m in f.thread("C1", event["ts"])))


async def test_native_mode_setting_tries_the_stream_every_time(start_bridge):
    sb = await start_bridge(native_streaming=False, env={"SLACK_STREAM_MODE": "native"})
    sb.dify.plan(Plan(answer="First.", token_gap=0.01), Plan(answer="Second.", token_gap=0.01))
    for channel, text in (("C1", "First."), ("C2", "Second.")):
        event = app_mention("hi", channel=channel)
        await sb.post(event)
        await sb.slack.wait_for(lambda f: any(f.final_text(m) == text for m in f.thread(channel, event["ts"])))
    assert len(sb.slack.calls_to("chat.startStream")) == 2, "a forced mode does not remember refusals"


async def test_update_mode_setting_never_streams(start_bridge):
    sb = await start_bridge(env={"SLACK_STREAM_MODE": "update"})
    sb.dify.plan(Plan(answer=ANSWER, token_gap=0.02))
    event = app_mention("hi", channel="C1")
    await sb.post(event)
    await sb.slack.wait_for(lambda f: any(f.final_text(m) == ANSWER for m in f.thread("C1", event["ts"])))
    assert not sb.slack.calls_to("chat.startStream")
    [msg] = sb.slack.thread("C1", event["ts"])
    assert msg.updates >= 2, "a placeholder, paced updates, then the final block"


async def test_stream_expiry_mid_answer_is_completed_with_chat_update(start_bridge):
    sb = await start_bridge(stream_expires_after=2)
    tokens = [f"word{i} " for i in range(40)]
    sb.dify.plan(Plan(tokens=tokens, token_gap=0.01))
    event = app_mention("long", channel="C1")
    await sb.post(event)
    expected = "".join(tokens)
    await sb.slack.wait_for(lambda f: any(f.final_text(m) == expected for m in f.thread("C1", event["ts"])))
    [msg] = sb.slack.thread("C1", event["ts"])
    assert msg.stream and msg.expired and msg.replaced, "the same message, finished by chat.update"
    assert any(c.args.get("ts") == msg.ts for c in sb.slack.calls_to("chat.update"))


def _long_answer() -> str:
    parts = []
    i = 0
    while sum(map(len, parts)) < 30_000:
        if i % 4 == 1:
            body = "\n".join(f"    total_{j} = compute({i}, {j})  # line {j}" for j in range(50))
            parts.append(f"```python\n{body}\n```")
        else:
            parts.append(f"Paragraph {i}: " + " ".join(f"lorem{i}_{j}" for j in range(100)))
        i += 1
    return "\n\n".join(parts)


def _norm(text: str) -> str:
    return re.sub(r"\s+|```[a-z]*", "", text)


@pytest.mark.parametrize("where", ["channel thread (native stream)", "top-level DM (updates)"])
async def test_a_30000_character_answer_is_split_at_block_boundaries(slack_bridge, where):
    sb = slack_bridge
    answer = _long_answer()
    assert len(answer) >= 30_000
    sb.dify.plan(Plan(answer=answer, token_gap=0.0))
    if where.startswith("channel"):
        event = app_mention("write a lot", channel="C1")
        thread = lambda f: f.thread("C1", event["ts"])  # noqa: E731
    else:
        event = dm_message("write a lot", channel="D1")
        thread = lambda f: f.messages["D1"]  # noqa: E731
    await sb.post(event)
    await sb.adapter.wait_handled(1, timeout=20)
    msgs = thread(sb.slack)
    assert len(msgs) >= 3 and not any(m.streaming for m in msgs)
    texts = [sb.slack.final_text(m) for m in msgs]
    assert _norm("".join(texts)) == _norm(answer), "nothing lost, nothing repeated"
    for text in texts:
        assert len(text) <= 12_000
        assert text.count("```") % 2 == 0, "no code block is cut open"
    assert _errors(sb.slack) == []


async def test_mass_mentions_in_an_answer_cannot_ping(slack_bridge):
    sb = slack_bridge
    answer = "Hey <!here> and <!channel|channel>, also @here, @everyone and <@U777|bob>; mail a@here.io."
    sb.dify.plan(Plan(answer=answer, token_gap=0.01))
    event = app_mention("ping everyone", channel="C1")
    await sb.post(event)
    await sb.slack.wait_for(lambda f: f.calls_to("chat.stopStream"))
    [msg] = sb.slack.thread("C1", event["ts"])
    shown = sb.slack.final_text(msg)
    for ping in ("<!here", "<!channel", "<@U777", "@here,", "@everyone"):
        assert ping not in shown
    assert shown.replace("\u200b", "") == answer, "the text reads the same"
    assert "a@here.io" in shown


async def test_a_dify_error_is_one_short_line_in_the_thread(slack_bridge):
    sb = slack_bridge
    sb.dify.plan(Plan(http_error=(400, "provider_not_initialize", "No valid model provider credentials found.")))
    event = app_mention("hello", channel="C1")
    await sb.post(event)
    line = "The Dify app is unavailable; ask an admin to check the app's model provider."
    await sb.slack.wait_for(lambda f: any(f.final_text(m) == line for m in f.thread("C1", event["ts"])))
    assert len(sb.slack.thread("C1", event["ts"])) == 1
    assert "Traceback" not in str([c.args for c in sb.slack.calls])


async def test_a_partial_answer_stays_with_a_stopped_footer(slack_bridge):
    sb = slack_bridge
    sb.dify.plan(Plan(tokens=["The first ", "half of ", "an answer "], token_gap=0.02, error_after=3))
    event = app_mention("hello", channel="C1")
    await sb.post(event)
    await sb.slack.wait_for(lambda f: f.calls_to("chat.stopStream"))
    [msg] = sb.slack.thread("C1", event["ts"])
    text = sb.slack.final_text(msg)
    assert text.startswith("The first half of an answer")
    assert re.search(r"\n\n_stopped: .+_$", text), text


async def test_endings_survive_429s_from_a_stricter_slack(start_bridge):
    from tests.adapters.slack.conftest import FAST_LIMITS, limits_env
    from tests.fakes.fake_slack import RateLimit

    # Slack is stricter than the budgets the bridge was told: it answers 429 + Retry-After, the bridge waits
    # and writes the ending again.
    strict = {"chat.stopStream": RateLimit(1, 1.0), "chat.postMessage": RateLimit(1, 1.0, "channel")}
    sb = await start_bridge(limits=strict, env={"SLACK_LIMITS": limits_env(FAST_LIMITS)})
    answers = [f"Answer number {i} is complete." for i in range(3)]
    sb.dify.plan(*(Plan(answer=a, token_gap=0.01) for a in answers))
    events = [app_mention(f"q{i}", channel="C1") for i in range(3)]
    for event in events:
        await sb.post(event)
    await sb.adapter.wait_handled(3, timeout=20)
    finals = sorted(sb.slack.final_text(m) for e in events for m in sb.slack.thread("C1", e["ts"]))
    assert finals == answers
    assert sb.slack.ratelimited >= 1 and sb.adapter.writer.ratelimited == sb.slack.ratelimited


async def test_an_expired_dify_conversation_restarts_with_a_short_notice(slack_bridge):
    sb = slack_bridge
    root = app_mention("first", channel="C1")
    await sb.post(root)
    await sb.adapter.wait_handled(1)
    for conversation in sb.dify.conversations.values():
        conversation.deleted = True
    await sb.post(app_mention("second", channel="C1", thread_ts=root["ts"]))
    await sb.adapter.wait_handled(2)
    last = sb.slack.final_text(sb.slack.thread("C1", root["ts"])[-1])
    default = "Hello from the fake LLM. You said: second . This reply is deterministic."
    assert last == f"{messages.CONVERSATION_RESTARTED}\n\n{default}"
