"""Translate labelwise errors into a rich message on stderr and an exit code."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from labelwise.exceptions import (
    ConfigError,
    ConflictError,
    ImportRejected,
    InvalidInputError,
    LabelwiseError,
    NotFoundError,
    PermissionDenied,
)

__all__ = ["EXIT_CODES", "exit_code", "handle_errors", "stderr", "with_errors"]

stderr = Console(stderr=True, highlight=False, soft_wrap=True)

#: Exit code by error class; the first matching class (in order) wins.
EXIT_CODES: tuple[tuple[type[LabelwiseError], int], ...] = (
    (ImportRejected, 3),
    (InvalidInputError, 2),
    (ConfigError, 2),
    (NotFoundError, 4),
    (ConflictError, 5),
    (PermissionDenied, 6),
    (LabelwiseError, 1),
)

P = ParamSpec("P")
R = TypeVar("R")


def exit_code(error: LabelwiseError) -> int:
    """The exit code for ``error``."""
    return next(code for cls, code in EXIT_CODES if isinstance(error, cls))


@contextmanager
def handle_errors() -> Iterator[None]:
    """Print a LabelwiseError as ``Error: message`` (+ hint) and exit non-zero."""
    try:
        yield
    except LabelwiseError as error:
        stderr.print(f"[bold red]Error:[/] {escape(error.message)}")
        if isinstance(error, ImportRejected):
            for record in error.errors:
                stderr.print(f"  {record}", markup=False)
        if error.hint:
            stderr.print(f"[yellow]Hint:[/] {escape(error.hint)}")
        raise typer.Exit(exit_code(error)) from None


def with_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator form of :func:`handle_errors`."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with handle_errors():
            return func(*args, **kwargs)

    return wrapper
