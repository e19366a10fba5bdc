"""SQLAlchemy models: the four tables of the bridge (design.md, "Data").

The repository (storage/repository.py) is the only code that queries them; the Alembic
migrations in storage/migrations/versions/ create them. Keep both in step: the test
``test_models_match_migrations`` fails when they drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, MetaData, String, Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Deterministic constraint/index names, identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids on PostgreSQL (processed_events churns through ids quickly); on SQLite only
# INTEGER PRIMARY KEY is the auto-incrementing rowid alias, and it is 64-bit anyway.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL stores ``timestamptz``; SQLite stores text without an offset, so values are
    converted to UTC before storing and marked UTC when read back. Naive datetimes are
    rejected: they are always a bug here.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class _Timestamps:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Conversation(_Timestamps, Base):
    """One conversation scope on one platform, for one app → a Dify conversation."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("platform", "scope", "app"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(512))
    app: Mapped[str] = mapped_column(String(128), default="default")
    conversation_id: Mapped[str] = mapped_column(String(255))
    dify_user: Mapped[str] = mapped_column(String(255))


class ProcessedEvent(Base):
    """A platform delivery already handled (durable dedupe). Pruned by age."""

    __tablename__ = "processed_events"
    __table_args__ = (
        UniqueConstraint("platform", "key"),
        Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Reply(_Timestamps, Base):
    """An answer the bridge is writing or wrote, and where it lives on the platform."""

    __tablename__ = "replies"
    __table_args__ = (Index(None, "state"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(512))
    app: Mapped[str] = mapped_column(String(128), default="default")
    state: Mapped[str] = mapped_column(String(16))
    location: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    dify_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dify_task_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    conversation_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class KbUpload(_Timestamps, Base):
    """A file or text sent to a Dify knowledge base, and its indexing progress."""

    __tablename__ = "kb_uploads"
    __table_args__ = (Index(None, "state"), Index(None, "platform", "user_id"))

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(String(512))
    dataset_id: Mapped[str] = mapped_column(String(255))
    file_name: Mapped[str] = mapped_column(String(512))
    source: Mapped[str] = mapped_column(String(8))
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    document_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    batch: Mapped[str | None] = mapped_column(String(255), nullable=True)
    segments_done: Mapped[int | None] = mapped_column(Integer, nullable=True)
    segments_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    location: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


conversations = Conversation.__table__
processed_events = ProcessedEvent.__table__
replies = Reply.__table__
kb_uploads = KbUpload.__table__
