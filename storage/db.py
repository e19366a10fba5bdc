"""Engine creation and Alembic migrations for SQLite (aiosqlite) and PostgreSQL (asyncpg).

Developers can drive Alembic from Python without an ini file, e.g. to add a migration::

    from alembic import command
    from storage.db import alembic_config
    command.revision(alembic_config("sqlite:///dev.db"), "add x", autogenerate=True)
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
# Switching a fresh file to WAL fails at once ("database is locked", no busy wait) while
# other connections are open; it is persistent, so migrate() makes sure of it with retries.
_WAL_ATTEMPTS = 50
_WAL_RETRY_DELAY = 0.1
# pg_advisory_xact_lock key that serializes migrations across replicas ("difybrmg").
_PG_MIGRATION_LOCK = 0x6469667962726D67
_PG_CONNECT_ARGS = {"timeout": 10, "command_timeout": 60}


def normalize_database_url(url: str) -> str:
    """Return ``url`` with its async driver: ``sqlite+aiosqlite`` or ``postgresql+asyncpg``.

    Accepts ``sqlite:///path``, ``sqlite+<driver>:///path``, ``postgres://…``,
    ``postgresql://…`` and ``postgresql+<driver>://…``. Raises ValueError otherwise (the
    message names only the scheme, never the credentials).
    """
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("DATABASE_URL must look like sqlite:///path or postgresql://user@host/db")
    backend = scheme.lower().split("+", 1)[0]
    if backend == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if backend in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    raise ValueError(f"unsupported database scheme {scheme!r}: use sqlite:// or postgresql://")


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine for ``url`` (any form normalize_database_url accepts).

    SQLite: creates the file's parent directory and sets WAL, a 5 s busy timeout,
    foreign keys and synchronous=NORMAL on every connection. PostgreSQL: pre-ping, a
    bounded pool, connect/command timeouts; libpq-style ``sslmode=`` and
    ``options=-csearch_path=…`` in the URL are translated for asyncpg.
    """
    parsed = make_url(normalize_database_url(url))
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(parsed)
    parsed, connect_args = _asyncpg_connect_args(parsed)
    return create_async_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=30,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def _create_sqlite_engine(url: URL) -> AsyncEngine:
    database = url.database or ""
    if database and database != ":memory:" and not url.query.get("uri"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)

    @event.listens_for(engine.sync_engine, "connect")
    def _set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
            cursor.execute("PRAGMA journal_mode")
            if cursor.fetchone()[0] != "wal":
                try:
                    cursor.execute("PRAGMA journal_mode=WAL")
                except Exception:  # noqa: BLE001 - another connection is switching it
                    log.debug("SQLite WAL switch deferred: database busy")
        finally:
            cursor.close()

    return engine


async def _ensure_sqlite_wal(engine: AsyncEngine) -> None:
    mode = None
    for _ in range(_WAL_ATTEMPTS):
        try:
            async with engine.connect() as conn:
                mode = (await conn.exec_driver_sql("PRAGMA journal_mode=WAL")).scalar()
        except OperationalError:
            mode = None
        if mode in ("wal", "memory"):
            return
        await asyncio.sleep(_WAL_RETRY_DELAY)
    log.warning("SQLite database stays in journal mode %r instead of WAL", mode)


def _asyncpg_connect_args(url: URL) -> tuple[URL, dict[str, Any]]:
    """Move libpq-only query parameters into asyncpg keyword arguments."""
    connect_args: dict[str, Any] = dict(_PG_CONNECT_ARGS)
    query = dict(url.query)
    if "sslmode" in query:
        connect_args["ssl"] = query.pop("sslmode")
    if "options" in query:
        connect_args["server_settings"] = _parse_pg_options(str(query.pop("options")))
    return url.set(query=query), connect_args


def _parse_pg_options(options: str) -> dict[str, str]:
    """Parse libpq ``options`` (``-c key=value``, ``-ckey=value``, ``--key=value``)."""
    settings: dict[str, str] = {}
    tokens = iter(shlex.split(options))
    for token in tokens:
        if token == "-c":
            token = next(tokens, "")
        elif token.startswith("-c"):
            token = token[2:]
        elif token.startswith("--"):
            token = token[2:]
        else:
            raise ValueError("unsupported 'options' in DATABASE_URL: use -c name=value")
        name, eq, value = token.partition("=")
        if not eq or not name:
            raise ValueError("unsupported 'options' in DATABASE_URL: use -c name=value")
        settings[name.replace("-", "_")] = value
    return settings


def alembic_config(url: str | None = None) -> Config:
    """Alembic Config built in code: script_location is storage/migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the database to the newest revision; idempotent and safe across replicas.

    Runs in one transaction holding a lock (PostgreSQL advisory lock, SQLite
    ``BEGIN IMMEDIATE``), so two processes starting at once migrate once.
    """
    if engine.dialect.name == "sqlite":
        await _ensure_sqlite_wal(engine)
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


def _upgrade(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    elif conn.dialect.name == "sqlite":
        # pysqlite opens transactions only before DML; take the write lock up front.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )
