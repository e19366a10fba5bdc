"""Checks before upload: names, extensions, sizes, content sniffing; who may add; text titles; status lines."""

from __future__ import annotations

import codecs
import io
import zipfile

import pytest

from bots.config import load_settings
from bots.kb import (
    KbProgress,
    check_before_download,
    check_file,
    clean_name,
    may_add,
    parse_text_document,
    status_line,
    writer_refusal,
)

SETTINGS = load_settings({"KB_MAX_FILE_MB": "1"}, env_file=None)
MB = 1024 * 1024


@pytest.mark.parametrize(("raw", "clean"), [
    ("../../x.txt", "x.txt"),
    ("C:\\Users\\ann\\Report 2024.pdf", "Report 2024.pdf"),
    ("/etc/passwd", "passwd"),
    ("bad\x00na\x1bme\n.md", "badname.md"),
    ("invoice\u202etxt.exe", "invoicetxt.exe"),  # a right-to-left override cannot disguise the extension
    ("..", "document"),
    ("  ../  ", "document"),
    (".hidden.txt", "hidden.txt"),
    ("Résumé – final.docx", "Résumé – final.docx"),
    ("a`b.txt", "a'b.txt"),
])
def test_clean_name_keeps_names_recognizable(raw, clean):
    assert clean_name(raw) == clean


def test_long_names_keep_their_extension():
    name = clean_name("x" * 500 + ".pdf")
    assert len(name) == 200 and name.endswith(".pdf")


def test_refused_before_download_on_what_the_platform_announced():
    assert check_before_download("report.pdf", 1000, SETTINGS) is None
    assert check_before_download("report.pdf", None, SETTINGS) is None
    wrong = check_before_download("setup.exe", 10, SETTINGS)
    assert wrong is not None and wrong.kind == "extension" and "pdf" in wrong.reason
    assert wrong.text.startswith("`setup.exe`: not a document type")
    big = check_before_download("big.pdf", 3 * MB, SETTINGS)
    assert big is not None and big.reason == "too large (3 MB; the knowledge base accepts up to 1 MB)"
    assert check_before_download("nothing.txt", 0, SETTINGS).reason == "the file is empty"
    assert check_before_download("README", 10, SETTINGS).kind == "extension"


def _write(tmp_path, name, data: bytes):
    path = tmp_path / "download.bin"
    path.write_bytes(data)
    return path


def _ooxml(first: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr(first, "<x/>")
    return buf.getvalue()


@pytest.mark.parametrize(("name", "data", "kind"), [
    ("paper.pdf", b"just some text pretending to be a PDF", "content"),
    ("paper.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", None),
    ("letter.docx", _ooxml("word/document.xml"), None),
    ("letter.docx", _ooxml("xl/workbook.xml"), "content"),  # a spreadsheet named .docx
    ("sheet.xlsx", _ooxml("xl/workbook.xml"), None),
    ("sheet.xlsx", b"a,b\n1,2\n", "content"),
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, None),
    ("notes.txt", "Grüße, 日本語 ✓\n".encode(), None),
    ("notes.txt", codecs.BOM_UTF8 + b"with a BOM\n", None),
    ("notes.txt", "UTF-16 text\n".encode("utf-16"), None),
    ("notes.txt", "caf\xe9 in Latin-1\n".encode("latin-1"), "encoding"),
    ("notes.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "encoding"),
    ("bmw.md", b"BMW quarterly report\n", None),  # looks like a BMP signature, but it is text
    ("data.csv", b"", "empty"),
])
def test_content_sniffing(tmp_path, name, data, kind):
    refusal = check_file(_write(tmp_path, name, data), name, SETTINGS)
    assert (refusal.kind if refusal else None) == kind


def test_fake_pdf_reason_says_so(tmp_path):
    refusal = check_file(_write(tmp_path, "x.pdf", b"hello"), "x.pdf", SETTINGS)
    assert refusal.text == "`x.pdf`: not a real PDF file (its content does not match its name)"


def test_real_size_is_checked_after_download(tmp_path):
    refusal = check_file(_write(tmp_path, "a.txt", b"a" * (MB + 1)), "a.txt", SETTINGS)
    assert refusal is not None and refusal.kind == "too_large"


def test_custom_extension_list_for_unstructured():
    settings = load_settings({"KB_EXTENSIONS": "pdf,pptx,eml"}, env_file=None)
    assert check_before_download("deck.pptx", 10, settings) is None
    assert check_before_download("notes.txt", 10, settings).reason.endswith("(pdf, pptx, eml)")


def test_who_may_add():
    nobody = load_settings({}, env_file=None)
    assert not may_add(nobody, "slack", "U1")
    assert writer_refusal(nobody, "slack", "U1") == (
        "Adding to the knowledge base is turned off; an admin can allow it with KB_WRITERS (e.g. KB_WRITERS=slack:U1).")
    some = load_settings({"KB_WRITERS": "slack:U1,telegram:42"}, env_file=None)
    assert may_add(some, "slack", "U1") and may_add(some, "telegram", "42")
    assert not may_add(some, "telegram", "U1")
    assert "adding telegram:7 to KB_WRITERS" in writer_refusal(some, "telegram", "7")
    assert may_add(load_settings({"KB_WRITERS": "*"}, env_file=None), "telegram", "7")
    assert may_add(nobody, "cli", "root")  # the shell command is for whoever holds the dataset key


@pytest.mark.parametrize(("raw", "title", "text"), [
    ("Refund policy: refunds within 30 days.", "Refund policy", "refunds within 30 days."),
    ("Onboarding\nStep 1: get a laptop.\nStep 2: log in.", "Onboarding", "Onboarding\nStep 1: get a laptop.\nStep 2: log in."),
    ("FAQ:\nQ: what? A: that.", "FAQ", "Q: what? A: that."),
    ("https://example.com/docs explains it", "https://example.com/docs explains it", "https://example.com/docs explains it"),
    ("# Release notes\n- fixed", "Release notes", "# Release notes\n- fixed"),
    ("   ", "", ""),
])
def test_text_document_title(raw, title, text):
    assert parse_text_document(raw) == (title, text)


def test_status_lines():
    assert status_line(KbProgress("a.pdf", "received")) == "📥 `a.pdf` received…"
    assert status_line(KbProgress("a.pdf", "uploading", sent=5, size=10)) == "⬆️ Uploading `a.pdf`… 50%"
    assert status_line(KbProgress("a.pdf", "indexing", stage="splitting")) == "⏳ Indexing `a.pdf`: splitting into segments…"
    assert status_line(KbProgress("a.pdf", "indexing", stage="indexing", segments_done=2, segments_total=5)) == (
        "⏳ Indexing `a.pdf`: indexing (2/5 segments)…")
    assert status_line(KbProgress("a.pdf", "completed", segments_total=1)) == "✅ Indexed as `a.pdf` (1 segment)"
    assert status_line(KbProgress("a.pdf", "error", error="the file is empty")) == "❌ `a.pdf`: the file is empty"
