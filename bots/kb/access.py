"""Who may add to the knowledge base, and whether it is set up at all."""

from __future__ import annotations

from .. import messages
from ..config import Settings

CLI = "cli"  # the shell command: whoever holds the dataset key may add


def may_add(settings: Settings, platform: str, user_id: str) -> bool:
    """True when KB_WRITERS lists `platform:user_id` (or `*`). Empty KB_WRITERS allows nobody."""
    return platform == CLI or settings.kb_writers.allows(platform, user_id)


def writer_refusal(settings: Settings, platform: str, user_id: str) -> str | None:
    """The refusal line naming KB_WRITERS for a user who may not add, else None."""
    if may_add(settings, platform, user_id):
        return None
    who = f"{platform}:{user_id}"
    if settings.kb_writers.empty:
        return messages.KB_WRITERS_EMPTY.format(who=who)
    return messages.KB_NOT_WRITER.format(who=who)


def config_problem(settings: Settings, dataset_id: str | None = None) -> str | None:
    """One line naming the missing setting (DIFY_DATASET_API_KEY / DIFY_DATASET_ID), else None."""
    if settings.dify_dataset_api_key is None:
        return messages.KB_NO_DATASET_KEY
    if not (dataset_id or settings.dify_dataset_id):
        return messages.KB_NO_DATASET_ID
    return None
