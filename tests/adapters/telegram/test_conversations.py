"""Who the bot answers and which conversation it continues: DMs, groups, replies, topics, /new, access."""

from __future__ import annotations

from bots import messages
from tests.fakes.fake_dify import Plan
from tests.helpers import telegram_updates as tu

from .conftest import GROUP, PRIVATE

ANSWER = "Hello there, this answer streams **word by word** into the chat, as Telegram shows it."
SHOWN = "Hello there, this answer streams word by word into the chat, as Telegram shows it."
BOT = "dify_test_bot"


def dm_command(text: str, **kw) -> dict:
    body, entities = tu.command(text)
    return tu.private_message(body, entities=entities, **kw)


def group_command(text: str, **kw) -> dict:
    body, entities = tu.command(text)
    return tu.group_message(body, entities=entities, **kw)


def errors(fake) -> list[str]:
    return [f"{c.method}:{c.status}:{c.response.get('description')}" for c in fake.calls if not c.ok]


async def test_dm_streams_through_drafts_then_one_final_message(polling):
    tb = polling
    tb.dify.plan(Plan(answer=ANSWER, token_gap=0.03))
    tb.tg.push_update(tu.private_message("what is dify?"))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE) == [SHOWN])
    drafts = tb.tg.drafts[PRIVATE]
    assert len(drafts) >= 2, "the answer grows in a draft"
    assert all(SHOWN.startswith(d["text"].replace("**", "")) or "**" in d["text"] for d in drafts)
    assert len({d["draft_id"] for d in drafts}) == 1, "one draft, animated"
    [msg] = tb.tg.chats[PRIVATE]
    assert msg.edits == [] and msg.reply_to_message_id is None, "one final sendMessage, no edits"
    assert {"type": "bold", "offset": 33, "length": 12} in msg.entities, "Markdown became entities"
    assert msg.parse_mode is None
    assert tb.tg.chat_actions and tb.tg.chat_actions[0]["action"] == "typing"
    body = tb.chat_bodies()[0]
    assert body["query"] == "what is dify?" and body["user"] == f"telegram:{PRIVATE}"
    assert errors(tb.tg) == []


async def test_dm_is_one_rolling_conversation_until_new(polling):
    tb = polling
    tb.dify.plan(Plan(answer="First."), Plan(answer="Second."), Plan(answer="Third."))
    tb.tg.push_update(tu.private_message("one"))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE) == ["First."])
    tb.tg.push_update(tu.private_message("two"))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE)[-1:] == ["Second."])
    tb.tg.push_update(dm_command("/new"))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE)[-1:] == [messages.NEW_CONVERSATION])
    tb.tg.push_update(tu.private_message("three"))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE)[-1:] == ["Third."])
    bodies = tb.chat_bodies()
    assert [b["query"] for b in bodies] == ["one", "two", "three"], "/new never reaches Dify"
    assert bodies[0].get("conversation_id") in (None, "")
    assert bodies[1]["conversation_id"], "the second message continues the first one's conversation"
    assert bodies[2].get("conversation_id") in (None, ""), "after /new a new conversation starts"


async def test_group_mention_is_answered_in_reply_to_the_user(webhook):
    tb = webhook
    tb.dify.plan(Plan(answer=ANSWER, token_gap=0.03))
    text, entities = tu.mention("hey", BOT, "what is RAG?")
    update = tu.group_message(text, entities=entities, user_id=2002)
    tb.tg.push_update(update)
    await tb.tg.wait_for(lambda f: f.final_text(GROUP) == [SHOWN])
    [msg] = tb.tg.chats[GROUP]
    assert msg.reply_to_message_id == update["message"]["message_id"]
    assert msg.edits and msg.edits[-1] == SHOWN, "sendMessage at the first text, then edits"
    assert tb.tg.drafts == {}, "no drafts in groups"
    body = tb.chat_bodies()[0]
    assert body["query"] == "hey what is RAG?", "the mention is not sent to Dify"
    assert body["user"] == "telegram:2002"
    assert errors(tb.tg) == []


async def test_a_reply_to_the_bots_answer_continues_that_conversation(polling):
    tb = polling
    tb.dify.plan(Plan(answer="Answer one."), Plan(answer="Answer two."), Plan(answer="Other thread."),
                 Plan(answer="Answer three."))
    text, entities = tu.mention("", BOT, "first question")
    first = tu.group_message(text, entities=entities)
    tb.tg.push_update(first)
    await tb.tg.wait_for(lambda f: f.final_text(GROUP) == ["Answer one."])
    answer = tb.tg.chats[GROUP][0]
    reply = tu.group_message("and a follow-up", user_id=3003,
                             reply_to=tu.bot_message(GROUP, answer.message_id, answer.text))
    tb.tg.push_update(reply)
    await tb.tg.wait_for(lambda f: f.final_text(GROUP)[-1:] == ["Answer two."])
    other_text, other_entities = tu.mention("", BOT, "unrelated")
    tb.tg.push_update(tu.group_message(other_text, entities=other_entities))
    await tb.tg.wait_for(lambda f: f.final_text(GROUP)[-1:] == ["Other thread."])
    second = tb.tg.chats[GROUP][1]  # the follow-up's answer: replying to it continues the same thread
    tb.tg.push_update(tu.group_message("more", reply_to=tu.bot_message(GROUP, second.message_id, second.text)))
    await tb.tg.wait_for(lambda f: f.final_text(GROUP)[-1:] == ["Answer three."])
    bodies = tb.chat_bodies()
    assert bodies[0].get("conversation_id") in (None, "")
    conversation = bodies[1]["conversation_id"]
    assert conversation, "the follow-up continues the conversation"
    assert bodies[1]["user"] == "telegram:1001", "the conversation keeps the Dify user of its starter"
    assert bodies[2].get("conversation_id") in (None, ""), "a new mention starts a new conversation"
    assert bodies[3]["conversation_id"] == conversation
    assert tb.tg.chats[GROUP][1].reply_to_message_id == reply["message"]["message_id"]


async def test_plain_group_chatter_is_ignored(webhook):
    tb = webhook
    tb.dify.plan(Plan(answer="Only this."))
    tb.tg.push_update(tu.group_message("just people talking"))
    tb.tg.push_update(tu.group_message("a reply to a person", reply_to=tu.group_message("x")["message"]))
    other, other_entities = tu.mention("hi", "some_other_bot")
    tb.tg.push_update(tu.group_message(other, entities=other_entities))
    tb.tg.push_update(group_command("/new@some_other_bot"))
    text, entities = tu.mention("", BOT, "a real question")
    tb.tg.push_update(tu.group_message(text, entities=entities))
    await tb.tg.wait_for(lambda f: f.final_text(GROUP) == ["Only this."])
    assert [b["query"] for b in tb.chat_bodies()] == ["a real question"]
    assert len(tb.tg.chats[GROUP]) == 1


async def test_forum_topics_are_one_conversation_each(polling):
    tb = polling
    tb.dify.plan(Plan(answer="Topic seven, first."), Plan(answer="Topic nine."), Plan(answer="Topic seven, again."))
    for thread, question in ((7, "in seven"), (9, "in nine")):
        text, entities = tu.mention("", BOT, question)
        tb.tg.push_update(tu.group_message(text, entities=entities, message_thread_id=thread, is_topic_message=True))
        await tb.tg.wait_for(lambda f, t=thread: f.final_text(GROUP, t)[-1:] in (["Topic seven, first."],
                                                                                  ["Topic nine."]))
    text, entities = tu.mention("", BOT, "seven again")
    tb.tg.push_update(tu.group_message(text, entities=entities, message_thread_id=7, is_topic_message=True))
    await tb.tg.wait_for(lambda f: f.final_text(GROUP, 7)[-1:] == ["Topic seven, again."])
    assert tb.sent(GROUP, 7) == ["Topic seven, first.", "Topic seven, again."]
    assert tb.sent(GROUP, 9) == ["Topic nine."]
    bodies = tb.chat_bodies()
    assert bodies[0].get("conversation_id") in (None, "") and bodies[1].get("conversation_id") in (None, "")
    assert bodies[2]["conversation_id"], "the same topic continues its conversation"
    threads = {c.params.get("message_thread_id") for c in tb.tg.calls if c.method in ("sendMessage", "sendChatAction")}
    assert threads == {7, 9}, "every message and chat action names the topic"
    assert all(m.message_thread_id in (7, 9) for m in tb.tg.chats[GROUP])


async def test_new_in_a_group_explains_and_help_and_kb_answer(webhook):
    tb = webhook
    tb.tg.push_update(group_command(f"/new@{BOT}"))
    tb.tg.push_update(group_command("/help"))
    tb.tg.push_update(group_command(f"/kb@{BOT} status"))
    tb.tg.push_update(dm_command("/start"))
    await tb.tg.wait_for(lambda f: len(f.final_text(GROUP)) == 3 and f.final_text(PRIVATE))
    assert tb.sent(GROUP)[0].startswith("In a group every message that mentions me")
    assert tb.sent(GROUP)[1].startswith("Dify Bridge connects this chat")
    assert tb.sent(GROUP)[2] == messages.KB_STATUS_EMPTY
    assert tb.sent(PRIVATE)[0].startswith("Dify Bridge connects this chat")
    assert tb.dify.chat_requests() == [], "commands never reach Dify"


async def test_refused_users_get_one_short_reply(start_bridge):
    tb = await start_bridge(env={"ALLOWED_USERS": "telegram:1001"})
    tb.dify.plan(Plan(answer="For Ann."))
    tb.tg.push_update(tu.private_message("let me in", user_id=4004))
    tb.tg.push_update(tu.private_message("please", user_id=4004))
    tb.tg.push_update(tu.private_message("hello", user_id=1001))
    await tb.tg.wait_for(lambda f: f.final_text(1001) == ["For Ann."])
    await tb.adapter.wait_received(3)
    await tb.tg.wait_for(lambda f: f.final_text(4004))
    assert tb.sent(4004) == [messages.PRIVATE_BOT], "once, not per message"
    assert [b["user"] for b in tb.chat_bodies()] == ["telegram:1001"]


async def test_replies_continue_the_conversation_after_a_restart(polling):
    tb = polling
    tb.dify.plan(Plan(answer="Remembered."), Plan(answer="Still the same conversation."))
    text, entities = tu.mention("", BOT, "remember this")
    tb.tg.push_update(tu.group_message(text, entities=entities))
    await tb.tg.wait_for(lambda f: f.final_text(GROUP) == ["Remembered."])
    answer = tb.tg.chats[GROUP][0]
    await tb.restart()
    tb.tg.push_update(tu.group_message("what did I say?", reply_to=tu.bot_message(GROUP, answer.message_id, answer.text)))
    await tb.tg.wait_for(lambda f: f.final_text(GROUP)[-1:] == ["Still the same conversation."])
    _, second = tb.chat_bodies()
    assert second["conversation_id"] and second["query"] == "what did I say?"
