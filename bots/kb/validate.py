"""Checks before any byte goes to Dify: file names, extensions, sizes and content sniffing.

`check_before_download` needs only what a platform announces (name, size), so a bad file is
refused before it is fetched. `check_file` looks at the downloaded file on disk (blocking file
I/O: call it through `asyncio.to_thread`). Each refusal is a one-line reason for the user.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import filetype

from .. import messages
from ..config import Settings

MAX_NAME = 200
_SNIFF_BYTES = 8192
_READ = 256 * 1024
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = b"PK\x03\x04"
# Extensions whose bytes must be text (UTF-8, or UTF-16 with a BOM).
TEXT_EXTENSIONS = frozenset(
    {"txt", "markdown", "md", "mdx", "html", "htm", "csv", "vtt", "properties", "xml", "eml", "json", "tsv"}
)
# Binary formats: (what filetype may call them, magic prefix accepted when filetype is unsure, label)
_BINARY: dict[str, tuple[frozenset[str], bytes | None, str]] = {
    "pdf": (frozenset({"pdf"}), None, "PDF"),
    "docx": (frozenset({"docx", "zip"}), _ZIP, "Word (.docx)"),
    "xlsx": (frozenset({"xlsx", "zip"}), _ZIP, "Excel (.xlsx)"),
    "pptx": (frozenset({"pptx", "zip"}), _ZIP, "PowerPoint (.pptx)"),
    "epub": (frozenset({"epub", "zip"}), _ZIP, "EPUB"),
    "xls": (frozenset({"xls"}), _OLE2, "Excel (.xls)"),
    "doc": (frozenset({"doc"}), _OLE2, "Word (.doc)"),
    "ppt": (frozenset({"ppt"}), _OLE2, "PowerPoint (.ppt)"),
    "msg": (frozenset(), _OLE2, "Outlook (.msg)"),
}
_MIME = {
    "txt": "text/plain", "md": "text/markdown", "markdown": "text/markdown", "mdx": "text/markdown",
    "html": "text/html", "htm": "text/html", "csv": "text/csv", "vtt": "text/vtt", "properties": "text/plain",
    "xml": "application/xml", "eml": "message/rfc822", "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xls": "application/vnd.ms-excel", "doc": "application/msword", "ppt": "application/vnd.ms-powerpoint",
    "epub": "application/epub+zip", "msg": "application/vnd.ms-outlook",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a file is refused: `reason` follows the file's name ("`x.exe`: <reason>")."""

    name: str
    reason: str
    kind: str

    @property
    def text(self) -> str:
        return f"`{self.name}`: {self.reason}"


def clean_name(name: str, fallback: str = "document") -> str:
    """The last path component, without control/format characters, trimmed; stays recognizable.

    `../../x.txt` → `x.txt`, `C:\\docs\\a.pdf` → `a.pdf`, `re\\u202eport.txt` → `report.txt`.
    """
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp"))
    name = re.sub(r"\s+", " ", name.replace("`", "'")).strip().lstrip(".").strip()
    if not name.strip("."):
        return fallback
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        keep = ("." + ext) if dot and 0 < len(ext) <= 10 else ""
        name = name[: MAX_NAME - len(keep)].rstrip() + keep
    return name


def extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def allowed_extensions(settings: Settings) -> list[str]:
    return [e.strip().lstrip(".").lower() for e in settings.kb_extensions.split(",") if e.strip()]


def mime_type(name: str) -> str:
    return _MIME.get(extension(name), "application/octet-stream")


def max_bytes(settings: Settings) -> int:
    return int(settings.kb_max_file_mb * 1024 * 1024)


def human_size(n: float) -> str:
    if n < 1024:
        return f"{int(n)} B"
    if n < 1024 * 1024:
        return f"{max(1, round(n / 1024))} KB"
    return f"{n / 1024 / 1024:.1f}".rstrip("0").rstrip(".") + " MB"


def too_large(name: str, size: int, settings: Settings) -> Refusal:
    limit = human_size(max_bytes(settings))
    return Refusal(name, messages.KB_TOO_LARGE.format(size=human_size(size), limit=limit), "too_large")


def check_before_download(name: str, size: int | None, settings: Settings) -> Refusal | None:
    """Refuse on what the platform announced: extension, size over the limit, an empty file."""
    name = clean_name(name)
    allowed = allowed_extensions(settings)
    if extension(name) not in allowed:
        return Refusal(name, messages.KB_BAD_EXTENSION.format(allowed=", ".join(allowed)), "extension")
    if size is not None:
        if size <= 0:
            return Refusal(name, messages.KB_EMPTY_FILE, "empty")
        if size > max_bytes(settings):
            return too_large(name, size, settings)
    return None


def check_file(path: Path, name: str, settings: Settings) -> Refusal | None:
    """Refuse a downloaded file: the announced checks on its real size, then its content.

    Binary formats must carry their signature (a `.pdf` that is not a PDF is refused); text
    formats must be UTF-8 (or UTF-16 with a BOM) without NUL bytes. Blocking: use a thread.
    """
    name = clean_name(name)
    refusal = check_before_download(name, path.stat().st_size, settings)
    if refusal is not None:
        return refusal
    ext = extension(name)
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
        if ext in _BINARY:
            return _check_binary(name, ext, head)
        if ext in TEXT_EXTENSIONS:
            fh.seek(0)
            return None if _is_text(fh) else Refusal(name, messages.KB_NOT_UTF8, "encoding")
    return None


def _check_binary(name: str, ext: str, head: bytes) -> Refusal | None:
    kinds, magic, label = _BINARY[ext]
    guessed = filetype.guess_extension(head)
    if guessed in kinds or (guessed is None and magic is not None and head.startswith(magic)):
        return None
    if ext == "pdf" and b"%PDF-" in head[:1024]:  # readers accept junk before the header
        return None
    return Refusal(name, messages.KB_NOT_REALLY.format(kind=label), "content")


def _is_text(fh: object) -> bool:
    read = fh.read  # type: ignore[attr-defined]
    first = read(_READ)
    if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        decoder = codecs.getincrementaldecoder("utf-16")()
    else:
        if b"\x00" in first:  # no magic-number guess here: "BM…" or "ID3…" is valid text
            return False
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
    chunk = first
    try:
        while chunk:
            decoder.decode(chunk)
            chunk = read(_READ)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
