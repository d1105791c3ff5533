"""``labelwise train`` and ``labelwise release``: retrain now; freeze, diff, roll back.

``labelwise release NAME [--note TEXT] [--json]`` creates a release, and
``labelwise release diff|list|rollback ...`` are subcommands: the group
dispatches on its first argument (a subcommand name, else ``create``), so a
project cannot be called ``diff``, ``list``, ``rollback`` or ``create`` here
(use ``labelwise release create NAME`` for one that is).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core

from labelwise.cli._db import DbOption, open_store
from labelwise.cli._errors import handle_errors, stderr
from labelwise.cli._progress import run_with_progress

if TYPE_CHECKING:
    from typer._click.core import Context

__all__ = ["release_app", "train_command"]

NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="Project name.", show_default=False)
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (for scripts) instead of text.")
]


def _job_lines(name: str, job: dict[str, Any]) -> list[str]:
    lines = [f"Training job {job['job_id']} of project {name!r}: {job['status']}."]
    if job["status"] == "failed":
        lines.append(f"  error    {job['error']}")
        return lines
    model = job.get("model")
    if model is None:
        lines.append("  model    none (cold start: too few final labels of 2+ classes)")
    else:
        metrics = model.get("metrics") or {}
        scores = (
            f"accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['macro_f1']:.3f} "
            f"on {metrics['n_validation']} validation items"
            if metrics
            else "no labeled validation items"
        )
        ece = model.get("calibration_error")
        lines.append(
            f"  model    {model['model_version']} trained on {model['n_labels']} "
            f"labels (hash {model['labels_hash'][:12]}); {scores}"
            + ("" if ece is None else f"; calibration error {ece:.3f}")
        )
    round_ = job.get("round")
    if round_ is not None:
        reasons = ", ".join(f"{k} {v}" for k, v in round_["counts_by_reason"].items())
        lines.append(f"  round    {round_['number']} queued ({reasons})")
    return lines


def train_command(
    name: NameArg,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help="Items the next round picks (default: the latest round's, else 50).",
            show_default=False,
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help="Policy name or JSON/TOML file (default: the latest round's).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Seed of the model and the batch.", min=0),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retrain on the final labels, score the pool and swap the queue to a new round.

    Runs here, now, as a training job (visible in the API and the dashboard
    like the server's background jobs). Exits 1 when the job fails.
    """
    with handle_errors():
        from labelwise.exceptions import ConflictError
        from labelwise.service.loop.jobs import (
            claim_job,
            job_to_dict,
            request_training,
            run_job,
            worker_name,
        )
        from labelwise.service.store.engine import read_only, transaction
        from labelwise.service.store.projects import get_project
        from labelwise.service.store.schema import utcnow

        engine, factory = open_store(db)
        try:
            with transaction(factory) as session:
                project = get_project(session=session, name=name)
                job, _ = request_training(
                    session=session,
                    project=project,
                    trigger="cli",
                    batch_size=batch_size,
                    policy=policy,
                    seed=seed,
                )
                claimed = claim_job(
                    session=session, worker=worker_name(), now=utcnow(), job_id=job.id
                )
                if claimed is None:
                    raise ConflictError(
                        f"Project {name!r} has training job {job.id} running already "
                        f"({job.status}, worker {job.worker}).",
                        hint="Wait for it to finish (GET /api/v1/projects/"
                        f"{name}/train/jobs/{job.id}), then train again.",
                    )
                job_id = claimed.id
            run_with_progress(
                f"Training {name} (plan, then swap the queue)",
                2,
                lambda tick: run_job(factory, job_id, progress=tick),
            )
            with read_only(factory) as session:
                from labelwise.service.store.schema import TrainingJob

                row = session.get(TrainingJob, job_id)
                assert row is not None
                data = job_to_dict(session, row)
        finally:
            engine.dispose()
    if as_json:
        typer.echo(json.dumps(data))
    else:
        for line in _job_lines(name, data):
            typer.echo(line)
    if data["status"] != "done":
        raise typer.Exit(1)


# ------------------------------------------------------------------------ release


class ReleaseGroup(typer.core.TyperGroup):
    """Dispatch ``release NAME ...`` to ``create`` unless NAME is a subcommand."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["create", *args]
        return super().parse_args(ctx, args)


release_app = typer.Typer(
    cls=ReleaseGroup,
    help="Releases: `release NAME [--note TEXT] [--json]` freezes the final labels; "
    "`release list|diff|rollback` show, compare and restore them.",
    no_args_is_help=True,
)


def _manifest_lines(manifest: dict[str, Any]) -> list[str]:
    metric = manifest.get("validation_metric")
    dates = manifest["label_date_range"]
    agreement = manifest["agreement"]
    lines = [
        f"Release {manifest['release_id']} of project {manifest.get('project')!r}: "
        f"{manifest.get('n_labels')} labels (created {manifest['created_at']}).",
        "  labels     "
        + ", ".join(f"{k} {v}" for k, v in manifest["counts_by_label"].items()),
        "  reasons    "
        + ", ".join(f"{k} {v}" for k, v in manifest["counts_by_reason"].items()),
        f"  policies   {', '.join(manifest['policy_versions']) or 'none'}",
        f"  models     {', '.join(manifest['model_versions']) or 'none'}",
        f"  dates      {dates['first']} .. {dates['last']}",
        "  guidelines "
        + (", ".join(str(v) for v in manifest["guideline_versions"]) or "none"),
        f"  agreement  {agreement['agreed']} of {agreement['items_with_overlap']} "
        "overlap items agree",
    ]
    if metric is None:
        lines.append("  validation none (no model could be trained on these labels)")
    elif metric.get("macro_f1") is None:
        lines.append(f"  validation model {metric['model_version']}: no validation set")
    else:
        lines.append(
            f"  validation model {metric['model_version']}: macro F1 "
            f"{metric['macro_f1']:.3f}, accuracy {metric['accuracy']:.3f} on "
            f"{metric['n_validation']} items"
        )
    return lines


@release_app.command("create")
def release_create(
    name: NameArg,
    note: Annotated[
        str | None, typer.Option("--note", help="What the release is for.")
    ] = None,
    db: DbOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the manifest as one JSON object.")
    ] = False,
) -> None:
    """Freeze the final labels into a new immutable release and print its manifest."""
    with handle_errors():
        from labelwise.service.loop.releases import create_release
        from labelwise.service.store.engine import transaction
        from labelwise.service.store.projects import get_project

        engine, factory = open_store(db)
        try:
            with transaction(factory) as session:
                project = get_project(session=session, name=name)
                manifest = dict(
                    create_release(session=session, project=project, note=note).manifest
                )
        finally:
            engine.dispose()
    if as_json:
        typer.echo(json.dumps(manifest))
        return
    for line in _manifest_lines(manifest):
        typer.echo(line)


@release_app.command("list")
def release_list(
    name: NameArg, db: DbOption = None, as_json: JsonOption = False
) -> None:
    """List the project's releases, oldest first."""
    with handle_errors():
        from labelwise.service.loop.releases import list_releases, release_summary
        from labelwise.service.store.engine import read_only
        from labelwise.service.store.projects import get_project

        engine, factory = open_store(db)
        try:
            with read_only(factory) as session:
                project = get_project(session=session, name=name)
                rows = [
                    release_summary(row)
                    for row in list_releases(session=session, project=project)
                ]
        finally:
            engine.dispose()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo(f"Project {name!r} has no release yet.")
    for row in rows:
        note = f"  {row['note']}" if row["note"] else ""
        typer.echo(
            f"{row['release_id']}  {row['created_at']}  {row['n_labels']} labels{note}"
        )


def _shown(label: Any) -> str:
    return "|".join(label) if isinstance(label, list) else str(label)


@release_app.command("diff")
def release_diff(
    name: NameArg,
    a: Annotated[str, typer.Argument(metavar="A", help="The older release id.")],
    b: Annotated[str, typer.Argument(metavar="B", help="The newer release id.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the labels added, removed and changed from release A to release B."""
    with handle_errors():
        from labelwise.service.loop.releases import diff_releases
        from labelwise.service.store.engine import read_only
        from labelwise.service.store.projects import get_project

        engine, factory = open_store(db)
        try:
            with read_only(factory) as session:
                project = get_project(session=session, name=name)
                diff = diff_releases(session=session, project=project, a=a, b=b)
        finally:
            engine.dispose()
    if as_json:
        typer.echo(json.dumps(diff))
        return
    counts = diff["counts"]
    typer.echo(
        f"{a} -> {b}: {counts['added']} added, {counts['removed']} removed, "
        f"{counts['changed']} changed, {counts['unchanged']} unchanged."
    )
    for row in diff["added"]:
        typer.echo(f"+ {row['external_id']}  {_shown(row['label'])}")
    for row in diff["removed"]:
        typer.echo(f"- {row['external_id']}  {_shown(row['label'])}")
    for row in diff["changed"]:
        typer.echo(
            f"~ {row['external_id']}  {_shown(row['old'])} -> {_shown(row['new'])}"
        )


@release_app.command("rollback")
def release_rollback(
    name: NameArg,
    release_id: Annotated[
        str, typer.Argument(metavar="RELEASE_ID", help="The release to go back to.")
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reset the final labels to a release's; every raw annotation is kept."""
    with handle_errors():
        from labelwise.service.loop.releases import rollback_to_release
        from labelwise.service.store.engine import transaction
        from labelwise.service.store.projects import get_project

        engine, factory = open_store(db)
        try:
            with transaction(factory) as session:
                project = get_project(session=session, name=name)
                result = rollback_to_release(
                    session=session, project=project, release_id=release_id
                )
        finally:
            engine.dispose()
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(
        f"Project {name!r} reset to release {release_id}: {result['restored']} "
        f"restored, {result['changed']} changed, {result['removed']} removed, "
        f"{result['unchanged']} unchanged. Every annotation is kept."
    )
    if result["removed"]:
        stderr.print(
            f"{result['removed']} items lost their final label and can be selected "
            "again.",
            markup=False,
        )
