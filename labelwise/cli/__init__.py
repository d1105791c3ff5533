"""The ``labelwise`` command line (Typer)."""

from __future__ import annotations

import typer

from labelwise.cli._bench import bench_app
from labelwise.cli._policies import policies, strategies
from labelwise.cli._simulate import simulate

__all__ = ["app", "main"]

app = typer.Typer(
    name="labelwise",
    help="Active learning as an operation: rank, batch, label, prove it beats random.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("simulate")(simulate)
app.command("policies")(policies)
app.command("strategies")(strategies)
app.add_typer(bench_app, name="bench")


def main() -> None:
    """Entry point of the ``labelwise`` script."""
    app()
