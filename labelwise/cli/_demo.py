"""``labelwise demo``: a ready-to-label project on SQLite, served with the UI.

It writes the bundled demo data (:mod:`labelwise.demo`) as CSV files into the
folder, imports the train split as an unlabeled pool (plus a few seed labels
per class) and the test split as labeled validation items, creates a lead and
two annotators with random passwords (printed once), runs a first round and
serves the UI and the API. Everything is local and offline.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from labelwise.cli._errors import handle_errors, stderr

__all__ = ["DEMO_PROJECT", "demo_command", "setup_demo"]

DEMO_PROJECT = "support"
#: Seed labels per class imported with the pool (5 classes: 30 in all).
SEEDS_PER_CLASS = 6
#: Items in the first round.
FIRST_BATCH = 100
_GUIDELINE = """\
Label each customer message with the one intent it is about.

- card_arrival: the customer waits for a card that has not arrived yet.
- exchange_rate: questions about the rate or fees when converting currencies.
- lost_or_stolen_card: the card is lost, stolen or was used by someone else.
- top_up_failed: a top-up did not go through (declined, pending, error).
- top_up_reverted: a top-up went through and was then taken back or refunded.

When a message fits two intents, pick the one the customer needs help with
first. If you cannot tell, flag it as ambiguous and say why in the note.
"""
_MEMBERS = (("lead", "lead"), ("ann1", "annotator"), ("ann2", "annotator"))


@dataclass(frozen=True)
class DemoSetup:
    """What :func:`setup_demo` made: the database URL, logins and first round."""

    database_url: str
    logins: tuple[tuple[str, str, str], ...]
    round_number: int
    selected: int


def _write_files(folder: Path) -> tuple[Path, Path, Path]:
    from labelwise.demo import load_demo

    frame = load_demo()
    train = frame[frame.split == "train"]
    test = frame[frame.split == "test"]
    seeds = train.groupby("label", sort=True).head(SEEDS_PER_CLASS)
    pool = train.drop(index=seeds.index)
    paths = (folder / "seeds.csv", folder / "pool.csv", folder / "validation.csv")
    seeds[["id", "text", "label"]].to_csv(paths[0], index=False)
    pool[["id", "text"]].to_csv(paths[1], index=False)
    test[["id", "text", "label"]].to_csv(paths[2], index=False)
    return paths


def setup_demo(folder: Path, *, secret_key: str) -> DemoSetup:
    """Create the demo database in ``folder``: project, items, members, a round."""
    from labelwise.cli._db import open_store
    from labelwise.demo import DEMO_LABELS
    from labelwise.service.io import import_file
    from labelwise.service.loop.rounds import run_round
    from labelwise.service.settings import load_settings
    from labelwise.service.store.engine import transaction
    from labelwise.service.store.members import create_member
    from labelwise.service.store.projects import create_project, get_project

    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "labelwise.db"
    if database.exists():
        raise typer.BadParameter(
            f"Expected a folder without a demo database; {database} already "
            "exists. Pass another --dir, or leave --dir out for a new temporary "
            f"folder; to serve that database again: LABELWISE_DEV=1 labelwise "
            f"serve --db {database}",
            param_hint="--dir",
        )
    url = f"sqlite:///{database.resolve()}"
    settings = load_settings(database_url=url, dev=True, secret_key=secret_key)
    seeds, pool, validation = _write_files(folder)
    engine, factory = open_store(url)
    try:
        with transaction(factory) as session:
            project = create_project(
                session=session,
                name=DEMO_PROJECT,
                labels=list(DEMO_LABELS),
                text_field="text",
                guideline=_GUIDELINE,
            )
            project.settings = {"gold_feedback": True}
            import_file(session=session, project=project, path=seeds, role="pool")
            import_file(session=session, project=project, path=pool, role="pool")
            import_file(
                session=session, project=project, path=validation, role="validation"
            )
            logins = []
            for name, role in _MEMBERS:
                _, password, _ = create_member(
                    session=session, name=name, role=role, project=project
                )
                logins.append((name, role, password))
        with transaction(factory) as session:
            project = get_project(session=session, name=DEMO_PROJECT)
            summary = run_round(
                session=session,
                project=project,
                batch_size=FIRST_BATCH,
                seed=0,
                data_dir=settings.resolved_data_dir(),
            )
    finally:
        engine.dispose()
    return DemoSetup(url, tuple(logins), summary.round_number, summary.selected)


def demo_command(
    folder: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            file_okay=False,
            help="Folder for the demo database; default: a new temporary folder.",
            show_default=False,
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")
    ] = 8000,
    serve: Annotated[
        bool,
        typer.Option("--serve/--no-serve", help="Serve the UI after setting up."),
    ] = True,
) -> None:
    """Set up a demo project (SQLite, bundled data, 3 logins) and serve the UI.

    Creates the project 'support' with 838 customer messages in 5 intents, a
    lead and two annotators with random passwords (printed once), runs a
    first round of 100 items and serves the web UI. Development mode: do not
    expose it beyond your machine.
    """
    secret = secrets.token_urlsafe(32)
    where = (
        folder
        if folder is not None
        else Path(tempfile.mkdtemp(prefix="labelwise-demo-"))
    )
    with handle_errors():
        setup = setup_demo(where, secret_key=secret)
    url = f"http://{host}:{port}/"
    typer.echo(f"Demo database: {where / 'labelwise.db'}")
    typer.echo(
        f"Project {DEMO_PROJECT!r}: round {setup.round_number} queued "
        f"{setup.selected} items."
    )
    typer.echo("Logins (shown once, stored only hashed):")
    for name, role, password in setup.logins:
        typer.echo(f"  {name:<5} ({role}): {password}")
    typer.echo(f"Open {url}")
    sys.stdout.flush()
    if not serve:
        return
    import uvicorn

    from labelwise.service.api.app import create_app
    from labelwise.service.settings import load_settings

    settings = load_settings(
        database_url=setup.database_url, dev=True, secret_key=secret
    )
    stderr.print(f"labelwise demo on {url} (Ctrl+C stops it)")
    uvicorn.run(create_app(settings), host=host, port=port)
