"""Schema for loop operations: training jobs, releases, failures (issue #7).

training_jobs holds every retraining request and its status (one queued or
training job per project, through the UNIQUE pending_project_id);
release_rollbacks records each reset of a project's final labels to a
release. Releases become immutable: a trigger refuses any UPDATE or DELETE
of a releases row, on SQLite and on PostgreSQL alike.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_MESSAGE = "releases are immutable: create a new release instead"

_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER releases_no_update BEFORE UPDATE ON releases
    BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END""",
    f"""CREATE TRIGGER releases_no_delete BEFORE DELETE ON releases
    BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END""",
]
_POSTGRES_TRIGGERS = [
    f"""CREATE FUNCTION releases_immutable() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION '{_MESSAGE}'; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER releases_no_update BEFORE UPDATE OR DELETE ON releases
    FOR EACH ROW EXECUTE FUNCTION releases_immutable()""",
]


def upgrade() -> None:
    op.create_table(
        "training_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("pending_project_id", sa.Integer(), nullable=True),
        sa.Column("n_final_labels", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=100), nullable=True),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_training_jobs_model_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_training_jobs_project_id_projects"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["members.id"],
            name=op.f("fk_training_jobs_requested_by_members"),
        ),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_training_jobs_round_id_rounds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_jobs")),
        sa.UniqueConstraint(
            "pending_project_id", name=op.f("uq_training_jobs_pending_project_id")
        ),
    )
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_training_jobs_project_id_id", ["project_id", "id"], unique=False
        )
        batch_op.create_index("ix_training_jobs_status", ["status"], unique=False)

    op.create_table(
        "release_rollbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("release_pk", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_release_rollbacks_member_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_release_rollbacks_project_id_projects"),
        ),
        sa.ForeignKeyConstraint(
            ["release_pk"],
            ["releases.id"],
            name=op.f("fk_release_rollbacks_release_pk_releases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_rollbacks")),
    )
    with op.batch_alter_table("release_rollbacks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_release_rollbacks_project_id"), ["project_id"], unique=False
        )

    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRES_TRIGGERS if postgres else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS releases_no_update ON releases")
        op.execute("DROP FUNCTION IF EXISTS releases_immutable()")
    else:
        op.execute("DROP TRIGGER IF EXISTS releases_no_update")
        op.execute("DROP TRIGGER IF EXISTS releases_no_delete")

    with op.batch_alter_table("release_rollbacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_rollbacks_project_id"))
    op.drop_table("release_rollbacks")

    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_training_jobs_status")
        batch_op.drop_index("ix_training_jobs_project_id_id")
    op.drop_table("training_jobs")
