"""``labelwise project quality``: a project's dispute rules and aggregation method."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from labelwise.cli._db import DbOption, open_store
from labelwise.cli._errors import handle_errors

__all__ = ["quality_command"]


def _switch(name: str, help: str) -> Any:
    return typer.Option(f"--{name}/--no-{name}", help=help, show_default=False)


def quality_command(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Project name.", show_default=False)
    ],
    disagreement: Annotated[
        bool | None, _switch("disagreement", "Send items whose votes differ to review.")
    ] = None,
    gold_failure: Annotated[
        bool | None,
        _switch("gold-failure", "Send gold items answered wrongly to review."),
    ] = None,
    flag: Annotated[
        bool | None, _switch("flag", "Send flagged items to review.")
    ] = None,
    aggregation: Annotated[
        str | None,
        typer.Option(
            help="How votes become final labels: majority or dawid_skene.",
            show_default=False,
        ),
    ] = None,
    tie: Annotated[
        str | None,
        typer.Option(help="Majority tie rule: first or random.", show_default=False),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Show or change a project's dispute rules and aggregation (items re-decided)."""
    from labelwise.service.quality import (
        QualitySettings,
        reaggregate,
        update_quality_settings,
    )
    from labelwise.service.store import get_project, read_only, transaction

    rules = {
        key: value
        for key, value in [
            ("disagreement", disagreement),
            ("gold_failure", gold_failure),
            ("flag", flag),
        ]
        if value is not None
    }
    changes: dict[str, Any] = {"dispute_rules": rules} if rules else {}
    changes.update(
        {k: v for k, v in [("aggregation", aggregation), ("tie", tie)] if v is not None}
    )

    def work(session: Session) -> dict[str, Any]:
        project = get_project(session=session, name=name)
        if not changes:
            return {"settings": QualitySettings.of(project).to_dict()}
        settings = update_quality_settings(
            session=session, project=project, changes=changes
        )
        summary = reaggregate(session=session, project=project)
        return {"settings": settings.to_dict(), "items": summary.to_dict()}

    with handle_errors():
        engine, factory = open_store(db)
        try:
            with (transaction if changes else read_only)(factory) as session:
                result = work(session)
        finally:
            engine.dispose()
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    settings = result["settings"]
    on = [k for k, v in settings["dispute_rules"].items() if v]
    typer.echo(
        f"Project {name!r}: disputes to review on "
        f"{', '.join(on) if on else 'nothing'}; aggregation "
        f"{settings['aggregation']} (ties: {settings['tie']})."
    )
    if "items" in result:
        items = result["items"]
        typer.echo(
            f"Re-decided: {items['final']} final, {items['review']} to review, "
            f"{items['waiting']} waiting, {items['kept']} settled by reviewers kept."
        )
