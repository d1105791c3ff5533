"""The label queue: queue entries, leases, and the lease of each queue annotation.

queue_entries holds a round's items with their annotator target and counts;
leases records every item handed to a member (never reused, so a member never
gets an item twice); annotations.lease_id links a queue answer to its lease.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 07:52:00.828528
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_queue_entries_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_queue_entries_project_id_projects"),
        ),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_queue_entries_round_id_rounds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_entries")),
        sa.UniqueConstraint(
            "round_id", "item_id", name=op.f("uq_queue_entries_round_id_item_id")
        ),
    )
    with op.batch_alter_table("queue_entries", schema=None) as batch_op:
        batch_op.create_index("ix_queue_entries_item", ["item_id"], unique=False)
        batch_op.create_index(
            "ix_queue_entries_project_status_rank",
            ["project_id", "status", "rank"],
            unique=False,
        )

    op.create_table(
        "leases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("queue_entry_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("flag", sa.String(length=30), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_leases_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_leases_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_leases_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["queue_entry_id"],
            ["queue_entries.id"],
            name=op.f("fk_leases_queue_entry_id_queue_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leases")),
        sa.UniqueConstraint(
            "item_id", "member_id", name=op.f("uq_leases_item_id_member_id")
        ),
    )
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_leases_member_created", ["member_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_leases_project_status_expires",
            ["project_id", "status", "expires_at"],
            unique=False,
        )

    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_annotations_lease_id_leases"), "leases", ["lease_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_annotations_lease_id_leases"), type_="foreignkey"
        )
        batch_op.drop_column("lease_id")

    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.drop_index("ix_leases_project_status_expires")
        batch_op.drop_index("ix_leases_member_created")

    op.drop_table("leases")
    with op.batch_alter_table("queue_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_entries_project_status_rank")
        batch_op.drop_index("ix_queue_entries_item")

    op.drop_table("queue_entries")
