"""Rich progress bars for long work, on stderr so --json output stays clean."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from labelwise.cli._errors import stderr

__all__ = ["run_with_progress"]

T = TypeVar("T")


def run_with_progress(
    description: str, total: int, work: Callable[[Callable[[], None]], T]
) -> T:
    """Run ``work(tick)`` under a progress bar of ``total`` steps."""
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=total)
        return work(lambda: progress.advance(task))
