"""Storage: SQLAlchemy models, the async repository and Alembic migrations.

Only ``Repository`` touches SQL; the rest of the bridge uses its methods and records.
"""

from storage.db import create_engine, head_revision, migrate, normalize_database_url
from storage.repository import (
    KB_FINISHED_STATES,
    KB_SOURCES,
    KB_STATES,
    REPLY_STATES,
    ConversationRecord,
    KbUploadRecord,
    ReplyRecord,
    Repository,
)

__all__ = [
    "KB_FINISHED_STATES",
    "KB_SOURCES",
    "KB_STATES",
    "REPLY_STATES",
    "ConversationRecord",
    "KbUploadRecord",
    "ReplyRecord",
    "Repository",
    "create_engine",
    "head_revision",
    "migrate",
    "normalize_database_url",
]
