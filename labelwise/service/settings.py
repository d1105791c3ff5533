"""The service's one Settings object, read from ``LABELWISE_*`` environment variables.

Nothing is built at import time: the CLI and ``create_app`` call
:func:`load_settings` (or build ``Settings(...)`` in tests). Every field is
documented in ``docs/settings.md``; a test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from labelwise.exceptions import ConfigError

__all__ = ["ENV_PREFIX", "PLACEHOLDER_SECRET", "Settings", "load_settings"]

ENV_PREFIX = "LABELWISE_"
PLACEHOLDER_SECRET = "change-me"
DATA_DIR_NAME = "labelwise-data"


class Settings(BaseSettings):
    """Service settings; each field ``x`` is read from ``LABELWISE_X``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True
    )

    database_url: str | None = Field(
        default=None,
        description="Database URL; None means the SQLite file ./labelwise.db.",
    )
    data_dir: Path | None = Field(
        default=None,
        description="Folder for model artifacts and score caches; None means a "
        "labelwise-data folder beside the SQLite file (or ./labelwise-data).",
    )
    dev: bool = Field(
        default=False, description="Development mode: allows unsafe defaults."
    )
    secret_key: str = Field(
        default=PLACEHOLDER_SECRET,
        repr=False,
        description="Secret for signing sessions and tokens; required outside dev.",
    )
    lease_ttl_seconds: int = Field(
        default=900, gt=0, description="How long an annotator holds a claimed item."
    )
    retrain_every: int = Field(
        default=50, gt=0, description="Retrain after this many new final labels."
    )
    train_worker: bool = Field(
        default=True,
        description="Run a background training worker in each server process.",
    )
    train_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often the training worker looks for jobs and triggers.",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        gt=0,
        description="Largest request body (a submit, any JSON or form post) in "
        "bytes; larger ones get 413.",
    )
    max_upload_bytes: int = Field(
        default=200 * 1_048_576,
        gt=0,
        description="Largest file upload (the dashboard's import) in bytes; "
        "larger ones get 413.",
    )

    def sqlalchemy_url(self) -> str:
        """The database URL for SQLAlchemy (SQLite ./labelwise.db by default)."""
        from labelwise.service.store.engine import normalize_url

        return normalize_url(self.database_url)

    def resolved_data_dir(self) -> Path:
        """The absolute data folder: ``data_dir``, else beside the SQLite db or cwd."""
        if self.data_dir is not None:
            return self.data_dir.expanduser().resolve()
        from sqlalchemy.engine import make_url

        url = self.sqlalchemy_url()
        if url.startswith("sqlite"):
            database = make_url(url).database
            if database and database != ":memory:":
                return Path(database).resolve().parent / DATA_DIR_NAME
        return Path.cwd() / DATA_DIR_NAME

    def check_production(self) -> None:
        """Refuse unsafe defaults (the placeholder secret) unless ``dev`` is on."""
        if self.dev:
            return
        if not self.secret_key.strip() or self.secret_key == PLACEHOLDER_SECRET:
            given = "empty" if not self.secret_key.strip() else "the placeholder"
            raise ConfigError(
                f"{ENV_PREFIX}SECRET_KEY must be a real secret outside dev mode. "
                f"Got {given} {self.secret_key!r} instead.",
                hint=f"Set {ENV_PREFIX}SECRET_KEY to a long random string, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`, "
                f"or set {ENV_PREFIX}DEV=1 for local development only.",
            )


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``overrides``; bad values raise ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            problems.append(
                f"{field} ({ENV_PREFIX}{field.upper()}): {error['msg']}; "
                f"got {error.get('input')!r}"
            )
        raise ConfigError(
            "Invalid labelwise settings: " + "; ".join(problems) + ".",
            hint="Fix those environment variables (or values); every setting is "
            "described in docs/settings.md.",
        ) from exc
