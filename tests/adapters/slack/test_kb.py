"""`/kb` in Slack end to end: signed events, slash commands and shortcuts to a running bridge, files from
FakeSlack's private file host, documents and indexing in FakeDify, status messages in FakeSlack."""

from __future__ import annotations

import json

import aiohttp
import pytest

from adapters.slack.kb import KB_ADD_HOW, KB_HELP
from adapters.slack.kb_files import SlackFiles, SlackHosts
from adapters.slack.kb_status import slack_text
from bots import messages
from bots.kb import KbRefused
from tests.adapters.slack.kb_fixtures import ForeignHost, foreign_host, kb_bridge  # noqa: F401 - fixtures
from tests.helpers.slack_events import app_mention, channel_message, dm_message, new_ts

GUIDE = b"Dify Bridge adds documents from chat.\n\nIt reports indexing progress.\n"


def _ack_text(body: str) -> str:
    return json.loads(body)["text"] if body.startswith("{") else body


async def test_file_sent_in_a_dm_with_kb_add_is_indexed_in_one_status_message(kb_bridge):
    sb = await kb_bridge()
    guide = sb.slack.add_file("guide.txt", GUIDE * 20, "text/plain", "text")
    await sb.post(dm_message("kb add", channel="D1", files=[guide]))

    assert await sb.finished("D1", 1) == ["✅ Indexed as `guide.txt` (3 segments)"]
    [status] = sb.statuses("D1")
    assert status.history[0] == "📥 `guide.txt` received…", "the status message is posted at once"
    assert len(sb.slack.calls_to("chat.postMessage")) == 1, "later steps edit the same message"
    [doc] = sb.dify.documents(sb.dataset_id)
    assert doc.name == "guide.txt" and doc.file.content == GUIDE * 20
    [(path, headers)] = sb.slack.file_downloads
    assert path.endswith("/download/guide.txt") and headers["Authorization"] == f"Bearer {sb.slack.bot_token}"
    assert sb.chat_bodies() == [] and sb.temp_files() == []
    [record] = await sb.bridge.kb.recent_uploads("slack", "U1")
    assert record.state == "completed" and record.location["ts"] == status.ts


async def test_mention_with_a_file_in_a_channel_thread(kb_bridge):
    sb = await kb_bridge()
    root = new_ts()
    notes = sb.slack.add_file("notes.md", b"# Notes\n\nShip on Friday.\n", "text/markdown", "markdown")
    mention = app_mention("/kb add", channel="C1", thread_ts=root, files=[notes])
    await sb.post(mention)
    twin = channel_message(mention["text"], channel="C1", ts=mention["ts"], thread_ts=root, files=[notes])
    await sb.post(twin)  # the same message through message.channels: added once

    assert await sb.finished("C1", 1, thread_ts=root) == ["✅ Indexed as `notes.md` (1 segment)"]
    await sb.adapter.wait_handled(2)
    assert len(sb.dify.documents(sb.dataset_id)) == 1 and len(sb.slack.file_downloads) == 1
    assert sb.statuses("C1") == [], "nothing at the channel's top level"


async def test_message_shortcut_adds_a_messages_files_or_its_text(kb_bridge):
    sb = await kb_bridge()
    sheet = sb.slack.add_file("plan.csv", b"week,goal\n1,ship\n", "text/csv", "csv")
    shared = channel_message("our plan", channel="C1", files=[sheet])  # said to the team, not to the bot
    status, _ = await sb.shortcut(shared, channel_id="C1")
    assert status == 200
    assert await sb.finished("C1", 1, thread_ts=shared["ts"]) == ["✅ Indexed as `plan.csv` (1 segment)"]

    text = channel_message("Escalations: call the on-call phone first.\nThen open an incident.", channel="C1")
    await sb.shortcut(text, channel_id="C1", rid="text")
    assert await sb.finished("C1", 1, thread_ts=text["ts"]) == ["✅ Indexed as `Escalations` (1 segment)"]
    doc = next(d for d in sb.dify.documents(sb.dataset_id) if d.name == "Escalations")
    assert doc.text == "call the on-call phone first.\nThen open an incident."

    await sb.shortcut({"type": "message", "user": "U1", "ts": new_ts(), "text": ""}, rid="empty")
    await sb.slack.wait_for(lambda f: f.responses.get("empty"))
    assert sb.slack.responses["empty"][0]["response_type"] == "ephemeral"
    assert "no files or text" in sb.slack.responses["empty"][0]["text"]
    assert "shortcut" not in sb.slack.responses and "text" not in sb.slack.responses, "no private noise on success"


async def test_where_the_bot_cannot_post_the_result_comes_privately(kb_bridge):
    sb = await kb_bridge()
    note = channel_message("Parking: level -2 is for visitors.", channel="")
    await sb.shortcut(note, channel_id="", rid="private")  # Slack answers channel_not_found to postMessage
    await sb.slack.wait_for(lambda f: f.responses.get("private"))
    assert sb.slack.responses["private"] == [{"text": "✅ Indexed as `Parking` (1 segment)",
                                              "response_type": "ephemeral", "replace_original": False}]
    assert [c.error for c in sb.slack.calls_to("chat.postMessage")] == ["channel_not_found"]
    [record] = await sb.bridge.kb.recent_uploads("slack", "U1")
    assert record.state == "completed" and record.location.get("private") is True


async def test_slash_kb_add_text_titles_from_first_line_or_title_prefix(kb_bridge):
    sb = await kb_bridge()
    status, body = await sb.command("/kb", "add Meeting notes\nWe meet on Fridays.", channel_id="C1",
                                    response_url=sb.slack.response_url("one"))
    assert status == 200 and body == "", "acked at once; the status message shows the rest"
    assert await sb.finished("C1", 1) == ["✅ Indexed as `Meeting notes` (1 segment)"]

    await sb.command("/kb", "add Runbook: restart with `systemctl restart dify-bridge` &amp; check &lt;logs&gt;",
                     channel_id="C1", response_url=sb.slack.response_url("two"))
    texts = await sb.finished("C1", 2)
    assert texts[1] == "✅ Indexed as `Runbook` (1 segment)"
    docs = {d.name: d.text for d in sb.dify.documents(sb.dataset_id)}
    assert docs == {"Meeting notes": "Meeting notes\nWe meet on Fridays.",
                    "Runbook": "restart with `systemctl restart dify-bridge` & check <logs>"}
    assert sb.slack.file_downloads == [] and not sb.slack.responses


async def test_kb_add_with_neither_files_nor_text_explains_how(kb_bridge):
    sb = await kb_bridge()
    status, body = await sb.command("/kb", "add", channel_id="C1")
    assert status == 200 and json.loads(body) == {"text": slack_text(KB_ADD_HOW), "response_type": "ephemeral"}
    assert all(way in KB_ADD_HOW for way in ("`kb add`", "*Add to knowledge base*", "`/kb add Title: text`"))
    await sb.post(dm_message("kb add", channel="D1"))
    await sb.slack.wait_for(lambda f: f.messages.get("D1"))
    assert sb.slack.final_text(sb.slack.messages["D1"][0]) == slack_text(KB_ADD_HOW)
    await sb.post(dm_message("kb add The wifi password rotates monthly.", channel="D1"))  # a DM may add text too
    await sb.slack.wait_for(lambda f: len(f.messages["D1"]) == 2 and f.final_text(f.messages["D1"][1])[0] == "✅")
    assert sb.slack.final_text(sb.slack.messages["D1"][1]) == (
        "✅ Indexed as `The wifi password rotates monthly.` (1 segment)")
    assert sb.dify.documents(sb.dataset_id) and sb.chat_bodies() == [] and sb.creates()


async def test_several_files_in_one_message_one_result_each(kb_bridge):
    sb = await kb_bridge(env={"KB_MAX_FILE_MB": "0.01"})  # 10 KB
    files = [
        sb.slack.add_file("guide.txt", GUIDE, "text/plain", "text"),
        sb.slack.add_file("setup.exe", b"MZ\x90\x00", "application/octet-stream", "binary"),
        sb.slack.add_file("report.pdf", b"not a pdf at all", "application/pdf", "pdf"),
        sb.slack.add_file("empty.txt", b"", "text/plain", "text"),
        sb.slack.add_file("big.txt", b"a" * 20_000, "text/plain", "text"),
        {**sb.slack.add_file("x.txt", b"Path tricks are cleaned.\n", "text/plain", "text"), "name": "../../x.txt"},
        {"id": sb.slack.add_file("faq.md", b"# FAQ\n", "text/markdown", "markdown")["id"],
         "file_access": "check_file_info"},  # a stub: the bridge asks files.info for the rest
    ]
    await sb.post(dm_message("kb add", channel="D1", files=files))

    texts = await sb.finished("D1", 7)
    allowed = sb.bridge.settings.kb_extensions.replace(",", ", ")
    assert texts == [
        "✅ Indexed as `guide.txt` (1 segment)",
        f"❌ `setup.exe`: not a document type the knowledge base accepts ({allowed})",
        "❌ `report.pdf`: not a real PDF file (its content does not match its name)",
        "❌ `empty.txt`: the file is empty",
        "❌ `big.txt`: too large (20 KB; the knowledge base accepts up to 10 KB)",
        "✅ Indexed as `x.txt` (1 segment)",
        "✅ Indexed as `faq.md` (1 segment)",
    ]
    downloaded = [path.rsplit("/", 1)[-1] for path, _ in sb.slack.file_downloads]
    assert downloaded == ["guide.txt", "report.pdf", "x.txt", "faq.md"], "refused before download: exe, empty, big"
    assert [c.files["file"][0] for c in sb.creates()] == ["guide.txt", "x.txt", "faq.md"], "one by one, in order"
    assert sb.temp_files() == []


async def test_the_token_never_goes_to_a_host_that_is_not_slack(kb_bridge, foreign_host):
    sb = await kb_bridge()
    foreign_host.files["/x/leak.txt"] = b"bait"
    real = sb.slack.add_file("leak.txt", b"bait", "text/plain", "text")
    evil = {**real, "url_private_download": f"{foreign_host.url}/x/leak.txt",
            "url_private": f"{foreign_host.url}/x/leak.txt"}
    await sb.post(dm_message("kb add", channel="D1", files=[evil]))
    host = foreign_host.url.removeprefix("http://")
    assert await sb.finished("D1", 1) == [
        f"❌ `leak.txt`: the file is not hosted by Slack ({host}), so the bridge did not download it"]
    assert foreign_host.requests == [] and sb.slack.file_downloads == [] and sb.creates() == []


def test_slack_hosts():
    hosts = SlackHosts("http://127.0.0.1:9000/api/")
    assert hosts.allows("https://files.slack.com/files-pri/T1-F1/download/a.txt")
    assert hosts.allows("https://slack.com/x") and hosts.allows("http://127.0.0.1:9000/files-pri/a")
    for url in ("http://files.slack.com/a", "https://slack.com.evil.example/a", "https://evilslack.com/a",
                "https://files.slack.com:8443/a", "http://127.0.0.1:9001/a", "https://127.0.0.1:9000/a",
                "https://user:pw@files.slack.com/a", "ftp://slack.com/a"):
        assert not hosts.allows(url), url
    gov = SlackHosts("https://slack-gov.com/api/")
    assert gov.allows("https://files.slack-gov.com/a") and not gov.allows("https://slack-gov.com.evil.example/a")


async def test_redirects_keep_the_token_only_on_slack_hosts(foreign_host):
    slack_like = await ForeignHost().start()  # stands for SLACK_API_URL's host
    try:
        slack_like.redirects["/files-pri/T-F1/download/a.txt"] = f"{slack_like.url}/moved/a.txt"
        slack_like.redirects["/moved/a.txt"] = f"{foreign_host.url}/cdn/a.txt"
        foreign_host.files["/cdn/a.txt"] = b"from the CDN"
        slack_like.html.add("/files-pri/T-F2/download/b.txt")
        async with aiohttp.ClientSession() as session:
            hosts = SlackHosts(f"{slack_like.url}/api/")
            files = SlackFiles("xoxb-secret", hosts, None, lambda: session)  # type: ignore[arg-type]
            url = f"{slack_like.url}/files-pri/T-F1/download/a.txt"
            got = b"".join([chunk async for chunk in files.download(url, "a.txt")])
            with pytest.raises(KbRefused, match="files:read"):
                async for _ in files.download(f"{slack_like.url}/files-pri/T-F2/download/b.txt", "b.txt"):
                    pass
    finally:
        await slack_like.stop()
    assert got == b"from the CDN"
    assert [h.get("Authorization") for _, h in slack_like.requests] == ["Bearer xoxb-secret"] * 3
    assert [(p, "Authorization" in h) for p, h in foreign_host.requests] == [("/cdn/a.txt", False)]


async def test_users_outside_kb_writers_are_told_which_setting_allows_them(kb_bridge):
    sb = await kb_bridge(env={"KB_WRITERS": "slack:U1"})
    guide = sb.slack.add_file("guide.txt", GUIDE, "text/plain", "text", user="U2")
    await sb.post(dm_message("kb add", channel="D2", user="U2", files=[guide]))
    await sb.slack.wait_for(lambda f: f.messages.get("D2"))
    refusal = messages.KB_NOT_WRITER.format(who="slack:U2")
    assert sb.slack.final_text(sb.slack.messages["D2"][0]) == refusal and "KB_WRITERS" in refusal
    _, body = await sb.command("/kb", "add some text", channel_id="C1", user_id="U2")
    assert _ack_text(body) == refusal
    await sb.shortcut(channel_message("x", files=[guide]), user_id="U2", rid="u2")
    await sb.slack.wait_for(lambda f: f.responses.get("u2"))
    assert sb.slack.responses["u2"][0]["text"] == refusal
    assert sb.slack.file_downloads == [] and sb.creates() == []
    assert await sb.bridge.kb.recent_uploads("slack", "U2") == []

    nobody = await kb_bridge(env={"KB_WRITERS": ""})
    _, body = await nobody.command("/kb", "add some text", channel_id="C1", user_id="U1")
    assert _ack_text(body) == messages.KB_WRITERS_EMPTY.format(who="slack:U1")


async def test_unknown_dataset_is_refused_before_download(kb_bridge):
    sb = await kb_bridge(dataset=False)
    guide = sb.slack.add_file("guide.txt", GUIDE, "text/plain", "text")
    await sb.post(dm_message("kb add", channel="D1", files=[guide]))
    [text] = await sb.finished("D1", 1)
    assert text.startswith("❌ `guide.txt`: the knowledge base `00000000-0000-4000-8000-000000000000` does not exist")
    assert "DIFY_DATASET_ID" in text and sb.slack.file_downloads == []
    _, body = await sb.command("/kb", "list", channel_id="C1")
    assert _ack_text(body).startswith("The knowledge base `00000000-0000-4000-8000-000000000000` does not exist")


async def test_indexing_error_shows_difys_text(kb_bridge):
    sb = await kb_bridge(dify_options={"version": "0.15"})
    notes = sb.slack.add_file("notes.md", b"# Notes\nFAILINDEX here\n", "text/markdown", "markdown")
    await sb.post(dm_message("kb add", channel="D1", files=[notes]))
    assert await sb.finished("D1", 1) == [
        "❌ `notes.md`: Dify could not index it: fake indexing failure: FAILINDEX found in notes.md"]
    assert sb.temp_files() == []


async def test_restart_while_indexing_resumes_and_finishes_the_same_status_message(kb_bridge):
    sb = await kb_bridge(env={"SHUTDOWN_GRACE_SECONDS": "0"})
    sb.dify.indexing_steps = ["parsing", "indexing"]  # stays "indexing" until the test moves it on
    manual = sb.slack.add_file("manual.txt", GUIDE, "text/plain", "text")
    await sb.post(dm_message("kb add", channel="D1", files=[manual]))
    await sb.slack.wait_for(lambda f: any(f.final_text(m).startswith("⏳ Indexing `manual.txt`: indexing")
                                          for m in sb.statuses("D1")))
    await sb.stop()  # the upload is cut off while Dify indexes
    [doc] = sb.dify.documents(sb.dataset_id)
    doc.steps = ["indexing", "completed"]

    await sb.start()
    [record] = await sb.adapter.kb.resumed
    assert record.state == "completed"
    [status] = sb.statuses("D1")
    assert sb.slack.final_text(status) == "✅ Indexed as `manual.txt` (1 segment)"
    assert status.history[0] == "📥 `manual.txt` received…"
    assert len(sb.slack.calls_to("chat.postMessage")) == 1, "the same message is finished, not a new one"


async def test_kb_list_status_and_help(kb_bridge):
    sb = await kb_bridge(env={"ALLOWED_USERS": "slack:U1,slack:U2"})
    _, body = await sb.command("/kb", "list", channel_id="C1")
    assert _ack_text(body) == messages.KB_LIST_EMPTY
    guide = sb.slack.add_file("guide.txt", GUIDE, "text/plain", "text")
    broken = sb.slack.add_file("broken.md", b"FAILINDEX", "text/markdown", "markdown")
    await sb.post(dm_message("kb add", channel="D1", files=[guide, broken]))
    await sb.finished("D1", 2)

    _, body = await sb.command("/kb", "list", channel_id="C1", user_id="U2")  # anyone allowed to chat
    listing = _ack_text(body)
    assert listing.splitlines()[0] == "*Knowledge base* (2 documents):"
    assert "✅ `guide.txt` (available)" in listing and "❌ `broken.md` (error)" in listing
    _, body = await sb.command("/kb", "status", channel_id="C1")
    mine = _ack_text(body).splitlines()
    assert mine[0] == messages.KB_STATUS_HEAD and len(mine) == 3
    assert mine[1].startswith("❌ `broken.md`: Dify could not index it")
    assert mine[2].startswith("✅ Indexed as `guide.txt`")
    _, body = await sb.command("/kb", "status", channel_id="C1", user_id="U2")
    assert _ack_text(body) == messages.KB_STATUS_EMPTY
    _, body = await sb.command("/kb", "", channel_id="C1")
    assert _ack_text(body) == slack_text(KB_HELP)
    _, body = await sb.command("/kb", "list", channel_id="C1", user_id="U3")
    assert _ack_text(body) == messages.PRIVATE_BOT
