"""Migrations: from empty to head on SQLite and PostgreSQL, idempotent, matching the models."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storage import Repository, create_engine, head_revision, migrate
from storage.models import Base

TABLES = {"conversations", "processed_events", "replies", "kb_uploads", "alembic_version"}


async def test_migrate_from_empty_creates_tables_at_head(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        repo = Repository(engine)
        assert await repo.migration_revision() is None
        await migrate(engine)
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("kb_uploads"))
        assert TABLES <= tables
        assert {tuple(i["column_names"]) for i in indexes} >= {("state",), ("platform", "user_id")}
        assert await repo.migration_revision() == head_revision() == "0001"
    finally:
        await engine.dispose()


async def test_migrate_twice_is_a_noop_and_keeps_data(db_url: str) -> None:
    async with await Repository.open(db_url) as repo:
        await repo.save_conversation("slack", "T1:C1:1.0", "conv-1", "slack:T1:U1")
        await migrate(repo.engine)
        await migrate(repo.engine)
        assert await repo.migration_revision() == head_revision()
        saved = await repo.get_conversation("slack", "T1:C1:1.0")
        assert saved is not None and saved.conversation_id == "conv-1"


async def test_concurrent_start_up_migrates_once(db_url: str) -> None:
    """Two replicas starting together both come up; neither trips over the other's DDL."""
    engines = [create_engine(db_url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(e) for e in engines))
        for engine in engines:
            assert await Repository(engine).migration_revision() == head_revision()
    finally:
        for engine in engines:
            await engine.dispose()


async def test_models_match_migrations(db_url: str) -> None:
    """Autogenerate finds nothing to do: models.py and versions/ describe the same schema."""
    async with await Repository.open(db_url) as repo:
        async with repo.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
    assert diff == []
