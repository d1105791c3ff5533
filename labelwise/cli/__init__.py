"""The ``labelwise`` command line (Typer)."""

from __future__ import annotations

import typer

from labelwise.cli._agreement import agreement
from labelwise.cli._bench import bench_app
from labelwise.cli._demo import demo_command
from labelwise.cli._io import export_command, import_command
from labelwise.cli._loop import release_app, train_command
from labelwise.cli._policies import policies, strategies
from labelwise.cli._pool import pool_app
from labelwise.cli._project import project_app
from labelwise.cli._quality import quality_command
from labelwise.cli._report import report_command
from labelwise.cli._round import round_command
from labelwise.cli._serve import serve_command
from labelwise.cli._simulate import simulate
from labelwise.cli._user import user_app
from labelwise.cli._worker import worker_command

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
app.command("round")(round_command)
app.add_typer(bench_app, name="bench")
app.command("import")(import_command)
app.command("export")(export_command)
app.add_typer(project_app, name="project")
app.add_typer(user_app, name="user")
app.command("serve")(serve_command)
app.command("demo")(demo_command)
app.command("agreement")(agreement)
project_app.command("quality")(quality_command)
app.command("train")(train_command)
app.add_typer(release_app, name="release")
app.command("report")(report_command)
app.add_typer(pool_app, name="pool")
app.command("worker")(worker_command)


def main() -> None:
    """Entry point of the ``labelwise`` script."""
    app()
