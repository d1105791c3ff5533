"""API fixtures: create_app over the store_url database (SQLite and PostgreSQL).

Argon2 at its default cost takes a few hundred milliseconds per hash; the API
tests swap in a cheap hasher so that creating members stays fast. The CLI and
serve tests keep the real one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apitools import World, make_settings
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from labelwise.service.api import create_app
from labelwise.service.store import members as members_store


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(members_store, "_hasher", lambda: cheap)
        yield


@pytest.fixture
def app(store_url):
    return create_app(make_settings(store_url))


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def world(app, client) -> World:
    return World(factory=app.state.session_factory)
