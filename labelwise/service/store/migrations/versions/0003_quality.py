"""Schema for label quality: calibration sessions, their items and answers (#6).

Dispute rules and the aggregation method live in ``projects.settings`` (JSON)
and need no column.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calibration_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("guideline_version", sa.Integer(), nullable=True),
        sa.Column("published_guideline_version", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["members.id"],
            name=op.f("fk_calibration_sessions_created_by_members"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_calibration_sessions_project_id_projects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calibration_sessions")),
    )
    with op.batch_alter_table("calibration_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_calibration_sessions_project_id"),
            ["project_id"],
            unique=False,
        )

    op.create_table(
        "calibration_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_calibration_items_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["calibration_sessions.id"],
            name=op.f("fk_calibration_items_session_id_calibration_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calibration_items")),
        sa.UniqueConstraint(
            "session_id",
            "item_id",
            name=op.f("uq_calibration_items_session_id_item_id"),
        ),
    )

    op.create_table(
        "calibration_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("time_spent_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_calibration_answers_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_calibration_answers_member_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["calibration_sessions.id"],
            name=op.f("fk_calibration_answers_session_id_calibration_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calibration_answers")),
        sa.UniqueConstraint(
            "session_id",
            "item_id",
            "member_id",
            name=op.f("uq_calibration_answers_session_id_item_id_member_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("calibration_answers")
    op.drop_table("calibration_items")
    with op.batch_alter_table("calibration_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calibration_sessions_project_id"))
    op.drop_table("calibration_sessions")
