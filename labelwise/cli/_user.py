"""``labelwise user``: add members, list them, rotate a member's API token.

A password or token is printed once, when it is made, and never stored in
clear; lose it and rotate the token (``labelwise user token NAME``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from sqlalchemy.orm import Session

from labelwise.cli._db import DbOption, open_store
from labelwise.cli._errors import handle_errors, stderr

if TYPE_CHECKING:
    from labelwise.service.store.schema import Member

__all__ = ["user_app"]

T = TypeVar("T")

ROLES = "admin|lead|reviewer|annotator"

user_app = typer.Typer(
    help="Members: add them with a role, list them, rotate their API tokens.",
    no_args_is_help=True,
)

NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="Member name.", show_default=False)
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (for scripts) instead of text.")
]


def _run(db: str | None, work: Callable[[Session], T], *, write: bool) -> T:
    from labelwise.service.store.engine import read_only, transaction

    with handle_errors():
        engine, factory = open_store(db)
        try:
            with (transaction if write else read_only)(factory) as session:
                return work(session)
        finally:
            engine.dispose()


def _iso(moment: datetime) -> str:
    from labelwise.service.store.schema import as_utc

    return as_utc(moment).isoformat()


@user_app.command("add")
def add(
    name: NameArg,
    role: Annotated[
        str,
        typer.Option(
            "--role", metavar=ROLES, help="The member's role.", show_default=False
        ),
    ],
    project: Annotated[
        str | None,
        typer.Option("--project", help="Add the member to this project."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print {"name", "role", "password", "token"} as one JSON object.',
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Add a member and print its one-time password and API token."""
    from labelwise.service.store.members import create_member

    def work(session: Session) -> dict[str, str]:
        member, password, token = create_member(
            session=session, name=name, role=role, project=project
        )
        return {
            "name": member.name,
            "role": member.role,
            "password": password,
            "token": token,
        }

    created = _run(db, work, write=True)
    if as_json:
        typer.echo(json.dumps(created))
        return
    where = f" in project {project!r}" if project else ""
    typer.echo(f"Added {created['role']} {created['name']!r}{where}.")
    typer.echo(f"password: {created['password']}")
    typer.echo(f"token:    {created['token']}")
    stderr.print(
        "Shown once: labelwise stores only their hashes. Send the token as "
        "'Authorization: Bearer TOKEN'."
    )


def _row(member: Member) -> dict[str, Any]:
    return {
        "name": member.name,
        "role": member.role,
        "active": member.active,
        "created_at": _iso(member.created_at),
    }


@user_app.command("list")
def list_(as_json: JsonOption = False, db: DbOption = None) -> None:
    """List the members, by name (never their passwords or tokens)."""
    from labelwise.service.store.members import list_members

    rows = _run(db, lambda s: [_row(m) for m in list_members(session=s)], write=False)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        stderr.print(
            f"No members yet. Add one with `labelwise user add NAME --role {ROLES}`."
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "role", "active", "created")
    for row in rows:
        table.add_row(
            row["name"],
            row["role"],
            "yes" if row["active"] else "no",
            row["created_at"][:19],
        )
    Console(highlight=False).print(table)


@user_app.command("token")
def token(name: NameArg, db: DbOption = None) -> None:
    """Give a member a new API token and print it; the old token stops working."""
    from labelwise.service.store.members import rotate_token

    new = _run(db, lambda s: rotate_token(session=s, member=name)[1], write=True)
    typer.echo(new)
    stderr.print(f"New token for {name!r}, shown once; the old one no longer works.")
