"""Render docs/cli.md from the commands' own --help (``scripts/docs`` writes it)."""

from __future__ import annotations

from typing import Any

import typer
from typer.testing import CliRunner

__all__ = ["command_paths", "render_cli_docs"]

_ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}


def command_paths(app: typer.Typer) -> list[list[str]]:
    """Every command path of ``app``: [], ["simulate"], ["bench", "efficiency"], ..."""
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        paths.append(path)
        for name in sorted(getattr(command, "commands", {}) or {}):
            walk(command.commands[name], [*path, name])

    walk(root, [])
    return paths


def render_cli_docs(app: typer.Typer) -> str:
    """The markdown page: one section per command with its --help text."""
    runner = CliRunner()
    parts = [
        "# Command-line reference",
        "",
        "Generated from `labelwise --help` by `scripts/docs`; a test fails when it is "
        "stale.",
        "",
    ]
    for path in command_paths(app):
        result = runner.invoke(app, [*path, "--help"], env=_ENV, color=False)
        text = "\n".join(line.rstrip() for line in result.output.splitlines()).strip()
        parts.append(f"## `{' '.join(['labelwise', *path])}`")
        parts += ["", "```", text, "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover - used by scripts/docs
    import sys

    from labelwise.cli import app

    sys.stdout.write(render_cli_docs(app))
