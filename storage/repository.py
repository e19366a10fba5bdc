"""The async repository: the only code in the bridge that talks SQL.

Every method runs its own short transaction, so one Repository can be shared by many
concurrent asyncio tasks. SQLite and PostgreSQL run the same statements; only the
``INSERT … ON CONFLICT`` construct comes from the dialect's module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.db import create_engine, current_revision, migrate
from storage.models import conversations, kb_uploads, processed_events, replies, utcnow

log = logging.getLogger(__name__)

REPLY_STATES = frozenset({"streaming", "done", "failed", "interrupted"})
KB_STATES = frozenset({"received", "uploading", "indexing", "completed", "error"})
KB_FINISHED_STATES = frozenset({"completed", "error"})
KB_SOURCES = frozenset({"file", "text"})
_KB_UPDATABLE = frozenset(c.name for c in kb_uploads.c) - {"id", "created_at", "updated_at"}
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


@dataclass(frozen=True)
class ConversationRecord:
    platform: str
    scope: str
    app: str
    conversation_id: str
    dify_user: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ReplyRecord:
    id: int
    platform: str
    scope: str
    app: str
    state: str
    location: dict[str, Any]
    dify_message_id: str | None
    dify_task_id: str | None
    conversation_id: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class KbUploadRecord:
    id: int
    platform: str
    user_id: str
    scope: str
    dataset_id: str
    file_name: str
    source: str
    size: int | None
    state: str
    stage: str | None
    document_id: str | None
    batch: str | None
    segments_done: int | None
    segments_total: int | None
    error: str | None
    location: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def _record(cls: type, row: Any) -> Any:
    values = {f.name: row._mapping[f.name] for f in fields(cls)}
    if "location" in values:
        values["location"] = dict(values["location"] or {})
    return cls(**values)


def _check(value: str, allowed: frozenset[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(allowed)}")


class Repository:
    """Conversations, dedupe claims, replies and knowledge-base uploads.

    Args:
        engine: an engine from storage.db.create_engine. Migrations are not run here;
            use ``Repository.open(url)`` for a ready-to-use repository.
        clock: returns the current aware UTC time (tests pass a fake one).
    """

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utcnow) -> None:
        if engine.dialect.name not in _INSERTS:
            raise ValueError(f"unsupported database dialect {engine.dialect.name!r}")
        self._engine = engine
        self._clock = clock
        self._insert = _INSERTS[engine.dialect.name]
        self.closed = False
        # SQLite has one writer at a time; writers that collide wait in SQLite's busy handler,
        # which sleeps in growing millisecond steps. Queueing this process's writes here instead
        # hands the write lock over without sleeping (other processes still use the busy timeout).
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @classmethod
    async def open(cls, url: str, *, clock: Callable[[], datetime] = utcnow) -> Repository:
        """Create the engine for ``url``, apply migrations and return the repository."""
        engine = create_engine(url)
        try:
            await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, clock=clock)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (queued in-process on SQLite)."""
        if self._write_lock is None:
            async with self._engine.begin() as conn:
                yield conn
            return
        async with self._write_lock:
            async with self._engine.begin() as conn:
                yield conn

    async def close(self) -> None:
        self.closed = True
        await self._engine.dispose()

    async def __aenter__(self) -> Repository:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def ping(self, timeout: float = 5.0) -> bool:
        """True when the database answers ``SELECT 1`` within ``timeout``; never raises."""
        if self.closed:
            return False
        try:
            async with asyncio.timeout(timeout):
                async with self._engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - readiness must report, not crash
            log.warning("database ping failed: %s: %.200s", type(exc).__name__, exc)
            return False
        return True

    async def migration_revision(self) -> str | None:
        """The Alembic revision the database is at (None before any migration)."""
        return await current_revision(self._engine)

    # -- conversations ---------------------------------------------------------------

    async def get_conversation(
        self, platform: str, scope: str, app: str = "default"
    ) -> ConversationRecord | None:
        c = conversations.c
        stmt = select(conversations).where(c.platform == platform, c.scope == scope, c.app == app)
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _record(ConversationRecord, row) if row else None

    async def save_conversation(
        self, platform: str, scope: str, conversation_id: str, dify_user: str, app: str = "default"
    ) -> None:
        """Insert or replace the Dify conversation (and its user) for this scope."""
        now = self._clock()
        stmt = self._insert(conversations).values(
            platform=platform, scope=scope, app=app, conversation_id=conversation_id,
            dify_user=dify_user, created_at=now, updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["platform", "scope", "app"],
            set_={
                "conversation_id": stmt.excluded.conversation_id,
                "dify_user": stmt.excluded.dify_user,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        async with self._write() as conn:
            await conn.execute(stmt)

    async def delete_conversation(self, platform: str, scope: str, app: str = "default") -> bool:
        """Forget the mapping (``/new``); True when there was one."""
        c = conversations.c
        stmt = delete(conversations).where(c.platform == platform, c.scope == scope, c.app == app)
        async with self._write() as conn:
            return (await conn.execute(stmt)).rowcount > 0

    # -- dedupe ----------------------------------------------------------------------

    async def claim(self, platform: str, key: str) -> bool:
        """Record a delivery; True only for the first caller, across processes and replicas."""
        stmt = self._insert(processed_events).values(
            platform=platform, key=key, created_at=self._clock()
        ).on_conflict_do_nothing(index_elements=["platform", "key"])
        async with self._write() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def claim_all(self, platform: str, keys: list[str]) -> bool:
        """Claim several keys in one transaction; True only if every key was new.

        Keys already claimed stay claimed; new ones are recorded either way, so a delivery seen
        under any of its keys is never answered again.
        """
        now = self._clock()
        fresh = True
        async with self._write() as conn:
            for key in keys:
                stmt = self._insert(processed_events).values(
                    platform=platform, key=key, created_at=now
                ).on_conflict_do_nothing(index_elements=["platform", "key"])
                fresh = (await conn.execute(stmt)).rowcount == 1 and fresh
        return fresh

    async def prune_claims(self, older_than: timedelta) -> int:
        """Delete claims created more than ``older_than`` ago; returns how many."""
        cutoff = self._clock() - older_than
        stmt = delete(processed_events).where(processed_events.c.created_at < cutoff)
        async with self._write() as conn:
            return (await conn.execute(stmt)).rowcount

    # -- replies ---------------------------------------------------------------------

    async def create_reply(
        self, platform: str, scope: str, *, app: str = "default",
        location: dict[str, Any] | None = None, conversation_id: str | None = None,
    ) -> int:
        """Record a new answer in state ``streaming``; returns its id."""
        now = self._clock()
        stmt = replies.insert().values(
            platform=platform, scope=scope, app=app, state="streaming", location=location or {},
            conversation_id=conversation_id, created_at=now, updated_at=now,
        ).returning(replies.c.id)
        async with self._write() as conn:
            return (await conn.execute(stmt)).scalar_one()

    async def update_reply(
        self, reply_id: int, *, state: str | None = None, location: dict[str, Any] | None = None,
        dify_message_id: str | None = None, dify_task_id: str | None = None,
        conversation_id: str | None = None, error: str | None = None,
    ) -> None:
        """Change only the fields given (not None)."""
        if state is not None:
            _check(state, REPLY_STATES, "reply state")
        given = {
            "state": state, "location": location, "dify_message_id": dify_message_id,
            "dify_task_id": dify_task_id, "conversation_id": conversation_id, "error": error,
        }
        await self._update(replies, reply_id, {k: v for k, v in given.items() if v is not None})

    async def get_reply(self, reply_id: int) -> ReplyRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(replies).where(replies.c.id == reply_id))).first()
        return _record(ReplyRecord, row) if row else None

    async def replies_in_state(self, state: str, platform: str | None = None) -> list[ReplyRecord]:
        """Replies in ``state`` (oldest first), optionally on one platform only."""
        _check(state, REPLY_STATES, "reply state")
        stmt = select(replies).where(replies.c.state == state).order_by(replies.c.id)
        if platform is not None:
            stmt = stmt.where(replies.c.platform == platform)
        async with self._engine.connect() as conn:
            return [_record(ReplyRecord, row) for row in await conn.execute(stmt)]

    # -- knowledge-base uploads -------------------------------------------------------

    async def create_kb_upload(
        self, *, platform: str, user_id: str, scope: str, dataset_id: str, file_name: str,
        source: str, size: int | None = None, location: dict[str, Any] | None = None,
    ) -> int:
        """Record an upload in state ``received``; returns its id."""
        _check(source, KB_SOURCES, "kb upload source")
        now = self._clock()
        stmt = kb_uploads.insert().values(
            platform=platform, user_id=user_id, scope=scope, dataset_id=dataset_id,
            file_name=file_name, source=source, size=size, state="received",
            location=location or {}, created_at=now, updated_at=now,
        ).returning(kb_uploads.c.id)
        async with self._write() as conn:
            return (await conn.execute(stmt)).scalar_one()

    async def update_kb_upload(self, upload_id: int, **changes: Any) -> None:
        """Set the given columns (None clears a column); unknown names raise ValueError."""
        unknown = set(changes) - _KB_UPDATABLE
        if unknown:
            raise ValueError(f"unknown kb_uploads fields: {sorted(unknown)}")
        if "state" in changes:
            _check(changes["state"], KB_STATES, "kb upload state")
        if "source" in changes:
            _check(changes["source"], KB_SOURCES, "kb upload source")
        if "location" in changes and changes["location"] is None:
            changes["location"] = {}
        await self._update(kb_uploads, upload_id, changes)

    async def get_kb_upload(self, upload_id: int) -> KbUploadRecord | None:
        stmt = select(kb_uploads).where(kb_uploads.c.id == upload_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _record(KbUploadRecord, row) if row else None

    async def kb_uploads_unfinished(self, platform: str | None = None) -> list[KbUploadRecord]:
        """Uploads not yet completed or failed (oldest first), for resuming after restart."""
        stmt = select(kb_uploads).where(kb_uploads.c.state.not_in(KB_FINISHED_STATES))
        if platform is not None:
            stmt = stmt.where(kb_uploads.c.platform == platform)
        async with self._engine.connect() as conn:
            rows = await conn.execute(stmt.order_by(kb_uploads.c.id))
            return [_record(KbUploadRecord, row) for row in rows]

    async def kb_uploads_for_user(
        self, platform: str, user_id: str, limit: int = 10
    ) -> list[KbUploadRecord]:
        """The user's most recent uploads, newest first."""
        c = kb_uploads.c
        stmt = (
            select(kb_uploads).where(c.platform == platform, c.user_id == user_id)
            .order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_record(KbUploadRecord, row) for row in await conn.execute(stmt)]

    # -- helpers ---------------------------------------------------------------------

    async def _update(self, table: Table, row_id: int, values: Mapping[str, Any]) -> None:
        if not values:
            return
        stmt = update(table).where(table.c.id == row_id).values(
            **values, updated_at=self._clock()
        )
        async with self._write() as conn:
            await conn.execute(stmt)

    async def count(self, table_name: str) -> int:
        """Rows in one of the bridge's tables (for doctor output and tests)."""
        tables = {t.name: t for t in (conversations, processed_events, replies, kb_uploads)}
        if table_name not in tables:
            raise ValueError(f"unknown table {table_name!r}")
        table = tables[table_name]
        async with self._engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(table))).scalar_one()
