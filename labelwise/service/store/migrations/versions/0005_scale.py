"""Schema for scale: external pools and the score cache (issue #8).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pool_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("id_column", sa.String(length=200), nullable=False),
        sa.Column("feature_columns", sa.JSON(), nullable=False),
        sa.Column("text_column", sa.String(length=200), nullable=True),
        sa.Column("n_files", sa.Integer(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_pool_sources_project_id_projects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_sources")),
        sa.UniqueConstraint(
            "project_id", "name", name=op.f("uq_pool_sources_project_id_name")
        ),
    )
    with op.batch_alter_table("pool_sources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pool_sources_project_id"), ["project_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pool_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pool_sources_project_id"))
    op.drop_table("pool_sources")
