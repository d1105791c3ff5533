"""Schemathesis over the API's own OpenAPI schema, with a valid token of each role.

For every operation of ``/api/v1/openapi.json`` and every role (annotator,
reviewer, lead, admin) hypothesis draws ``EXAMPLES`` requests (valid and
invalid bodies, paths and queries) and sends them to the app, on SQLite and
PostgreSQL. Every answer must be below 500; every error must carry the one JSON
error body; every 2xx must match its documented schema. The draws are
derandomized so CI is repeatable; ``LABELWISE_FUZZ_EXAMPLES`` and
``LABELWISE_FUZZ_RANDOM=1`` widen a local run.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass

import pytest
import schemathesis
from apitools import API, World, make_settings, truncate_postgres
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from labelwise.service.api import create_app

EXAMPLES = int(os.environ.get("LABELWISE_FUZZ_EXAMPLES", "6"))
DERANDOMIZE = os.environ.get("LABELWISE_FUZZ_RANDOM", "") != "1"
ROLES = ("annotator", "reviewer", "lead", "admin")


@dataclass
class Target:
    app: object
    world: World
    leases: list[int]


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def target(request, tmp_path_factory):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("fuzz") / "store.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_database")
        truncate_postgres(url)
    # No background training: a fuzzed POST /train would otherwise start a job
    # that can outlive the app (and its database) when the module ends.
    app = create_app(make_settings(url).model_copy(update={"train_worker": False}))
    with TestClient(app) as client:
        world = World(factory=app.state.session_factory)
        world.project("fuzzed", items=30)
        for role in ROLES:
            # Odd names: a fuzzed PATCH /members/{name} will not guess them.
            world.member(f"fz-{role}-7c1e", role, None if role == "admin" else "fuzzed")
        response = client.post(
            f"{API}/projects/fuzzed/rounds",
            json={"batch_size": 30, "policy": "random", "seed": 0},
            headers=world.headers("fz-admin-7c1e"),
        )
        assert response.status_code == 201, response.text
        world.member("fz-target-7c1e", "annotator", "fuzzed")
        leases = [
            client.post(
                f"{API}/projects/fuzzed/next", headers=world.headers(f"fz-{role}-7c1e")
            ).json()["lease_id"]
            for role in ROLES
        ]
        yield Target(app, world, leases)


def assert_error_shape(response, where: str) -> None:
    content_type = response.headers.get("content-type") or [""]
    assert content_type[0].startswith("application/json"), where
    body = response.json()
    assert set(body) == {"error"}, (where, body)
    error = body["error"]
    assert set(error) == {"code", "message", "hint", "details"}, (where, error)
    assert isinstance(error["code"], str) and error["code"], (where, error)
    assert isinstance(error["message"], str) and error["message"], (where, error)
    assert error["hint"] is None or isinstance(error["hint"], str), (where, error)
    assert isinstance(error["details"], list), (where, error)


def strategy(operation, target: Target):
    """Random requests, and requests aimed at real resources (valid and invalid)."""
    names = set(re.findall(r"\{(\w+)\}", operation.path))
    real = {
        "project": "fuzzed",
        "name": "fz-target-7c1e",
        "external_id": "fuzzed-3",
    }
    aimed = [
        st.sampled_from(target.leases).flatmap(
            lambda lease, mode=mode: operation.as_strategy(
                mode,
                path_parameters={
                    key: value
                    for key, value in {**real, "lease_id": lease}.items()
                    if key in names
                },
            )
        )
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    return st.one_of(operation.as_strategy(), *aimed)


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_fuzzed_requests_never_fail_the_server_or_the_error_shape(target, role):
    schema = schemathesis.openapi.from_asgi(f"{API}/openapi.json", target.app)
    headers = target.world.headers(f"fz-{role}-7c1e")
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    for operation in operations:

        @given(case=strategy(operation, target))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=DERANDOMIZE,
            suppress_health_check=list(HealthCheck),
            phases=(Phase.explicit, Phase.generate),
        )
        def probe(case) -> None:
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            where = (
                f"{role} {case.method} {case.formatted_path}: {response.status_code}"
            )
            assert response.status_code < 500, f"{where} {response.text[:500]}"
            if response.status_code >= 400:
                assert_error_shape(response, where)
            case.validate_response(
                response, checks=[status_code_conformance, response_schema_conformance]
            )

        try:
            probe()
        except Exception as exc:  # collect every operation's failure, then fail
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert failures == [], "\n\n".join(failures)
    # The token worked (2xx) and bad input was met with errors, not silence.
    assert any(200 <= status < 300 for status in statuses), statuses
    assert statuses[422] + statuses[400] > 0 and sum(statuses.values()) >= len(
        operations
    ), statuses
