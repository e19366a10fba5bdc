"""The fake Bot API, checked through the real python-telegram-bot client over loopback.

Note: PTB's TelegramError capitalizes the description (`str.capitalize` lower-cases the rest
and drops "Bad Request: "), so exact texts are checked on the answer the fake recorded.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import time

import aiohttp
import pytest
import telegram
from aiohttp import web
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from tests.fakes.fake_telegram import FakeTelegram, FloodLimits
from tests.fakes.fake_telegram_flood import FloodControl
from tests.helpers import telegram_updates as tu

PRIVATE, GROUP = 42, -100200


def make_bot(fake: FakeTelegram, token: str | None = None) -> telegram.Bot:
    return telegram.Bot(token or fake.token, base_url=f"{fake.url}/bot", base_file_url=f"{fake.url}/file/bot")


@pytest.fixture
async def tg():
    async with FakeTelegram(limits=FloodLimits.off()) as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram):
    async with make_bot(tg) as client:
        yield client


def last_error(fake: FakeTelegram) -> str:
    return fake.calls[-1].response["description"]


def seconds(value: int | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


# ---------------------------------------------------------------- messages


async def test_get_me_names_the_bot(tg: FakeTelegram, bot: telegram.Bot) -> None:
    assert (bot.id, bot.username) == (123456, "dify_test_bot")
    assert tg.calls_to("getMe")[0].response["result"]["is_bot"] is True


async def test_send_and_edit_message(tg: FakeTelegram, bot: telegram.Bot) -> None:
    first = await bot.send_message(PRIVATE, "Hello")
    second = await bot.send_message(GROUP, "Hi group", message_thread_id=7)
    edited = await bot.edit_message_text("Hello world", chat_id=PRIVATE, message_id=first.message_id)
    assert (first.message_id, first.chat.type, first.from_user.id) == (1, "private", 123456)
    assert (second.message_id, second.chat.type, second.message_thread_id) == (1, "supergroup", 7)
    assert edited.text == "Hello world" and edited.edit_date is not None
    assert tg.final_text(PRIVATE) == ["Hello world"] and tg.final_text(GROUP, 7) == ["Hi group"]
    assert tg.chats[PRIVATE][0].edits == ["Hello world"]
    assert tg.calls_to("sendMessage")[1].params == {"chat_id": GROUP, "text": "Hi group", "message_thread_id": 7}


async def test_edit_with_the_same_content_is_not_modified(tg: FakeTelegram, bot: telegram.Bot) -> None:
    sent = await bot.send_message(PRIVATE, "<b>same</b>", parse_mode="HTML")
    with pytest.raises(telegram.error.BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_text("*same*", chat_id=PRIVATE, message_id=sent.message_id, parse_mode="MarkdownV2")
    assert last_error(tg).startswith("Bad Request: message is not modified: specified new message content")
    await bot.edit_message_text("same", chat_id=PRIVATE, message_id=sent.message_id)  # entities differ: fine


async def test_delete_message_and_get_chat(tg: FakeTelegram, bot: telegram.Bot) -> None:
    sent = await bot.send_message(GROUP, "to be removed")
    assert await bot.delete_message(GROUP, sent.message_id) is True
    assert tg.final_text(GROUP) == [] and (await bot.get_chat(GROUP)).type == "supergroup"
    with pytest.raises(telegram.error.BadRequest):
        await bot.delete_message(GROUP, sent.message_id)
    assert last_error(tg) == "Bad Request: message to delete not found"


async def test_edit_of_an_unknown_message(tg: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(telegram.error.BadRequest):
        await bot.edit_message_text("x", chat_id=PRIVATE, message_id=99)
    assert last_error(tg) == "Bad Request: message to edit not found"


async def test_html_becomes_text_and_entities(bot: telegram.Bot) -> None:
    html = ('<b>bold</b> &lt;tag&gt; <a href="https://example.org">link</a>\n'
            '<pre><code class="language-python">x = 1</code></pre> <blockquote expandable>q</blockquote>')
    msg = await bot.send_message(PRIVATE, html, parse_mode="HTML")
    assert msg.text == "bold <tag> link\nx = 1 q"
    got = [(e.type, e.offset, e.length, e.url or e.language) for e in msg.entities]
    assert got == [("bold", 0, 4, None), ("text_link", 11, 4, "https://example.org"),
                   ("pre", 16, 5, "python"), ("expandable_blockquote", 22, 1, None)]


@pytest.mark.parametrize(("html", "reason"), [
    ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
    ("if a < b", 'Unsupported start tag "" at byte offset 5'),
    ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
    ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
    ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ("x</b>", "Unexpected end tag at byte offset 1"),
])
async def test_bad_html_is_refused(tg: FakeTelegram, bot: telegram.Bot, html: str, reason: str) -> None:
    with pytest.raises(telegram.error.BadRequest, match="(?i)can't parse entities"):
        await bot.send_message(PRIVATE, html, parse_mode="HTML")
    assert last_error(tg) == f"Bad Request: can't parse entities: {reason}"


@pytest.mark.parametrize(("text", "reason"), [
    ("Done.", "Character '.' is reserved and must be escaped with the preceding '\\'"),
    ("*bold", "Can't find end of Bold entity at byte offset 0"),
    ("ok _it*", "Can't find end of Bold entity at byte offset 6"),
    ("[a](https://x.org", "Can't find end of a URL at byte offset 4"),
])
async def test_bad_markdown_v2_is_refused(tg: FakeTelegram, bot: telegram.Bot, text: str, reason: str) -> None:
    with pytest.raises(telegram.error.BadRequest):
        await bot.send_message(PRIVATE, text, parse_mode="MarkdownV2")
    assert last_error(tg) == f"Bad Request: can't parse entities: {reason}"


async def test_markdown_v2_and_legacy_markdown(tg: FakeTelegram, bot: telegram.Bot) -> None:
    msg = await bot.send_message(PRIVATE, "*b _i_* \\. ||s||\n>quote", parse_mode="MarkdownV2")
    assert msg.text == "b i . s\nquote"
    assert [(e.type, e.offset, e.length) for e in msg.entities] == [
        ("bold", 0, 3), ("italic", 2, 1), ("spoiler", 6, 1), ("blockquote", 8, 5)]
    with pytest.raises(telegram.error.BadRequest):
        await bot.send_message(PRIVATE, "a *b", parse_mode="Markdown")
    assert last_error(tg) == "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 2"


async def test_entities_are_checked_against_utf16_text(tg: FakeTelegram, bot: telegram.Bot) -> None:
    ok = await bot.send_message(PRIVATE, "😀 ab", entities=[telegram.MessageEntity("bold", 3, 2)])
    assert ok.entities[0].offset == 3 and ok.parse_entity(ok.entities[0]) == "ab"
    cases = [
        ([telegram.MessageEntity("bold", 3, 40)],
         "Bad Request: entity beginning at UTF-16 offset 3 ends after the end of the text at UTF-16 offset 43"),
        ([telegram.MessageEntity("bold", 9, 1)],
         "Bad Request: entity begins after the end of the text at UTF-16 offset 9"),
        ([telegram.MessageEntity("bold", 1, 1)],
         "Bad Request: entity begins in a middle of a UTF-16 symbol at byte offset 4"),
        ([telegram.MessageEntity("sparkle", 0, 1)],
         "Bad Request: can't parse MessageEntity: Unsupported type specified"),
    ]
    for entities, description in cases:
        with pytest.raises(telegram.error.BadRequest):
            await bot.send_message(PRIVATE, "😀 ab", entities=entities)
        assert last_error(tg) == description


async def test_text_is_trimmed_and_limited(tg: FakeTelegram, bot: telegram.Bot) -> None:
    msg = await bot.send_message(PRIVATE, "\n  hi  \n")
    assert msg.text == "hi"
    with pytest.raises(telegram.error.BadRequest):
        await bot.edit_message_text("hi ", chat_id=PRIVATE, message_id=msg.message_id)
    expectations = [("", "Bad Request: message text is empty"), (" \n ", "Bad Request: text must be non-empty"),
                    ("x" * 4097, "Bad Request: message is too long")]
    for text, description in expectations:
        with pytest.raises(telegram.error.BadRequest):
            await bot.send_message(PRIVATE, text)
        assert last_error(tg) == description
    await bot.send_message(PRIVATE, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")  # counted after parsing
    with pytest.raises(telegram.error.BadRequest):
        await bot.edit_message_text("y" * 4097, chat_id=PRIVATE, message_id=msg.message_id)
    assert last_error(tg) == "Bad Request: MESSAGE_TOO_LONG"


async def test_reply_to_a_pushed_user_message(tg: FakeTelegram, bot: telegram.Bot) -> None:
    update = tu.group_message("question", chat_id=GROUP)
    tg.push_update(update)
    user_message_id = update["message"]["message_id"]
    sent = await bot.send_message(GROUP, "answer", reply_parameters=telegram.ReplyParameters(user_message_id))
    assert sent.reply_to_message.text == "question" and sent.message_id > user_message_id
    assert sent.chat.title == tu.GROUP_TITLE and tg.chats[GROUP][0].reply_to_message_id == user_message_id


# ---------------------------------------------------------------- drafts, actions, commands


async def test_drafts_work_in_private_chats_only(tg: FakeTelegram, bot: telegram.Bot) -> None:
    assert await bot.send_message_draft(PRIVATE, 5, "partial <b>answer", parse_mode=None) is True
    assert await bot.send_message_draft(PRIVATE, 5) is True  # empty text: "Thinking..." placeholder
    assert [d["text"] for d in tg.drafts[PRIVATE]] == ["partial <b>answer", ""]
    with pytest.raises(telegram.error.BadRequest):
        await bot.send_message_draft(GROUP, 5, "partial")
    assert last_error(tg) == "Bad Request: TEXTDRAFT_PEER_INVALID"
    with pytest.raises(telegram.error.BadRequest):
        await bot.send_message_draft(PRIVATE, 0, "partial")
    assert GROUP not in tg.drafts and len(tg.drafts[PRIVATE]) == 2


async def test_drafts_can_be_switched_off() -> None:
    async with FakeTelegram(drafts="Bad Request: method is not available") as fake, make_bot(fake) as client:
        with pytest.raises(telegram.error.BadRequest, match="(?i)method is not available"):
            await client.send_message_draft(PRIVATE, 1, "x")
    async with FakeTelegram(drafts=False) as fake, make_bot(fake) as client:
        with pytest.raises(telegram.error.TelegramError):
            await client.send_message_draft(PRIVATE, 1, "x")
        assert fake.calls[-1].status == 404


async def test_chat_actions_and_commands(tg: FakeTelegram, bot: telegram.Bot) -> None:
    await bot.send_chat_action(GROUP, "typing", message_thread_id=3)
    scope = telegram.BotCommandScopeAllGroupChats()
    await bot.set_my_commands([("new", "Start over"), ("kb", "Knowledge base")], scope=scope)
    assert [(a["chat_id"], a["action"], a["message_thread_id"]) for a in tg.chat_actions] == [(GROUP, "typing", 3)]
    assert tg.commands[0]["scope"] == {"type": "all_group_chats"}
    assert [c.command for c in await bot.get_my_commands(scope=scope)] == ["new", "kb"]
    assert await bot.get_my_commands() == ()
    with pytest.raises(telegram.error.BadRequest):
        await bot.set_my_commands([("New", "bad")])
    assert last_error(tg) == "Bad Request: BOT_COMMAND_INVALID"


# ---------------------------------------------------------------- flood control


async def test_per_chat_flood_limit_answers_retry_after() -> None:
    limits = FloodLimits(per_chat=(1, 1.0), per_chat_burst=3, per_group=(20, 60.0), global_=(30, 1.0))
    async with FakeTelegram(limits=limits) as fake, make_bot(fake) as client:
        sent = [await client.send_message(PRIVATE, f"m{i}") for i in range(3)]
        with pytest.raises(telegram.error.RetryAfter) as caught:
            await client.edit_message_text("edited", chat_id=PRIVATE, message_id=sent[0].message_id)
        assert seconds(caught.value.retry_after) == 1
        assert fake.calls[-1].response == {"ok": False, "error_code": 429, "description": "Too Many Requests: "
                                           "retry after 1", "parameters": {"retry_after": 1}}
        await client.send_message(PRIVATE + 1, "other chats have their own budget")
        assert fake.ratelimited == 1 and fake.final_text(PRIVATE) == ["m0", "m1", "m2"]


async def test_group_and_draft_budgets() -> None:
    limits = FloodLimits(per_chat=(100, 1.0), per_chat_burst=100, per_group=(2, 60.0), drafts=(2, 10.0))
    async with FakeTelegram(limits=limits) as fake, make_bot(fake) as client:
        for _ in range(2):
            await client.send_message(GROUP, "x")
            await client.send_message_draft(PRIVATE, 1, "d")
        with pytest.raises(telegram.error.RetryAfter) as group:
            await client.send_message(GROUP, "x")
        with pytest.raises(telegram.error.RetryAfter) as draft:
            await client.send_message_draft(PRIVATE, 1, "d")
        assert 59 <= seconds(group.value.retry_after) <= 60 and 9 <= seconds(draft.value.retry_after) <= 10
        await client.send_message(PRIVATE, "drafts do not spend the message budget")


def test_flood_buckets_refill_with_time() -> None:
    now = [0.0]
    flood = FloodControl(FloodLimits(per_chat=(1, 1.0), per_chat_burst=2, global_=(3, 1.0)), clock=lambda: now[0])
    assert [flood.message(1), flood.message(1), flood.message(1)] == [None, None, 1]
    now[0] = 1.0  # chat 1 got one token back; the global window emptied
    assert [flood.message(1), flood.message(2), flood.message(3)] == [None, None, None]
    assert flood.message(4) == 1  # global: 3 within the last second
    now[0] = 2.5
    assert flood.message(4) is None


# ---------------------------------------------------------------- updates and webhooks


async def test_long_poll_returns_a_pushed_update(tg: FakeTelegram, bot: telegram.Bot) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=10, allowed_updates=["message"]))
    await tg.wait_for(lambda f: f.polls_waiting == 1)
    tg.push_update(tu.private_message("hello", user_id=PRIVATE))
    updates = await poll
    assert [u.message.text for u in updates] == ["hello"] and time.monotonic() - started < 5
    assert tg.allowed_updates == ["message"]
    again = await bot.get_updates(timeout=0)  # not confirmed yet: delivered again
    assert [u.update_id for u in again] == [updates[0].update_id]
    assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == ()


async def test_a_second_poller_ends_the_first_with_conflict(tg: FakeTelegram, bot: telegram.Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await tg.wait_for(lambda f: f.polls_waiting == 1)
    async with make_bot(tg) as second_instance:  # a Bot polls over one connection: use another
        assert await second_instance.get_updates(timeout=0) == ()
    with pytest.raises(telegram.error.Conflict, match="(?i)terminated by other getupdates"):
        await first


async def test_webhook_blocks_get_updates(tg: FakeTelegram, bot: telegram.Bot) -> None:
    await bot.set_webhook("https://bridge.example/telegram/webhook", secret_token="s3cret_-X",
                          allowed_updates=["message"], drop_pending_updates=True)
    assert tg.webhook["url"] == "https://bridge.example/telegram/webhook" and tg.webhook["secret_token"] == "s3cret_-X"
    assert (await bot.get_webhook_info()).url == "https://bridge.example/telegram/webhook"
    with pytest.raises(telegram.error.Conflict):
        await bot.get_updates()
    assert last_error(tg) == ("Conflict: can't use getUpdates method while webhook is active; "
                              "use deleteWebhook to delete the webhook first")
    with pytest.raises(telegram.error.BadRequest):
        await bot.set_webhook("https://bridge.example/hook", secret_token="not allowed!")
    assert last_error(tg) == "Bad Request: secret token contains unallowed characters"
    await bot.delete_webhook()
    assert tg.webhook is None and await bot.get_updates(timeout=0) == ()


async def test_pushed_updates_are_posted_to_the_webhook(tg: FakeTelegram, bot: telegram.Bot) -> None:
    received: list[tuple[str | None, dict]] = []
    answers = [500, 200]

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="abc")
        update = tu.private_message("via webhook")
        tg.push_update(update)
        await tg.wait_for(lambda f: any(d["status"] == 200 for d in f.webhook_deliveries))
        assert [d["status"] for d in tg.webhook_deliveries] == [500, 200]
        assert received[-1] == ("abc", update)
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 0 and "500" in info.last_error_message
    finally:
        await runner.cleanup()


async def test_application_polls_and_replies(tg: FakeTelegram) -> None:
    async def start(update: telegram.Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(f"hi {update.effective_user.first_name}")

    app = (ApplicationBuilder().token(tg.token).base_url(f"{tg.url}/bot")
           .base_file_url(f"{tg.url}/file/bot").build())
    app.add_handler(CommandHandler("start", start))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=5)
        text, entities = tu.command("/start")
        tg.push_update(tu.private_message(text, user_id=PRIVATE, first_name="Ann", entities=entities))
        await tg.wait_for(lambda f: f.final_text(PRIVATE) == ["hi Ann"])
        await app.updater.stop()
        await app.stop()
    assert [c.method for c in tg.calls[:2]] == ["getMe", "deleteWebhook"]  # PTB's polling start-up


async def test_wait_for_reports_a_timeout(tg: FakeTelegram) -> None:
    with pytest.raises(AssertionError, match="condition not met"):
        await tg.wait_for(lambda f: bool(f.chats), timeout=0.05)


# ---------------------------------------------------------------- files, tokens, methods


async def test_get_file_and_download(tg: FakeTelegram, bot: telegram.Bot) -> None:
    file_id = tg.add_file(b"notes body", file_path="documents/notes.txt")
    tg_file = await bot.get_file(file_id)
    assert (tg_file.file_size, await tg_file.download_as_bytearray()) == (10, bytearray(b"notes body"))
    assert tg.file_downloads == ["documents/notes.txt"]
    big = tg.add_file(b"", file_size=25 * 1024 * 1024)
    for file_id, description in [(big, "Bad Request: file is too big"), ("nope", "Bad Request: invalid file_id")]:
        with pytest.raises(telegram.error.BadRequest):
            await bot.get_file(file_id)
        assert last_error(tg) == description


async def test_wrong_token_and_unknown_method(tg: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(telegram.error.InvalidToken):
        await make_bot(tg, token="654321:wrong").get_me()
    assert tg.calls[-1].response == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    with pytest.raises(telegram.error.EndPointNotFound):
        await bot.do_api_request("sendHologram", api_kwargs={"chat_id": PRIVATE})
    assert tg.calls[-1].status == 404


async def test_raw_wire_formats(tg: FakeTelegram) -> None:
    """JSON bodies, query strings and any-case method names work like on api.telegram.org."""
    base = f"{tg.url}/bot{tg.token}"
    entities = [{"type": "italic", "offset": 0, "length": 2}]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/SENDMESSAGE", json={"chat_id": "42", "text": "hi", "entities": entities}) as r:
            body = await r.json()
        async with http.get(f"{base}/getMe") as r:
            me = await r.json()
        async with http.get(f"{tg.url}/file/bot{tg.token}/documents/missing.txt") as r:
            missing = r.status
    assert body["ok"] and body["result"]["entities"] == entities and body["result"]["chat"]["id"] == 42
    assert me["result"]["username"] == "dify_test_bot" and missing == 404
    assert tg.calls[0].method == "sendMessage"


# ---------------------------------------------------------------- factories


def test_update_factories_follow_the_bot_api() -> None:
    text, entities = tu.mention("🙂 hey", "dify_test_bot", "what is RAG?")
    assert text == "🙂 hey @dify_test_bot what is RAG?"
    assert entities == [{"type": "mention", "offset": 7, "length": 14}]
    first, second = tu.private_message("a"), tu.group_message("b", message_thread_id=9, is_topic_message=True)
    assert second["update_id"] > first["update_id"]
    topic = telegram.Update.de_json(second, None).message
    assert topic.is_topic_message and topic.reply_to_message.forum_topic_created is not None
    doc = telegram.Update.de_json(tu.private_message("", document=tu.document("F1"), caption="read"), None)
    assert (doc.message.document.file_name, doc.message.caption) == ("notes.txt", "read")
    assert tu.command("/kb@dify_test_bot status")[1] == [{"type": "bot_command", "offset": 0, "length": 17}]
    reply = telegram.Message.de_json(tu.bot_message(GROUP, 3, "earlier answer"), None)
    assert reply.from_user.is_bot and reply.chat.type == "supergroup"
