"""`/kb` in Telegram end to end: updates through the webhook of a running bridge, files from FakeTelegram's
getFile + file download, documents and indexing in FakeDify, status messages in FakeTelegram."""

from __future__ import annotations

from adapters.telegram.kb import KB_ADD_HOW, KB_HELP, KB_TG_TOO_BIG
from adapters.telegram.render import render_parts
from bots import messages
from tests.adapters.telegram.kb_fixtures import kb_bridge  # noqa: F401 - fixture
from tests.helpers import telegram_updates as tu

from .conftest import GROUP, PRIVATE

GUIDE = b"Dify Bridge adds documents from chat.\n\nIt reports indexing progress.\n"
MB = 1 << 20


def shown(markdown: str) -> str:
    """What Telegram shows for a Markdown line the bridge sends (entities, not markup)."""
    return render_parts(markdown)[0].text


def kb_dm(text: str, **kw) -> dict:
    body, entities = tu.command(text)
    return tu.private_message(body, entities=entities, **kw)


def kb_group(text: str, **kw) -> dict:
    body, entities = tu.command(text)
    return tu.group_message(body, entities=entities, **kw)


def tg_document(tb, content: bytes, name: str, *, mime: str = "text/plain", size: int | None = None,
                real_size: int | None = None) -> dict:
    """A Document the fake serves (`real_size`: what getFile believes; `size`: what the update announces)."""
    file_id = tb.tg.add_file(content, file_path=f"documents/{name}", file_size=real_size)
    return tu.document(file_id, file_name=name, mime_type=mime, file_size=len(content) if size is None else size)


async def test_document_with_the_caption_kb_add_is_indexed_in_one_status_message(kb_bridge):
    tb = await kb_bridge()
    update = kb_dm("/kb add", document=tg_document(tb, GUIDE * 20, "guide.txt"))
    tb.tg.push_update(update)

    assert await tb.finished(PRIVATE) == ["✅ Indexed as guide.txt (3 segments)"]
    [status] = tb.statuses(PRIVATE)
    assert status.history[0]["text"] == "📥 guide.txt received…", "the status message is sent at once"
    assert status.reply_to_message_id == update["message"]["message_id"], "it replies to the user's message"
    assert len(tb.tg.calls_to("sendMessage")) == 1, "later steps edit the same message"
    [doc] = tb.dify.documents(tb.dataset_id)
    assert doc.name == "guide.txt" and doc.file.content == GUIDE * 20
    assert tb.tg.file_downloads == ["documents/guide.txt"] and len(tb.tg.calls_to("getFile")) == 1
    assert tb.chat_bodies() == [] and tb.temp_files() == []
    [record] = await tb.bridge.kb.recent_uploads("telegram", str(PRIVATE))
    assert record.state == "completed" and record.location["message_id"] == status.message_id


async def test_kb_add_as_a_reply_to_a_document_and_in_a_forum_topic(kb_bridge):
    tb = await kb_bridge()
    shared = tu.group_message("", user_id=2002, first_name="Bob",
                              document=tg_document(tb, b"week,goal\n1,ship\n", "plan.csv", mime="text/csv"))
    request = kb_group("/kb add", reply_to=shared["message"])  # Ann adds the file Bob shared
    tb.tg.push_update(request)
    assert await tb.finished(GROUP) == ["✅ Indexed as plan.csv (1 segment)"]
    [status] = tb.statuses(GROUP)
    assert status.reply_to_message_id == request["message"]["message_id"]

    in_topic = kb_group("/kb add", message_thread_id=7, is_topic_message=True,
                        document=tg_document(tb, b"# FAQ\n\nAsk in the topic.\n", "faq.md", mime="text/markdown"))
    tb.tg.push_update(in_topic)
    assert await tb.finished(GROUP, 2) == ["✅ Indexed as plan.csv (1 segment)", "✅ Indexed as faq.md (1 segment)"]
    assert tb.statuses(GROUP)[1].message_thread_id == 7, "the status stays in the topic"
    assert sorted(d.name for d in tb.dify.documents(tb.dataset_id)) == ["faq.md", "plan.csv"]
    assert tb.chat_bodies() == [] and tb.temp_files() == []


async def test_kb_add_text_titles_from_first_line_or_title_prefix(kb_bridge):
    tb = await kb_bridge()
    tb.tg.push_update(kb_dm("/kb add Meeting notes\nWe meet on Fridays."))
    assert await tb.finished(PRIVATE) == ["✅ Indexed as Meeting notes (1 segment)"]
    tb.tg.push_update(kb_dm("/kb add Runbook: restart with `systemctl restart dify-bridge` & check <logs>"))
    texts = await tb.finished(PRIVATE, 2)
    assert texts[1] == "✅ Indexed as Runbook (1 segment)"
    docs = {d.name: d.text for d in tb.dify.documents(tb.dataset_id)}
    assert docs == {"Meeting notes": "Meeting notes\nWe meet on Fridays.",
                    "Runbook": "restart with `systemctl restart dify-bridge` & check <logs>"}
    assert tb.tg.calls_to("getFile") == [] and tb.chat_bodies() == []


async def test_bare_kb_add_explains_and_kb_help(kb_bridge):
    tb = await kb_bridge()
    tb.tg.push_update(kb_dm("/kb add"))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE))
    assert tb.sent(PRIVATE) == [shown(KB_ADD_HOW)]
    assert all(way in KB_ADD_HOW for way in ("caption /kb add", "reply /kb add", "/kb add Title: text"))
    tb.tg.push_update(kb_dm("/kb"))
    await tb.tg.wait_for(lambda f: len(f.final_text(PRIVATE)) == 2)
    assert tb.sent(PRIVATE)[1] == shown(KB_HELP)
    assert tb.creates() == [] and tb.chat_bodies() == []


async def test_files_over_a_limit_are_refused_before_any_download(kb_bridge):
    tb = await kb_bridge(env={"KB_MAX_FILE_MB": "50"})
    huge = tg_document(tb, b"big", "huge.txt", size=25 * MB)  # over the Bot API's 20 MB getFile limit
    tb.tg.push_update(kb_dm("/kb add", document=huge))
    assert await tb.finished(PRIVATE) == [shown(f"❌ `huge.txt`: {KB_TG_TOO_BIG}")]
    assert tb.tg.calls_to("getFile") == [] and tb.tg.file_downloads == []

    sneaky = tg_document(tb, b"small?", "sneaky.txt", size=1000, real_size=25 * MB)  # announced small
    tb.tg.push_update(kb_dm("/kb add", document=sneaky))
    texts = await tb.finished(PRIVATE, 2)
    assert texts[1] == shown(f"❌ `sneaky.txt`: {KB_TG_TOO_BIG}"), "getFile's 'file is too big' explained"
    assert tb.tg.file_downloads == [] and tb.creates() == [] and tb.temp_files() == []

    ours = await kb_bridge()  # KB_MAX_FILE_MB at its default (15 MB): our own limit speaks first
    ours.tg.push_update(kb_dm("/kb add", document=tg_document(ours, b"big", "big.txt", size=16 * MB)))
    assert await ours.finished(PRIVATE) == ["❌ big.txt: too large (16 MB; the knowledge base accepts up to 15 MB)"]
    assert ours.tg.calls_to("getFile") == []


async def test_wrong_extension_is_refused_before_download(kb_bridge):
    tb = await kb_bridge()
    exe = tg_document(tb, b"MZ\x90\x00", "setup.exe", mime="application/octet-stream")
    tb.tg.push_update(kb_dm("/kb add", document=exe))
    allowed = tb.bridge.settings.kb_extensions.replace(",", ", ")
    assert await tb.finished(PRIVATE) == [
        shown(f"❌ `setup.exe`: not a document type the knowledge base accepts ({allowed})")]
    assert tb.tg.calls_to("getFile") == [] and tb.creates() == []


async def test_users_outside_kb_writers_are_told_which_setting_allows_them(kb_bridge):
    tb = await kb_bridge(env={"KB_WRITERS": "telegram:1001"})
    tb.tg.push_update(kb_dm("/kb add", user_id=2002, document=tg_document(tb, GUIDE, "guide.txt")))
    await tb.tg.wait_for(lambda f: f.final_text(2002))
    refusal = messages.KB_NOT_WRITER.format(who="telegram:2002")
    assert tb.sent(2002) == [shown(refusal)] and "KB_WRITERS" in tb.sent(2002)[0]
    assert tb.tg.calls_to("getFile") == [] and tb.creates() == []
    assert await tb.bridge.kb.recent_uploads("telegram", "2002") == []

    nobody = await kb_bridge(env={"KB_WRITERS": ""})
    nobody.tg.push_update(kb_dm("/kb add some text"))
    await nobody.tg.wait_for(lambda f: f.final_text(PRIVATE))
    assert nobody.sent(PRIVATE) == [shown(messages.KB_WRITERS_EMPTY.format(who=f"telegram:{PRIVATE}"))]
    assert nobody.creates() == []


async def test_indexing_error_shows_difys_text(kb_bridge):
    tb = await kb_bridge(dify_options={"version": "0.15"})
    notes = tg_document(tb, b"# Notes\nFAILINDEX here\n", "notes.md", mime="text/markdown")
    tb.tg.push_update(kb_dm("/kb add", document=notes))
    assert await tb.finished(PRIVATE) == [
        "❌ notes.md: Dify could not index it: fake indexing failure: FAILINDEX found in notes.md"]
    assert tb.temp_files() == []


async def test_restart_while_indexing_resumes_and_finishes_the_same_status_message(kb_bridge):
    tb = await kb_bridge(env={"SHUTDOWN_GRACE_SECONDS": "0"})
    tb.dify.indexing_steps = ["parsing", "indexing"]  # stays "indexing" until the test moves it on
    tb.tg.push_update(kb_dm("/kb add", document=tg_document(tb, GUIDE, "manual.txt")))
    await tb.tg.wait_for(lambda f: any(t.startswith("⏳ Indexing manual.txt: indexing") for t in f.final_text(PRIVATE)))
    await tb.stop()  # the upload is cut off while Dify indexes
    [doc] = tb.dify.documents(tb.dataset_id)
    doc.steps = ["indexing", "completed"]

    await tb.start()
    [record] = await tb.adapter.kb.resumed
    assert record.state == "completed"
    [status] = tb.statuses(PRIVATE)
    assert status.text == "✅ Indexed as manual.txt (1 segment)"
    assert status.history[0]["text"] == "📥 manual.txt received…"
    assert len(tb.tg.calls_to("sendMessage")) == 1, "the same message is finished, not a new one"
    assert tb.temp_files() == []


async def test_kb_list_and_status(kb_bridge):
    tb = await kb_bridge(env={"ALLOWED_USERS": "telegram:1001,telegram:2002"})
    tb.tg.push_update(kb_dm("/kb list"))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE))
    assert tb.sent(PRIVATE) == [messages.KB_LIST_EMPTY]
    tb.tg.push_update(kb_dm("/kb add", document=tg_document(tb, GUIDE, "guide.txt")))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE)[1:2] and f.final_text(PRIVATE)[1].startswith("✅"))
    tb.tg.push_update(kb_dm("/kb add", document=tg_document(tb, b"FAILINDEX", "broken.md")))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE)[2:3] and f.final_text(PRIVATE)[2].startswith("❌"))

    tb.tg.push_update(kb_dm("/kb list", user_id=2002))  # anyone allowed to chat
    await tb.tg.wait_for(lambda f: f.final_text(2002))
    listing = tb.sent(2002)[0]
    assert listing.splitlines()[0] == "Knowledge base (2 documents):"
    assert "✅ guide.txt (available)" in listing and "❌ broken.md (error)" in listing
    assert tb.statuses(2002)[0].entities[0]["type"] == "bold", "the heading is bold"
    tb.tg.push_update(kb_dm("/kb status"))
    await tb.tg.wait_for(lambda f: len(f.final_text(PRIVATE)) == 4)
    mine = tb.sent(PRIVATE)[3].splitlines()
    assert mine[0] == shown(messages.KB_STATUS_HEAD) and len(mine) == 3
    assert mine[1].startswith("❌ broken.md: Dify could not index it")
    assert mine[2].startswith("✅ Indexed as guide.txt")
    tb.tg.push_update(kb_dm("/kb status", user_id=2002))
    await tb.tg.wait_for(lambda f: len(f.final_text(2002)) == 2)
    assert tb.sent(2002)[1] == messages.KB_STATUS_EMPTY
    tb.tg.push_update(kb_dm("/kb list", user_id=3003))
    await tb.tg.wait_for(lambda f: f.final_text(3003))
    assert tb.sent(3003) == [messages.PRIVATE_BOT]
