"""Pure text for the knowledge base: status lines, failure reasons, `/kb list`, `/kb status`.

Everything returns platform-neutral Markdown built from the lines in `bots.messages`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .. import messages
from ..dify import (
    DifyAuthError,
    DifyDatasetAPIDisabled,
    DifyDatasetNotFound,
    DifyError,
    DifyFileTooLarge,
    DifyIndexingTechniqueRequired,
    DifyInvalidInput,
    DifyPlanLimit,
    DifyUnsupportedFileType,
)
from .progress import KbProgress

MAX_REASON = 300
MAX_TITLE = 80


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """Collapse whitespace and cut to `limit` characters (for Dify's own error texts)."""
    text = re.sub(r"\s+", " ", str(text or "")).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def segments_text(n: int | None) -> str:
    n = n or 0
    return f"{n} segment" if n == 1 else f"{n} segments"


def status_line(event: KbProgress) -> str:
    """The one status line of an upload at this step."""
    name = event.name
    if event.state == "completed":
        return messages.KB_DONE.format(name=name, segments=segments_text(event.segments_total))
    if event.state == "error":
        return messages.KB_FAILED.format(name=name, reason=event.error or messages.UNEXPECTED)
    if event.state == "uploading":
        if event.sent is not None and event.size:
            pct = min(100, int(event.sent * 100 / event.size))
            return messages.KB_UPLOADING_PCT.format(name=name, pct=pct)
        return messages.KB_UPLOADING.format(name=name)
    if event.state == "indexing":
        stage = messages.KB_STAGES.get(event.stage, event.stage or "indexing")
        if event.segments_total:
            return messages.KB_INDEXING_SEGMENTS.format(
                name=name, stage=stage, done=event.segments_done or 0, total=event.segments_total
            )
        return messages.KB_INDEXING.format(name=name, stage=stage)
    return messages.KB_RECEIVED.format(name=name)


def reason_for(exc: BaseException, dataset_id: str = "") -> str:
    """The one-line reason for a Dify error during an upload."""
    if isinstance(exc, DifyDatasetNotFound):
        return messages.KB_DATASET_NOT_FOUND.format(dataset=f"`{dataset_id}`" if dataset_id else "")
    if isinstance(exc, DifyDatasetAPIDisabled):
        return messages.KB_API_DISABLED
    if isinstance(exc, DifyFileTooLarge):
        return messages.KB_DIFY_TOO_LARGE
    if isinstance(exc, DifyUnsupportedFileType):
        return messages.KB_DIFY_UNSUPPORTED
    if isinstance(exc, DifyPlanLimit):
        return messages.KB_PLAN_LIMIT.format(message=one_line(exc.message) or "plan limit reached")
    if isinstance(exc, DifyIndexingTechniqueRequired):
        return messages.KB_TECHNIQUE_REQUIRED
    if isinstance(exc, DifyAuthError):
        return messages.KB_BAD_KEY
    if isinstance(exc, DifyInvalidInput) and exc.message:
        return messages.KB_DIFY_REFUSED.format(message=one_line(exc.message))
    if isinstance(exc, DifyError):
        return messages.problem_for(exc).text.rstrip(".")
    return messages.UNEXPECTED.rstrip(".")


def parse_text_document(raw: str) -> tuple[str, str]:
    """(title, text) from `/kb add` text: `Title: text`, else the first line names it.

    The `Title:` form needs a short title on the first line (no URL scheme, e.g. not `https:`)
    and text after the colon; otherwise the whole text is kept and its first line, cut to
    80 characters, is the title. Empty text gives ("", "").
    """
    raw = (raw or "").strip()
    if not raw:
        return "", ""
    first, _, rest = raw.partition("\n")
    m = re.match(r"^([^:\n]{1,%d}):[ \t]*(.*)$" % MAX_TITLE, first)
    if m and not m.group(2).startswith("//") and (m.group(2).strip() or rest.strip()):
        title = m.group(1).strip()
        text = "\n".join(p for p in (m.group(2).strip(), rest.strip()) if p)
        if title:
            return _title(title), text
    return _title(first), raw


def _title(line: str) -> str:
    line = re.sub(r"\s+", " ", line).strip().strip("#*_` ").strip()
    return (line[: MAX_TITLE - 1].rstrip() + "…") if len(line) > MAX_TITLE else (line or "Untitled")


@dataclass(frozen=True, slots=True)
class KbDocument:
    """One document of the knowledge base, for `/kb list` and `dify-bridge kb list`."""

    id: str
    name: str
    status: str  # Dify's display_status: queuing, indexing, available, error, paused, disabled, archived
    word_count: int | None = None
    error: str | None = None

    @classmethod
    def from_dify(cls, doc: dict[str, Any]) -> KbDocument:
        status = doc.get("display_status") or doc.get("indexing_status") or "unknown"
        if status == "available" and doc.get("enabled") is False:
            status = "disabled"
        return cls(
            id=str(doc.get("id") or ""), name=str(doc.get("name") or "?"), status=str(status),
            word_count=doc.get("word_count"), error=doc.get("error"),
        )


_STATUS_ICON = {"available": "✅", "completed": "✅", "error": "❌", "queuing": "⏳", "indexing": "⏳",
                "paused": "⏸", "disabled": "🚫", "archived": "🗄"}


def document_line(doc: KbDocument) -> str:
    icon = _STATUS_ICON.get(doc.status, "•")
    extra = f" — {one_line(doc.error, 120)}" if doc.status == "error" and doc.error else ""
    return f"{icon} `{doc.name}` ({doc.status}){extra}"


def format_documents(docs: list[KbDocument], total: int | None = None) -> str:
    if not docs:
        return messages.KB_LIST_EMPTY
    total = total if total is not None else len(docs)
    count = "1 document" if total == 1 else f"{total} documents"
    lines = [messages.KB_LIST_HEAD.format(count=count), *(document_line(d) for d in docs)]
    if total > len(docs):
        lines.append(messages.KB_LIST_MORE.format(more=total - len(docs)))
    return "\n".join(lines)


def format_uploads(records: list[Any]) -> str:
    """`/kb status`: the caller's recent uploads (KbUploadRecord list, newest first)."""
    if not records:
        return messages.KB_STATUS_EMPTY
    lines = [messages.KB_STATUS_HEAD]
    for rec in records:
        event = KbProgress(
            name=rec.file_name, state=rec.state, stage=rec.stage, segments_done=rec.segments_done,
            segments_total=rec.segments_total, error=rec.error, upload_id=rec.id,
        )
        when = rec.created_at.strftime("%Y-%m-%d %H:%M UTC")
        lines.append(f"{status_line(event)} _({when})_")
    return "\n".join(lines)
