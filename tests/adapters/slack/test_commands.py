"""DM rolling conversations, `new`/`help` words, slash commands, the kb shortcut, the allow-list, restart recovery."""

from __future__ import annotations

import json

from slack_sdk.web.async_client import AsyncWebClient

from bots import messages
from storage import Repository
from tests.helpers.slack_events import (
    app_mention, dm_message, message_shortcut_form, new_ts, post_signed,
)
from tests.adapters.slack.conftest import SECRET


async def _dm_answers(sb, channel: str, count: int) -> list[str]:
    def done(f) -> bool:
        msgs = f.messages.get(channel, [])
        return len(msgs) >= count and all(not m.streaming and f.final_text(m) != messages.THINKING for m in msgs)
    await sb.slack.wait_for(done)
    return [sb.slack.final_text(m) for m in sb.slack.messages[channel]]


async def test_dm_rolling_conversation_new_word_and_new_slash_command(slack_bridge):
    sb = slack_bridge
    await sb.post(dm_message("one", channel="D1"))
    await _dm_answers(sb, "D1", 1)
    await sb.post(dm_message("two", channel="D1"))
    await _dm_answers(sb, "D1", 2)
    await sb.post(dm_message("new", channel="D1"))
    answers = await _dm_answers(sb, "D1", 3)
    assert answers[2] == messages.NEW_CONVERSATION
    await sb.post(dm_message("three", channel="D1"))
    await _dm_answers(sb, "D1", 4)
    status, body = await sb.command("/new", channel_id="D1")
    assert status == 200 and json.loads(body)["text"] == messages.NEW_CONVERSATION
    status, body = await sb.command("/new", channel_id="D1")
    assert json.loads(body)["text"] == messages.NO_CONVERSATION
    await sb.post(dm_message("Reset", channel="D1"))  # the word works in any case
    answers = await _dm_answers(sb, "D1", 5)
    assert answers[4] == messages.NO_CONVERSATION
    await sb.post(dm_message("four", channel="D1"))
    await _dm_answers(sb, "D1", 6)

    bodies = sb.chat_bodies()
    assert [b["query"] for b in bodies] == ["one", "two", "three", "four"], "commands never reach Dify"
    ids = [b.get("conversation_id") or "" for b in bodies]
    assert ids[0] == "" and ids[1] != "" and ids[2] == "" and ids[3] == ""
    assert len(sb.dify.conversations) == 3
    assert all(m.thread_ts is None for m in sb.slack.messages["D1"]), "a DM's rolling answers stay at the top level"


async def test_a_dm_thread_is_its_own_conversation(slack_bridge):
    sb = slack_bridge
    top = dm_message("top", channel="D1")
    await sb.post(top)
    await _dm_answers(sb, "D1", 1)
    await sb.post(dm_message("in the thread of my first message", channel="D1", thread_ts=top["ts"]))
    await sb.slack.wait_for(lambda f: len([m for m in f.thread("D1", top["ts"]) if not m.streaming]) == 1)
    await sb.post(dm_message("again in the thread", channel="D1", thread_ts=top["ts"]))
    await sb.slack.wait_for(lambda f: len([m for m in f.thread("D1", top["ts"]) if not m.streaming]) == 2)
    await sb.post(dm_message("top level again", channel="D1"))
    await _dm_answers(sb, "D1", 4)
    ids = [b.get("conversation_id") or "" for b in sb.chat_bodies()]
    assert ids[0] == "" and ids[1] == "", "a DM thread starts its own conversation"
    assert ids[2] != "" and ids[2] != ids[3], "the thread continues its conversation"
    assert ids[3] != "" and len(sb.dify.conversations) == 2, "the top level keeps rolling"
    assert sb.slack.calls_to("chat.startStream"), "answers in a DM thread stream natively"


async def test_words_and_slash_commands_in_a_channel(slack_bridge):
    sb = slack_bridge
    root = app_mention("help", channel="C1", user="U1")
    await sb.post(root)
    await sb.slack.wait_for(lambda f: f.ephemerals)
    assert sb.slack.ephemerals[0]["text"] == messages.help_text("slack")
    assert sb.slack.ephemerals[0]["thread_ts"] == root["ts"] and sb.slack.ephemerals[0]["user"] == "U1"
    await sb.post(app_mention("new", channel="C1"))
    await sb.slack.wait_for(lambda f: len(f.ephemerals) == 2)
    assert sb.slack.ephemerals[1]["text"] == messages.CHANNEL_NEW_HINT
    status, body = await sb.command("/new", channel_id="C1")
    assert json.loads(body)["text"] == messages.CHANNEL_NEW_HINT
    status, body = await sb.command("/help", channel_id="C1")
    assert json.loads(body)["text"] == messages.help_text("slack")
    await sb.post(app_mention("", channel="C2"))  # a bare mention: how to use the bot
    await sb.slack.wait_for(lambda f: len(f.ephemerals) == 3)
    assert sb.chat_bodies() == []


async def test_the_kb_handler_can_be_swapped(slack_bridge):
    sb = slack_bridge
    seen = []

    async def handler(command, ack, respond):
        seen.append(command["text"])
        await ack(text="queued")

    sb.adapter.kb_handler = handler
    status, body = await sb.command("/kb", "list", channel_id="C1")
    assert body == "queued" and seen == ["list"], "a plain-text ack is an ephemeral reply too"


async def test_users_outside_the_allow_list_get_one_private_line(start_bridge):
    sb = await start_bridge(env={"ALLOWED_USERS": "slack:U1"})
    root = app_mention("let me in", channel="C1", user="U2")
    await sb.post(root)
    await sb.slack.wait_for(lambda f: f.ephemerals)
    assert sb.slack.ephemerals[0]["text"] == messages.PRIVATE_BOT and sb.slack.ephemerals[0]["user"] == "U2"
    status, body = await sb.command("/new", channel_id="D9", user_id="U2")
    assert json.loads(body)["text"] == messages.PRIVATE_BOT
    allowed = app_mention("I am allowed.", channel="C1", user="U1")
    await sb.post(allowed)
    await sb.slack.wait_for(lambda f: any(not m.streaming for m in f.thread("C1", allowed["ts"])))
    assert [b["query"] for b in sb.chat_bodies()] == ["I am allowed."]


async def test_answers_left_streaming_by_a_crash_are_finished_as_interrupted(slack_bridge):
    sb = slack_bridge
    await sb.stop()  # the "crashed" process is gone; its rows and its half-written messages remain
    client = AsyncWebClient(token=sb.slack.bot_token, base_url=sb.slack.api_url)
    root, orphan_root = new_ts(), new_ts()
    stream = await client.chat_startStream(channel="C1", thread_ts=root, markdown_text="Half of the",
                                           recipient_user_id="U1", recipient_team_id="T0TEST")
    await client.chat_appendStream(channel="C1", ts=stream["ts"], markdown_text=" answer")
    posted = await client.chat_postMessage(channel="D1", markdown_text="Half in a DM")
    repo = await Repository.open(sb.db_url)
    native = await repo.create_reply("slack", f"slack:T0TEST:C1:{root}", location={
        "team": "T0TEST", "channel": "C1", "thread_ts": root, "ts": stream["ts"], "mode": "native",
        "text": "Half of the answer"})
    update = await repo.create_reply("slack", "slack:T0TEST:D1", location={
        "team": "T0TEST", "channel": "D1", "thread_ts": None, "ts": posted["ts"], "mode": "update",
        "text": "Half in a DM"})
    nothing = await repo.create_reply("slack", f"slack:T0TEST:C2:{orphan_root}", location={
        "team": "T0TEST", "channel": "C2", "thread_ts": orphan_root, "ts": None, "mode": "native", "text": ""})
    await repo.close()

    await sb.start()
    assert await sb.adapter.recovery == 3
    footer = messages.stopped_footer(messages.INTERRUPTED)
    [streamed] = sb.slack.thread("C1", root)
    assert sb.slack.final_text(streamed) == f"Half of the answer\n\n{footer}" and not streamed.streaming
    assert sb.slack.final_text(sb.slack.messages["D1"][0]) == f"Half in a DM\n\n{footer}"
    assert sb.slack.final_text(sb.slack.thread("C2", orphan_root)[0]) == footer
    for reply_id in (native, update, nothing):
        assert (await sb.bridge.repo.get_reply(reply_id)).state == "interrupted"
    assert await sb.bridge.engine.interrupted_replies("slack") == []


async def test_a_shutdown_mid_answer_ends_the_answer_visibly(start_bridge):
    from tests.fakes.fake_dify import Plan

    sb = await start_bridge(env={"SHUTDOWN_GRACE_SECONDS": "0"})
    sb.dify.plan(Plan(tokens=["Partial ", "words ", "and ", "then ", "nothing"], token_gap=0.05, hang_after=3))
    event = app_mention("long question", channel="C1")
    await sb.post(event)
    await sb.slack.wait_for(lambda f: any(f.final_text(m).startswith("Partial words and")
                                          for m in f.thread("C1", event["ts"])))
    await sb.stop()
    [msg] = sb.slack.thread("C1", event["ts"])
    assert not msg.streaming
    assert sb.slack.final_text(msg) == "Partial words and\n\n" + messages.stopped_footer(messages.SHUTTING_DOWN)


def test_a_mentioned_command_is_a_command_even_as_a_plain_message_event():
    """The `message.channels` copy of `@bot new` in a thread may arrive first: still a command."""
    from adapters.slack.listeners import Identity, classify
    from tests.helpers.slack_events import channel_message, event_envelope

    me = Identity(bot_user_id="U0BOT", bot_id="B0BOT")
    copy = channel_message("<@U0BOT> new", channel="C1", ts="1700000001.000200", thread_ts="1700000000.000100")
    assert classify(event_envelope(copy), me).command == "new"
    plain = channel_message("new", channel="C1", ts="1700000001.000300", thread_ts="1700000000.000100")
    assert classify(event_envelope(plain), me).command is None, "without a mention it is thread chatter"
