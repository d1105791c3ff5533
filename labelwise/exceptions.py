"""The labelwise exception tree.

Every error labelwise raises on purpose derives from :class:`LabelwiseError`.
Domain code raises these with context as keyword-only fields; only the edges
(the CLI and the API) translate them into exit codes or HTTP statuses.

::

    LabelwiseError
    ├── ConfigError                 a setting or spec is wrong (bad policy, bad URL)
    ├── InvalidInputError           input data is malformed (bad probas, bad file)
    │   ├── UnknownNameError        a registry lookup by a name that is not registered
    │   └── ImportRejected          an import was refused; carries every bad record
    ├── NotFoundError               a project, item, lease or file does not exist
    ├── ConflictError               the request clashes with the current state
    │   ├── LeaseExpired            the lease ran out before the submit
    │   └── CapReached              a per-annotator cap forbids more items now
    ├── PermissionDenied            the caller's role or membership does not allow it
    └── PoolExhausted               not enough unlabeled items for what was asked

Each message names what was expected, what was given and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CapReached",
    "ConfigError",
    "ConflictError",
    "ImportRejected",
    "InvalidInputError",
    "LabelwiseError",
    "LeaseExpired",
    "NotFoundError",
    "PermissionDenied",
    "PoolExhausted",
    "RecordError",
    "UnknownNameError",
]


class LabelwiseError(Exception):
    """Root of every error labelwise raises on purpose.

    Parameters
    ----------
    message : str
        What was expected, what was given.
    hint : str, optional
        What to do about it.
    """

    code = "labelwise_error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} {self.hint}"
        return self.message


class ConfigError(LabelwiseError):
    """A setting, a spec or a command-line option is wrong."""

    code = "config_error"


class InvalidInputError(LabelwiseError, ValueError):
    """Input data is malformed: bad probabilities, no label column, ..."""

    code = "invalid_input"


class UnknownNameError(InvalidInputError, KeyError):
    """A registry lookup of an unregistered name; the message lists valid names."""

    code = "unknown_name"

    def __str__(self) -> str:  # KeyError would repr() the message
        return LabelwiseError.__str__(self)


@dataclass(frozen=True)
class RecordError:
    """One bad record of an import: where it is and what is wrong with it."""

    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.message}"


class ImportRejected(InvalidInputError):
    """An import was refused because some records are bad; nothing was written."""

    code = "import_rejected"

    def __init__(
        self,
        message: str,
        *,
        errors: list[RecordError],
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.errors = errors


class NotFoundError(LabelwiseError):
    """A project, item, lease, model version or file does not exist."""

    code = "not_found"


class ConflictError(LabelwiseError):
    """The request clashes with the current state."""

    code = "conflict"


class LeaseExpired(ConflictError):
    """The lease ran out before the annotation was submitted."""

    code = "lease_expired"


class CapReached(ConflictError):
    """A per-annotator cap forbids handing out more items now."""

    code = "cap_reached"


class PermissionDenied(LabelwiseError):
    """The caller's role or project membership does not allow this."""

    code = "permission_denied"


class PoolExhausted(LabelwiseError):
    """There are fewer unlabeled items than the request needs."""

    code = "pool_exhausted"
