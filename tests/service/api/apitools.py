"""Helpers of the API tests: settings, auth headers, seeding, the error-shape check."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import insert, select

from labelwise.service.settings import Settings
from labelwise.service.store.engine import transaction
from labelwise.service.store.members import create_member
from labelwise.service.store.projects import create_project
from labelwise.service.store.schema import Item, Project

SECRET = "test-secret-key-not-the-placeholder"
API = "/api/v1"


def make_settings(url: str) -> Settings:
    return Settings(database_url=url, secret_key=SECRET, dev=False)


def bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def add_items(session, project: Project, n: int, *, prefix: str = "item") -> None:
    session.execute(
        insert(Item),
        [
            {
                "project_id": project.id,
                "external_id": f"{prefix}-{i}",
                "role": "pool",
                "fields": {"text": f"ticket {i} of {project.name}: please help"},
                "content_hash": hashlib.sha256(f"{prefix}{i}".encode()).hexdigest(),
                "source": {},
            }
            for i in range(n)
        ],
    )


@dataclass
class World:
    """Projects and members made straight in the store; tokens by member name."""

    factory: object
    tokens: dict[str, str] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)

    def project(self, name: str, *, items: int = 0) -> None:
        with transaction(self.factory) as session:
            project = create_project(session=session, name=name, labels=["bug", "ask"])
            if items:
                add_items(session, project, items, prefix=name)

    def member(self, name: str, role: str, project: str | None = None) -> str:
        with transaction(self.factory) as session:
            target = None
            if project is not None:
                target = session.scalar(select(Project).where(Project.name == project))
            _, password, token = create_member(
                session=session, name=name, role=role, project=target
            )
        self.tokens[name] = token
        self.passwords[name] = password
        return token

    def headers(self, name: str | None) -> dict[str, str]:
        return bearer(None if name is None else self.tokens[name])


def assert_canonical_error(response, status: int, code: str | None = None) -> dict:
    """The one error body: exactly error.{code, message, hint, details}."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "hint", "details"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["hint"] is None or isinstance(error["hint"], str)
    assert isinstance(error["details"], list)
    if code is not None:
        assert error["code"] == code, error
    return error


def truncate_postgres(url: str) -> None:
    """Empty every table of the PostgreSQL database at ``url``."""
    from sqlalchemy import text

    from labelwise.service.store.engine import make_engine
    from labelwise.service.store.schema import Base

    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


def claim(factory, member: str, project: str) -> int:
    """Claim an item of ``project`` for ``member`` straight through the service."""
    from datetime import UTC, datetime

    from labelwise.service.queue.service import claim_next
    from labelwise.service.store.schema import Member

    with transaction(factory) as session:
        result = claim_next(
            session=session,
            project=session.scalar(select(Project).where(Project.name == project)),
            member=session.scalar(select(Member).where(Member.name == member)),
            now=datetime.now(UTC),
            ttl_seconds=900,
        )
        assert result, result
        return result.lease_id


def submit(factory, member: str, lease_id: int, label: str = "bug") -> int:
    """Answer ``lease_id`` as ``member`` straight through the service."""
    from datetime import UTC, datetime

    from labelwise.service.queue.service import submit_annotation
    from labelwise.service.store.schema import Member

    with transaction(factory) as session:
        annotation, _ = submit_annotation(
            session=session,
            lease_id=lease_id,
            member=session.scalar(select(Member).where(Member.name == member)),
            label=label,
            now=datetime.now(UTC),
        )
        return annotation.id
