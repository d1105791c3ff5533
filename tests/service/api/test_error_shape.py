"""Every error of the API has one body: {"error": {code, message, hint, details}}."""

import pytest
from apitools import API, World, assert_canonical_error, bearer
from fastapi.testclient import TestClient

from labelwise.exceptions import ImportRejected, RecordError


@pytest.fixture
def tokens(world):
    world.project("tickets", items=3)
    return {
        "admin": world.member("root", "admin"),
        "annotator": world.member("ana", "annotator", "tickets"),
    }


def test_400_domain_error_names_the_fix(client, tokens):
    response = client.get(
        f"{API}/projects/tickets/items",
        params={"cursor": "page-two"},
        headers=bearer(tokens["admin"]),
    )
    error = assert_canonical_error(response, 400, "invalid_input")
    assert "page-two" in error["message"]
    assert error["hint"]
    assert error["details"] == []


def test_400_unknown_policy_lists_valid_names(client, tokens):
    response = client.post(
        f"{API}/projects/tickets/rounds",
        json={"policy": "marginn"},
        headers=bearer(tokens["admin"]),
    )
    error = assert_canonical_error(response, 400, "unknown_name")
    assert "'marginn'" in error["message"] and "default" in error["message"]


def test_400_policy_is_never_read_from_a_server_file(client, tokens, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text('{"components": []}')
    response = client.post(
        f"{API}/projects/tickets/rounds",
        json={"policy": str(policy)},
        headers=bearer(tokens["admin"]),
    )
    assert_canonical_error(response, 400, "unknown_name")


def test_401_without_or_with_a_bad_token(client, tokens):
    for headers in ({}, bearer("not-a-token"), {"Authorization": "Basic abc"}):
        response = client.get(f"{API}/me", headers=headers)
        error = assert_canonical_error(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"
        assert "Bearer" in error["message"]


def test_403_wrong_role(client, tokens):
    response = client.get(
        f"{API}/projects/tickets/items", headers=bearer(tokens["annotator"])
    )
    error = assert_canonical_error(response, 403, "permission_denied")
    assert "'annotator'" in error["message"] and "lead" in error["message"]


def test_404_unknown_project_unknown_item_unknown_route(client, tokens):
    admin = bearer(tokens["admin"])
    error = assert_canonical_error(
        client.get(f"{API}/projects/nope", headers=admin), 404, "not_found"
    )
    assert "'nope'" in error["message"] and "tickets" in error["message"]
    error = assert_canonical_error(
        client.get(f"{API}/projects/tickets/items/missing", headers=admin),
        404,
        "not_found",
    )
    assert "'missing'" in error["message"]
    error = assert_canonical_error(client.get(f"{API}/nowhere"), 404, "not_found")
    assert "/api/v1/nowhere" in error["message"]
    assert_canonical_error(client.get("/no-such-page"), 404, "not_found")


def test_405_method_not_allowed(client):
    response = client.delete(f"{API}/health")
    error = assert_canonical_error(response, 405, "method_not_allowed")
    assert "GET" in error["message"]
    assert response.headers["allow"] == "GET"


def test_409_conflict_duplicate_project(client, tokens):
    body = {"name": "tickets", "labels": ["a", "b"]}
    response = client.post(
        f"{API}/projects", json=body, headers=bearer(tokens["admin"])
    )
    error = assert_canonical_error(response, 409, "conflict")
    assert "already exists" in error["message"]


def test_409_pool_exhausted_has_its_own_code(client, tokens, world):
    world.project("empty")
    response = client.post(
        f"{API}/projects/empty/rounds", json={}, headers=bearer(tokens["admin"])
    )
    assert_canonical_error(response, 409, "pool_exhausted")


def test_409_undo_with_nothing_to_undo(client, tokens):
    response = client.post(
        f"{API}/projects/tickets/undo", headers=bearer(tokens["annotator"])
    )
    assert_canonical_error(response, 409, "conflict")


def test_422_request_validation_lists_every_field(client, tokens):
    response = client.post(
        f"{API}/projects",
        json={"name": "", "labels": "spam", "surprise": 1},
        headers=bearer(tokens["admin"]),
    )
    error = assert_canonical_error(response, 422, "invalid_request")
    locations = {detail["loc"] for detail in error["details"]}
    assert locations == {"body.name", "body.labels", "body.surprise"}
    for detail in error["details"]:
        assert set(detail) == {"loc", "message", "type"}
    response = client.get(
        f"{API}/projects/tickets/items",
        params={"limit": 0},
        headers=bearer(tokens["admin"]),
    )
    error = assert_canonical_error(response, 422, "invalid_request")
    assert error["details"][0]["loc"] == "query.limit"


def test_422_does_not_echo_the_input(client, tokens):
    response = client.post(
        f"{API}/members",
        json={"name": "x", "role": "wizard-secret-value"},
        headers=bearer(tokens["admin"]),
    )
    assert_canonical_error(response, 422, "invalid_request")
    assert "wizard-secret-value" not in response.text


def test_import_rejected_lists_records_in_details(app, client, tokens):
    def reject():
        raise ImportRejected(
            "2 records are bad; nothing was imported.",
            errors=[
                RecordError("a.csv", 3, "label", "not a label"),
                RecordError("a.csv", 9, "text", "empty"),
            ],
            hint="Fix them and import again.",
        )

    app.add_api_route(f"{API}/_test/import", reject, methods=["POST"])
    error = assert_canonical_error(
        client.post(f"{API}/_test/import"), 400, "import_rejected"
    )
    assert error["details"] == [
        {"path": "a.csv", "line": 3, "field": "label", "message": "not a label"},
        {"path": "a.csv", "line": 9, "field": "text", "message": "empty"},
    ]


def test_unexpected_errors_are_500_in_the_same_shape(app, store_url):
    def boom():
        raise RuntimeError("secret internals")

    app.add_api_route(f"{API}/_test/boom", boom, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get(f"{API}/_test/boom")
    error = assert_canonical_error(response, 500, "internal_error")
    assert "secret internals" not in response.text
    assert error["details"] == []


def test_a_failed_commit_is_never_a_2xx(app):
    from sqlalchemy import event

    def disk_full(session):
        raise RuntimeError("disk full")

    with TestClient(app, raise_server_exceptions=False) as client:
        factory = app.state.session_factory
        admin = bearer(World(factory=factory).member("root", "admin"))
        event.listen(factory, "before_commit", disk_full)
        try:
            response = client.post(
                f"{API}/projects",
                json={"name": "lost", "labels": ["a", "b"]},
                headers=admin,
            )
        finally:
            event.remove(factory, "before_commit", disk_full)
        assert_canonical_error(response, 500, "internal_error")
        missing = client.get(f"{API}/projects/lost", headers=admin)
        assert_canonical_error(missing, 404, "not_found")
