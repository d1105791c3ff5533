"""A small named registry whose unknown-name error lists the valid names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from labelwise.exceptions import UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A plain dict of named things with a helpful lookup error.

    Parameters
    ----------
    kind : str
        What the registry holds, for messages ("strategy", "stopping rule").
    names_function : str
        The public function that lists the names, quoted in the error.
    """

    def __init__(self, kind: str, names_function: str) -> None:
        self.kind = kind
        self.names_function = names_function
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        """Add ``item`` under ``name``; a name may be registered once."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        """Return the item registered as ``name``."""
        try:
            return self._items[name]
        except KeyError:
            article = "an" if self.kind[:1] in "aeiou" else "a"
            raise UnknownNameError(
                f"{name!r} is not {article} {self.kind}; valid names: "
                f"{', '.join(self.names())} ({self.names_function}())."
            ) from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
