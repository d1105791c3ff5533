"""``labelwise policies`` and ``labelwise strategies``: what can be named."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from labelwise.cli._errors import handle_errors

__all__ = ["policies", "strategies"]


def policies(
    name: Annotated[
        str | None, typer.Argument(help="Show one policy (name or JSON/TOML file).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the policies as JSON.")
    ] = False,
) -> None:
    """List the named batch policies with their versions and mixes."""
    with handle_errors():
        from labelwise.policy import get_policy, get_policy_names, load_policy

        chosen = (
            [load_policy(name)] if name else [get_policy(n) for n in get_policy_names()]
        )
        if as_json:
            payload = [{"version": p.version, **p.to_dict()} for p in chosen]
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
            return
        table = Table(title="Batch policies (labelwise simulate --policy NAME)")
        table.add_column("name")
        table.add_column("version")
        table.add_column("mix")
        for policy in chosen:
            parts = (
                [f"random {policy.random_fraction:.0%}"]
                if policy.random_fraction
                else []
            )
            parts += [
                f"{c.reason}/{c.strategy} {c.share:.0%}" for c in policy.components
            ]
            table.add_row(policy.name, policy.version, ", ".join(parts))
        Console().print(table)


def strategies() -> None:
    """List the registered scoring strategies and what each reads."""
    from labelwise.strategies import get_strategy, get_strategy_names

    table = Table(title="Scoring strategies (higher score = label first)")
    table.add_column("name")
    table.add_column("reads")
    table.add_column("summary")
    for name in get_strategy_names():
        strategy = get_strategy(name)
        doc = (type(strategy).__doc__ or "").strip().splitlines()[0]
        table.add_row(name, ", ".join(strategy.requires), doc)
    Console().print(table)
