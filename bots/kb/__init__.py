"""Knowledge base: add files and texts to a Dify knowledge base and follow their indexing.

Adapters use `KnowledgeBase` (one per bridge) with one progress callback per file:

    kb = KnowledgeBase(dataset_client, repo, settings)
    if (why := kb.refusal_for("telegram", user_id)) is not None: reply(why)
    await kb.add_file(FileSource(name, size=size, chunks=download), platform="telegram",
                      user_id=user_id, scope=scope, progress=status_message)
"""

from .access import config_problem, may_add, writer_refusal
from .format import (
    KbDocument,
    format_documents,
    format_uploads,
    parse_text_document,
    reason_for,
    status_line,
)
from .ingest import KnowledgeBase, ProgressFactory
from .progress import FileSource, KbProgress, KbRefused, ProgressCallback, StatusMessage
from .validate import Refusal, check_before_download, check_file, clean_name

__all__ = [
    "FileSource",
    "KbDocument",
    "KbProgress",
    "KbRefused",
    "KnowledgeBase",
    "ProgressCallback",
    "ProgressFactory",
    "Refusal",
    "StatusMessage",
    "check_before_download",
    "check_file",
    "clean_name",
    "config_problem",
    "format_documents",
    "format_uploads",
    "may_add",
    "parse_text_document",
    "reason_for",
    "status_line",
    "writer_refusal",
]
