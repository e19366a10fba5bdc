"""What the bridge answers, exactly once: signatures, retries, twins, threads, bots, shutdown, Socket Mode."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from tests.adapters.slack.conftest import SECRET
from tests.helpers.slack_events import app_mention, channel_message, dm_message, event_envelope, new_ts


def _answers(fake, channel: str, thread_ts: str | None = None) -> list[str]:
    msgs = fake.messages.get(channel, []) if thread_ts is None else fake.thread(channel, thread_ts)
    return [fake.final_text(m) for m in msgs]


async def _answered(sb, channel: str, thread_ts: str | None, count: int) -> list[str]:
    """Wait until `count` finished bot messages are in that thread (or DM top level)."""
    def done(f) -> bool:
        msgs = f.messages.get(channel, []) if thread_ts is None else f.thread(channel, thread_ts)
        msgs = [m for m in msgs if thread_ts is not None or m.thread_ts is None]
        return len(msgs) >= count and all(not m.streaming and f.final_text(m).endswith(".") for m in msgs)
    await sb.slack.wait_for(done)
    return _answers(sb.slack, channel, thread_ts)


async def test_forged_and_stale_signatures_are_refused_and_nothing_reaches_dify(slack_bridge):
    sb = slack_bridge
    forged = await sb.post(app_mention("forged"), secret="not-the-secret")
    stale = await sb.post(app_mention("stale"), timestamp=int(time.time()) - 600)
    assert forged[0] == 401 and stale[0] == 401
    async with aiohttp.ClientSession() as session:  # no signature at all
        async with session.post(f"{sb.url}/slack/events", data=json.dumps(event_envelope(app_mention("x")))) as resp:
            assert resp.status == 401
    good = app_mention("good", channel="C9")
    assert (await sb.post(good))[0] == 200
    await _answered(sb, "C9", good["ts"], 1)
    assert [b["query"] for b in sb.chat_bodies()] == ["good"]
    assert await sb.bridge.repo.count("processed_events") == 2, "only the good delivery and its message are claimed"


async def test_retries_and_twin_event_types_answer_once(slack_bridge):
    sb = slack_bridge
    root = app_mention("start a thread", channel="C1")
    await sb.post(root)
    await _answered(sb, "C1", root["ts"], 1)
    # A retried delivery (same event_id, X-Slack-Retry-Num) and the same reply as app_mention + message.channels.
    ts = new_ts()
    mention = app_mention("follow up", channel="C1", ts=ts, thread_ts=root["ts"])
    plain = channel_message(mention["text"], channel="C1", ts=ts, thread_ts=root["ts"])
    envelope = event_envelope(mention)
    results = await asyncio.gather(sb.post(envelope), sb.post(envelope, retry=1), sb.post(plain),
                                   sb.post(envelope, retry=2))
    assert [status for status, _ in results] == [200, 200, 200, 200], "every delivery is acked"
    await sb.adapter.wait_handled(5)
    await _answered(sb, "C1", root["ts"], 2)
    assert [b["query"] for b in sb.chat_bodies()] == ["start a thread", "follow up"]
    assert len(sb.slack.thread("C1", root["ts"])) == 2


async def test_redelivery_after_a_restart_is_answered_once(slack_bridge):
    sb = slack_bridge
    event = event_envelope(dm_message("only once", channel="D1"))
    await sb.post(event)
    await _answered(sb, "D1", None, 1)
    await sb.restart()
    assert (await sb.post(event, retry=3))[0] == 200
    await sb.adapter.wait_handled(1)
    assert len(sb.chat_bodies()) == 1


async def test_thread_replies_without_mention_continue_the_same_conversation(slack_bridge):
    sb = slack_bridge
    root = app_mention("first", channel="C1", user="U1")
    await sb.post(root)
    await _answered(sb, "C1", root["ts"], 1)
    await sb.post(channel_message("second, no mention", channel="C1", thread_ts=root["ts"], user="U1"))
    await _answered(sb, "C1", root["ts"], 2)
    await sb.post(channel_message("third, from someone else", channel="C1", thread_ts=root["ts"], user="U2"))
    await _answered(sb, "C1", root["ts"], 3)
    bodies = sb.chat_bodies()
    assert not bodies[0].get("conversation_id")
    [conversation] = sb.dify.conversations.values()
    assert bodies[1]["conversation_id"] == bodies[2]["conversation_id"] == conversation.id
    assert [b["user"] for b in bodies] == ["slack:T0TEST:U1"] * 3, "one Dify user: who started the thread"


async def test_a_restart_between_two_messages_keeps_the_conversation(slack_bridge):
    sb = slack_bridge
    root = app_mention("before the restart", channel="C1")
    await sb.post(root)
    await _answered(sb, "C1", root["ts"], 1)
    await sb.restart()
    await sb.post(channel_message("after the restart", channel="C1", thread_ts=root["ts"]))
    await _answered(sb, "C1", root["ts"], 2)
    [conversation] = sb.dify.conversations.values()
    assert sb.chat_bodies()[1]["conversation_id"] == conversation.id


async def test_ignored_messages_never_reach_dify(slack_bridge):
    sb = slack_bridge
    root = app_mention("a thread the bot is in", channel="C1")
    await sb.post(root)
    await _answered(sb, "C1", root["ts"], 1)
    thread = root["ts"]
    ignored = [
        channel_message("my own words", channel="C1", thread_ts=thread, user="U0BOT", bot_id="B0BOT"),
        channel_message("another bot", channel="C1", thread_ts=thread, user="U0OTHER", bot_id="B0OTHER"),
        channel_message("edited", channel="C1", thread_ts=thread, subtype="message_changed"),
        channel_message("", channel="C1", thread_ts=thread, subtype="message_deleted"),
        channel_message("<@U3> has joined", channel="C1", user="U3", subtype="channel_join"),
        channel_message("top level, no mention", channel="C1"),
        channel_message("a thread without the bot", channel="C1", thread_ts=new_ts()),
        dm_message("edited in a DM", channel="D1") | {"subtype": "message_changed"},
        dm_message("a bot in a DM", channel="D1") | {"bot_id": "B0OTHER"},
    ]
    for event in ignored:
        assert (await sb.post(event))[0] == 200
    sentinel = dm_message("answer this one.", channel="D2")
    await sb.post(sentinel)
    await _answered(sb, "D2", None, 1)
    await sb.adapter.wait_handled(len(ignored) + 1)  # Bolt drops the bot's own message before any listener
    assert [b["query"] for b in sb.chat_bodies()] == ["a thread the bot is in", "answer this one."]


async def test_other_bots_are_answered_when_configured(start_bridge):
    sb = await start_bridge(env={"SLACK_IGNORE_BOTS": "false"})
    root = app_mention("hello", channel="C1")
    await sb.post(root)
    await _answered(sb, "C1", root["ts"], 1)
    await sb.post(channel_message("from a bot", channel="C1", thread_ts=root["ts"], user="U0OTHER", bot_id="B0OTHER"))
    await _answered(sb, "C1", root["ts"], 2)
    assert sb.chat_bodies()[1]["query"] == "from a bot"


async def test_while_shutting_down_deliveries_get_503_and_are_not_claimed(slack_bridge):
    sb = slack_bridge
    await sb.bridge.engine.drain(0)  # what Server.shutdown does first
    event = event_envelope(dm_message("during shutdown", channel="D1"))
    assert (await sb.post(event))[0] == 503
    assert await sb.bridge.repo.count("processed_events") == 0
    await sb.restart()
    assert (await sb.post(event, retry=1))[0] == 200  # Slack redelivers later
    await _answered(sb, "D1", None, 1)
    assert [b["query"] for b in sb.chat_bodies()] == ["during shutdown"]


async def test_socket_mode_is_used_when_an_app_token_is_set(start_bridge):
    sb = await start_bridge(env={"SLACK_APP_TOKEN": "xapp-test-token"})
    await sb.slack.wait_for(lambda f: f.calls_to("apps.connections.open"))
    call = sb.slack.calls_to("apps.connections.open")[0]
    assert call.headers["Authorization"] == "Bearer xapp-test-token"
    status, _ = await sb.post(app_mention("over HTTP?"))
    assert status == 404, "no Events API route in Socket Mode"
    assert sb.adapter.routes() == []


async def test_the_url_verification_challenge_is_answered(slack_bridge):
    from tests.helpers.slack_events import post_signed

    body = json.dumps({"token": "x", "challenge": "abc123", "type": "url_verification"}).encode()
    status, text = await post_signed(slack_bridge.url, "/slack/events", body, SECRET)
    assert status == 200 and "abc123" in text
