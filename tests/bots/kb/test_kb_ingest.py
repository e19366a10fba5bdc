"""The ingestion pipeline end to end: FakeDify (both versions) over loopback, a real SQLite file."""

from __future__ import annotations

import asyncio
import json

import pytest

from bots.kb import FileSource, KbRefused, format_documents, format_uploads
from tests.bots.kb.conftest import Status, source

TEXT = b"Dify Bridge adds documents from chat.\n\nIt reports indexing progress.\n"
USER = dict(platform="slack", user_id="U1", scope="C1")


def data_part(harness) -> dict:
    return json.loads(harness.creates()[-1].form["data"])


async def test_file_is_indexed_with_progress_in_order(harness):
    kb = harness.kb()
    src, chunks = source("guide.txt", TEXT * 20)
    status = Status()

    record = await kb.add_file(src, progress=status, **USER)

    assert status.states == ["received", "uploading", "indexing", "completed"]
    stages = [e.stage for e in status.events if e.state == "indexing"]
    assert stages == ["waiting", "parsing", "splitting", "indexing"]  # the fake's sequence, in order, no repeats
    assert status.last.text == "✅ Indexed as `guide.txt` (3 segments)"
    assert record.state == "completed" and record.segments_total == 3 and record.error is None
    assert record.document_id and record.batch and record.location == {"chat": "C1", "message": "m1"}
    assert harness.fake.documents(harness.dataset_id)[0].file.content == TEXT * 20
    assert harness.creates()[0].files["file"][0] == "guide.txt"
    assert chunks.calls == 1 and harness.temp_files() == []


async def test_indexing_error_shows_difys_text(harness):
    src, _ = source("broken.md", b"# Notes\nFAILINDEX here\n")
    status = Status()
    record = await harness.kb().add_file(src, progress=status, **USER)
    assert status.last.text == "❌ `broken.md`: Dify could not index it: fake indexing failure: FAILINDEX found in broken.md"
    assert record.state == "error" and "FAILINDEX found in broken.md" in record.error
    assert harness.temp_files() == []


async def test_unknown_dataset_is_a_clear_error_before_download(harness):
    kb = harness.kb(dataset_id="00000000-0000-0000-0000-000000000000")
    src, chunks = source("guide.txt", TEXT)
    status = Status()
    record = await kb.add_file(src, progress=status, **USER)
    assert record.state == "error"
    assert status.last.text.startswith(
        "❌ `guide.txt`: the knowledge base `00000000-0000-0000-0000-000000000000` does not exist in Dify")
    assert "DIFY_DATASET_ID" in status.last.text
    assert chunks.calls == 0 and harness.creates() == []


async def test_unknown_dataset_for_text(harness):
    kb = harness.kb(dataset_id="00000000-0000-0000-0000-000000000000")
    status = Status()
    record = await kb.add_text(None, "Title: body", progress=status, **USER)
    assert record.state == "error" and "does not exist in Dify" in record.error


async def test_oversize_refused_before_download(harness):
    kb = harness.kb(KB_MAX_FILE_MB="1")
    src, chunks = source("big.pdf", b"%PDF-1.4", size=5 * 1024 * 1024)
    status = Status()
    record = await kb.add_file(src, progress=status, **USER)
    assert status.last.text == "❌ `big.pdf`: too large (5 MB; the knowledge base accepts up to 1 MB)"
    assert record.state == "error" and chunks.calls == 0 and harness.creates() == []


async def test_oversize_stream_is_cut_when_the_size_was_not_announced(harness):
    kb = harness.kb(KB_MAX_FILE_MB="1")
    src, chunks = source("big.txt", b"a" * (3 * 1024 * 1024), size=False)
    record = await kb.add_file(src, progress=Status(), **USER)
    assert record.state == "error" and record.error.startswith("too large")
    assert chunks.sent <= 1024 * 1024 + 64 * 1024  # stopped reading soon after the limit
    assert harness.creates() == [] and harness.temp_files() == []


async def test_wrong_extension_refused_before_download(harness):
    src, chunks = source("setup.exe", b"MZ\x90\x00")
    status = Status()
    record = await harness.kb().add_file(src, progress=status, **USER)
    assert status.last.text.startswith("❌ `setup.exe`: not a document type the knowledge base accepts (txt, markdown")
    assert record.state == "error" and chunks.calls == 0 and harness.creates() == []


async def test_fake_pdf_refused_and_temp_file_removed(harness):
    src, chunks = source("report.pdf", b"This is plain text, not a PDF at all.\n")
    status = Status()
    record = await harness.kb().add_file(src, progress=status, **USER)
    assert status.last.text == "❌ `report.pdf`: not a real PDF file (its content does not match its name)"
    assert chunks.calls == 1 and record.state == "error"
    assert harness.creates() == [] and harness.temp_files() == []


@pytest.mark.parametrize("announced", [True, False])
async def test_empty_file_refused(harness, announced):
    src, _ = source("empty.txt", b"", size=announced)
    record = await harness.kb().add_file(src, progress=Status(), **USER)
    assert record.error == "the file is empty" and harness.creates() == [] and harness.temp_files() == []


async def test_path_in_name_is_cleaned(harness):
    src, _ = source("../../x.txt", b"plain text\n")
    status = Status()
    record = await harness.kb().add_file(src, progress=status, **USER)
    assert record.file_name == "x.txt" and status.last.text == "✅ Indexed as `x.txt` (1 segment)"
    assert [d.name for d in harness.fake.documents(harness.dataset_id)] == ["x.txt"]


async def test_user_not_in_kb_writers_is_refused(harness):
    kb = harness.kb(KB_WRITERS="slack:U9")
    src, chunks = source("guide.txt", TEXT)
    with pytest.raises(KbRefused) as refused:
        await kb.add_file(src, progress=Status(), **USER)
    assert str(refused.value) == (
        "You may not add to the knowledge base; an admin can allow it by adding slack:U1 to KB_WRITERS.")
    assert kb.refusal_for("slack", "U1") == str(refused.value) and kb.refusal_for("slack", "U9") is None
    with pytest.raises(KbRefused):
        await kb.add_text(None, "Title: text", progress=Status(), **USER)
    assert chunks.calls == 0 and await harness.repo.count("kb_uploads") == 0


async def test_not_configured_names_the_settings(harness):
    kb = harness.kb(dataset_id=None)
    with pytest.raises(KbRefused, match="DIFY_DATASET_API_KEY and DIFY_DATASET_ID"):
        await kb.add_file(source("a.txt", b"x")[0], progress=Status(), **USER)


async def test_several_files_one_result_each(harness):
    statuses: dict[str, Status] = {}

    def progress_for(src: FileSource) -> Status:
        return statuses.setdefault(src.name, Status())

    sources = [source("one.txt", b"first\n")[0], source("two.exe", b"MZ")[0], source("three.md", b"# third\n")[0]]
    records = await harness.kb().add_files(sources, progress_for=progress_for, **USER)
    assert [r.state for r in records] == ["completed", "error", "completed"]
    assert {name: s.last.text for name, s in statuses.items()} == {
        "one.txt": "✅ Indexed as `one.txt` (1 segment)",
        "two.exe": statuses["two.exe"].last.text,
        "three.md": "✅ Indexed as `three.md` (1 segment)",
    }
    assert statuses["two.exe"].last.text.startswith("❌ `two.exe`: not a document type")
    assert sorted(d.name for d in harness.fake.documents(harness.dataset_id)) == ["one.txt", "three.md"]


async def test_text_document_title_forms(harness):
    kb = harness.kb()
    status = Status()
    record = await kb.add_text(None, "Refund policy: refunds within 30 days.", progress=status, **USER)
    assert status.last.text == "✅ Indexed as `Refund policy` (1 segment)" and record.source == "text"
    await kb.add_text(None, "Onboarding\nStep one.", progress=Status(), **USER)
    docs = {d.name: d.text for d in harness.fake.documents(harness.dataset_id)}
    assert docs == {"Refund policy": "refunds within 30 days.", "Onboarding": "Onboarding\nStep one."}
    with pytest.raises(KbRefused, match="Nothing to add"):
        await kb.add_text(None, "   ", progress=Status(), **USER)


async def test_dataset_defaults_and_settings_reach_dify(harness):
    await harness.kb(KB_INDEXING_TECHNIQUE="high_quality").add_text("A", "a", progress=Status(), **USER)
    assert data_part_or_body(harness) == {"indexing_technique": "economy", "process_rule": {"mode": "automatic"}}

    empty = harness.fake.add_dataset(name="empty", indexing_technique=None)
    custom = {"mode": "custom", "rules": {"segmentation": {"separator": "\n\n", "max_tokens": 300}}}
    kb = harness.kb(dataset_id=empty, KB_PROCESS_RULE=json.dumps(custom), KB_DOC_LANGUAGE="German")
    await kb.add_file(source("b.txt", b"b\n")[0], progress=Status(), **USER)
    assert data_part(harness) == {"indexing_technique": "high_quality", "process_rule": custom, "doc_language": "German"}

    other = harness.fake.add_dataset(name="other", indexing_technique=None)
    await harness.kb(dataset_id=other, KB_INDEXING_TECHNIQUE="economy", KB_DOC_FORM="text_model").add_file(
        source("c.txt", b"c\n")[0], progress=Status(), **USER)
    assert data_part(harness) == {"indexing_technique": "economy", "process_rule": {"mode": "automatic"},
                                  "doc_form": "text_model"}


def data_part_or_body(harness) -> dict:
    body = dict(harness.creates()[-1].json)
    return {k: v for k, v in body.items() if k not in ("name", "text")}


async def test_restart_while_indexing_resumes_and_finishes(harness, db_file):
    from storage import Repository

    harness.fake.indexing_steps = ["parsing", "indexing", "indexing", "completed"]
    first = harness.kb(sleep=lambda _seconds: asyncio.Event().wait())  # never wakes up: this process "dies"
    status = Status()
    task = asyncio.create_task(first.add_file(source("manual.txt", TEXT)[0], progress=status, **USER))
    await status.indexing.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert harness.temp_files() == []

    repo = await Repository.open(db_file)  # "after the restart": a new repository on the same file
    try:
        harness.repo = repo
        second = harness.kb()
        stranded = await repo.create_kb_upload(platform="slack", user_id="U2", scope="C2", dataset_id="x",
                                               file_name="half.pdf", source="file", location={"chat": "C2"})
        rebuilt: dict[int, Status] = {}

        def factory(record):
            return rebuilt.setdefault(record.id, Status(record.location))

        done = await second.resume_unfinished("slack", factory)
    finally:
        await repo.close()
    by_name = {r.file_name: r for r in done}
    assert by_name["manual.txt"].state == "completed" and by_name["half.pdf"].state == "error"
    resumed = rebuilt[by_name["manual.txt"].id]
    assert resumed.location == {"chat": "C1", "message": "m1"}  # the same status message gets finished
    assert resumed.last.text == "✅ Indexed as `manual.txt` (1 segment)"
    assert rebuilt[stranded].last.text == (
        "❌ `half.pdf`: the bridge restarted before the upload finished; send it again")


async def test_poll_gives_up_after_the_timeout_with_backoff(harness):
    harness.fake.indexing_steps = ["indexing"]
    status = Status()
    record = await harness.kb(KB_POLL_TIMEOUT="20").add_file(source("slow.txt", TEXT)[0], progress=status, **USER)
    assert status.last.text == (
        "❌ `slow.txt`: Dify is still indexing after 20 s; it may finish later (check the document list)")
    assert record.state == "error"
    assert harness.time.sleeps == [1.0, 1.5, 2.25, 3.375, 5.0, 5.0, 1.875]


async def test_download_failures(harness):
    src, _ = source("cut.txt", TEXT * 10000, fail_after=64 * 1024)
    record = await harness.kb().add_file(src, progress=Status(), **USER)
    assert record.error == "the file could not be downloaded; try again" and harness.temp_files() == []

    async def foreign_host(_path):
        raise KbRefused("the file is not hosted by Slack, so the bridge did not download it")

    status = Status()
    await harness.kb().add_file(FileSource("x.txt", 10, download_to=foreign_host), progress=status, **USER)
    assert status.last.text == "❌ `x.txt`: the file is not hosted by Slack, so the bridge did not download it"
    assert harness.temp_files() == [] and harness.creates() == []


async def test_download_to_path_and_a_broken_display(harness):
    async def download_to(path):
        path.write_bytes(b"written by the adapter\n")

    async def broken(_event):
        raise RuntimeError("platform edit failed")

    record = await harness.kb().add_file(FileSource("a.md", None, download_to=download_to), progress=broken, **USER)
    assert record.state == "completed" and harness.temp_files() == []
    assert harness.fake.documents(harness.dataset_id)[0].file.content == b"written by the adapter\n"


async def test_list_and_status(harness):
    kb = harness.kb()
    await kb.add_file(source("good.txt", b"good\n")[0], progress=Status(), **USER)
    await kb.add_file(source("bad.exe", b"MZ")[0], progress=Status(), **USER)
    docs, total = await kb.list_documents()
    assert total == 1 and format_documents(docs, total) == "*Knowledge base* (1 document):\n✅ `good.txt` (available)"
    text = format_uploads(await kb.recent_uploads("slack", "U1"))
    lines = text.splitlines()
    assert lines[0] == "*Your recent knowledge-base uploads:*"
    assert lines[1].startswith("❌ `bad.exe`: not a document type") and lines[2].startswith("✅ Indexed as `good.txt`")
    assert format_uploads(await kb.recent_uploads("slack", "nobody")) == "You have not added anything to the knowledge base yet."


async def test_dify_refusing_the_upload_is_shown_and_the_temp_file_removed(harness):
    kb = harness.kb(KB_EXTENSIONS="txt,exe")  # a deployment that allows more than this Dify accepts
    status = Status()
    record = await kb.add_file(source("tool.exe", b"MZ\x90\x00 binary")[0], progress=status, **USER)
    assert status.last.text == (
        "❌ `tool.exe`: Dify does not accept this file type (check KB_EXTENSIONS against the server's ETL)")
    harness.fake.upload_limit_mb = 0.001  # the server's UPLOAD_FILE_SIZE_LIMIT is lower than ours
    await harness.kb().add_file(source("long.txt", b"words " * 1000)[0], progress=status, **USER)
    assert status.last.text == (
        "❌ `long.txt`: Dify refused it as too large (its upload limit is lower than KB_MAX_FILE_MB)")
    assert record.state == "error" and len(harness.creates()) == 2 and harness.temp_files() == []
