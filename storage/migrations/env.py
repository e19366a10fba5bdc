"""Alembic environment for Dify Bridge.

storage.db.migrate hands over an open connection (inside a transaction) through
``config.attributes["connection"]``; that is the normal path. Without one, the engine is
built from the ``sqlalchemy.url`` option (see storage.db.alembic_config) so developers can
run autogenerate, and offline mode prints SQL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from storage.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Autogenerate writes UTCDateTime as a plain timestamptz so migrations stay self-contained."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode for most ALTERs
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_engine(url: str) -> None:
    from storage.db import create_engine

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run_on)
    finally:
        await engine.dispose()


def main() -> None:
    connection = config.attributes.get("connection")
    url = config.get_main_option("sqlalchemy.url")
    if connection is not None:
        run_on(connection)
    elif url is None:
        raise RuntimeError("no connection or sqlalchemy.url given to the migrations")
    elif context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_with_own_engine(url))


main()
