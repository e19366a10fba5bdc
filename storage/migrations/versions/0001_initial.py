"""Initial schema: conversations, processed_events, replies, kb_uploads.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column:
    return sa.Column("id", ID, nullable=False, autoincrement=True)


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "conversations",
        _id(),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(512), nullable=False),
        sa.Column("app", sa.String(128), nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("dify_user", sa.String(255), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        sa.UniqueConstraint(
            "platform", "scope", "app", name="uq_conversations_platform_scope_app"
        ),
    )
    op.create_table(
        "processed_events",
        _id(),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_processed_events"),
        sa.UniqueConstraint("platform", "key", name="uq_processed_events_platform_key"),
    )
    op.create_index("ix_processed_events_created_at", "processed_events", ["created_at"])
    op.create_table(
        "replies",
        _id(),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(512), nullable=False),
        sa.Column("app", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("location", sa.JSON(), nullable=True),
        sa.Column("dify_message_id", sa.String(255), nullable=True),
        sa.Column("dify_task_id", sa.String(255), nullable=True),
        sa.Column("conversation_id", sa.String(255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_replies"),
    )
    op.create_index("ix_replies_state", "replies", ["state"])
    op.create_table(
        "kb_uploads",
        _id(),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(512), nullable=False),
        sa.Column("dataset_id", sa.String(255), nullable=False),
        sa.Column("file_name", sa.String(512), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(32), nullable=True),
        sa.Column("document_id", sa.String(255), nullable=True),
        sa.Column("batch", sa.String(255), nullable=True),
        sa.Column("segments_done", sa.Integer(), nullable=True),
        sa.Column("segments_total", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("location", sa.JSON(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_kb_uploads"),
    )
    op.create_index("ix_kb_uploads_state", "kb_uploads", ["state"])
    op.create_index("ix_kb_uploads_platform_user_id", "kb_uploads", ["platform", "user_id"])


def downgrade() -> None:
    op.drop_table("kb_uploads")
    op.drop_table("replies")
    op.drop_table("processed_events")
    op.drop_table("conversations")
