"""Shared pytest fixtures. Add new groups below with their own section header."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url

from storage import Repository, create_engine

# --- database ---------------------------------------------------------------------------
#
# `db_url` runs a test once on SQLite (a fresh file under tmp_path) and once on PostgreSQL
# (only when TEST_DATABASE_URL is set, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test).
#
# PostgreSQL isolation: each test gets its own schema `t_<hex>`, created here and dropped
# (CASCADE) afterwards. The URL handed to the test carries the libpq-style
# `?options=-csearch_path%3Dt_<hex>`; storage.db.create_engine turns that into asyncpg's
# `server_settings={"search_path": ...}` (asyncpg itself has no `options` argument), so
# every pooled connection - including Alembic's, hence `alembic_version` - lands in it.

PG_URL_ENV = "TEST_DATABASE_URL"
PG_SKIP_REASON = (
    "PostgreSQL tests skipped: set TEST_DATABASE_URL=postgresql+asyncpg://user@host:5432/db "
    "to run them"
)


def url_with_search_path(base_url: str, schema: str) -> str:
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    """An empty database URL: SQLite file, or a throw-away PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/bridge.db"
        return
    base_url = os.environ.get(PG_URL_ENV)
    if not base_url:
        pytest.skip(PG_SKIP_REASON)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base_url)
    try:
        async with admin.begin() as conn:
            await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        yield url_with_search_path(base_url, schema)
        async with admin.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await admin.dispose()


@pytest.fixture
async def repo(db_url: str) -> AsyncIterator[Repository]:
    """A migrated Repository on `db_url`, closed after the test."""
    repository = await Repository.open(db_url)
    try:
        yield repository
    finally:
        await repository.close()


# --- reporting --------------------------------------------------------------------------


def _postgres_line() -> str:
    url = os.environ.get(PG_URL_ENV)
    if url:
        return f"PostgreSQL tests: running against {make_url(url).render_as_string(hide_password=True)}"
    return f"PostgreSQL tests: SKIPPED ({PG_SKIP_REASON.split(': ', 1)[1]})"


def pytest_report_header(config):
    return _postgres_line()


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(_postgres_line())
