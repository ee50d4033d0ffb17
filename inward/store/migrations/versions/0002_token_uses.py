"""Create the token_uses table for jti replay protection.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_uses",
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_token_uses_expires_at", "token_uses", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_token_uses_expires_at", "token_uses")
    op.drop_table("token_uses")
