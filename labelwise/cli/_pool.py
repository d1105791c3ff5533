"""``labelwise pool``: register Parquet files as a project's pool, list, remove."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from sqlalchemy.orm import Session

from labelwise.cli._db import DbOption, open_store
from labelwise.cli._errors import handle_errors

if TYPE_CHECKING:
    from labelwise.service.store.schema import PoolSource

__all__ = ["pool_app"]

T = TypeVar("T")

pool_app = typer.Typer(
    help="External pools: Parquet files a round streams instead of imported items.",
    no_args_is_help=True,
)

NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="Project name.", show_default=False)
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (for scripts) instead of text.")
]


@contextmanager
def _store(db: str | None, *, write: bool) -> Iterator[Session]:
    from labelwise.service.store import read_only, transaction

    engine, factory = open_store(db)
    try:
        with (transaction if write else read_only)(factory) as session:
            yield session
    finally:
        engine.dispose()


def _run(db: str | None, work: Callable[[Session], T], *, write: bool) -> T:
    with handle_errors(), _store(db, write=write) as session:
        return work(session)


def _as_dict(source: PoolSource) -> dict[str, Any]:
    return {
        "path": source.path,
        "id_column": source.id_column,
        "feature_columns": list(source.feature_columns or []),
        "text_column": source.text_column,
        "n_files": source.n_files,
        "n_rows": source.n_rows,
    }


@pool_app.command("add")
def add(
    name: NameArg,
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH_OR_GLOB",
            help="A Parquet file, a folder of them, a quoted glob, or an fsspec URL.",
            show_default=False,
        ),
    ],
    id_column: Annotated[
        str, typer.Option("--id-column", help="Column of the items' external ids.")
    ] = "id",
    features: Annotated[
        str | None,
        typer.Option(
            "--features",
            help="Comma-separated feature columns (default: the project's fields).",
            show_default=False,
        ),
    ] = None,
    text_column: Annotated[
        str | None,
        typer.Option(
            "--text-column",
            help="Column of the texts (default: the project's text field).",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register Parquet files as the project's pool; nothing is copied.

    Rounds then stream the files in chunks; only the items they select are
    stored. The files' columns are checked now (metadata only).
    """
    from labelwise.service.store.pools import add_pool_source
    from labelwise.service.store.projects import get_project

    def work(session: Session) -> dict[str, Any]:
        project = get_project(session=session, name=name)
        columns = [c.strip() for c in features.split(",")] if features else None
        source = add_pool_source(
            session=session,
            project=project,
            path=path,
            id_column=id_column,
            feature_columns=columns,
            text_column=text_column,
        )
        return _as_dict(source)

    info = _run(db, work, write=True)
    if as_json:
        typer.echo(json.dumps(info))
        return
    typer.echo(
        f"Project {name!r} now reads its pool from {info['path']!r}: "
        f"{info['n_files']} file(s), {info['n_rows']:,} rows."
    )


@pool_app.command("list")
def list_(name: NameArg, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show the project's external pool, if any."""
    from labelwise.service.store.pools import list_pool_sources
    from labelwise.service.store.projects import get_project

    def work(session: Session) -> list[dict[str, Any]]:
        project = get_project(session=session, name=name)
        return [
            _as_dict(s) for s in list_pool_sources(session=session, project=project)
        ]

    sources = _run(db, work, write=False)
    if as_json:
        typer.echo(json.dumps(sources))
        return
    if not sources:
        typer.echo(f"Project {name!r} keeps its pool in the database.")
    for info in sources:
        columns = info["text_column"] or ", ".join(info["feature_columns"])
        typer.echo(
            f"{info['path']}  id={info['id_column']}  columns={columns}  "
            f"{info['n_files']} file(s), {info['n_rows']:,} rows"
        )


@pool_app.command("remove")
def remove(name: NameArg, db: DbOption = None) -> None:
    """Unregister the project's external pool (stored items stay)."""
    from labelwise.service.store.pools import remove_pool_source
    from labelwise.service.store.projects import get_project

    def work(session: Session) -> str:
        project = get_project(session=session, name=name)
        return remove_pool_source(session=session, project=project).path

    path = _run(db, work, write=True)
    typer.echo(f"Project {name!r} no longer reads {path!r}.")
