"""Create the events, actions and sync_state tables.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("agent_sys_id", sa.String(32), nullable=False),
        sa.Column("case_table", sa.String(80), nullable=True),
        sa.Column("case_sys_id", sa.String(32), nullable=True),
        sa.Column("article_sys_id", sa.String(32), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_events_kind", "events", ["kind"])
    op.create_index("ix_events_agent_sys_id", "events", ["agent_sys_id"])
    op.create_index("ix_events_case_sys_id", "events", ["case_sys_id"])
    op.create_index("ix_events_article_sys_id", "events", ["article_sys_id"])
    op.create_index("ix_events_created_at", "events", ["created_at"])

    op.create_table(
        "actions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("key", name="uq_actions_key"),
    )

    op.create_table(
        "sync_state",
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("cursor", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_state")
    op.drop_table("actions")
    op.drop_index("ix_events_created_at", "events")
    op.drop_index("ix_events_article_sys_id", "events")
    op.drop_index("ix_events_case_sys_id", "events")
    op.drop_index("ix_events_agent_sys_id", "events")
    op.drop_index("ix_events_kind", "events")
    op.drop_table("events")
