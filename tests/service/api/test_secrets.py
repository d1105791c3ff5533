"""Passwords and tokens: shown once at creation, stored only hashed, never echoed."""

import hashlib
import logging

import pytest
from apitools import API, bearer
from sqlalchemy import select

from labelwise.exceptions import ConfigError, ConflictError, InvalidInputError
from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.members import (
    NotAuthenticated,
    authenticate_token,
    create_member,
    ensure_admin,
    rotate_token,
    verify_password,
)
from labelwise.service.store.schema import Member


def test_created_secrets_appear_once_and_are_stored_hashed(client, world, app, caplog):
    caplog.set_level(logging.DEBUG)
    world.project("tickets", items=2)
    admin = bearer(world.member("root", "admin"))
    created = client.post(
        f"{API}/members",
        json={"name": "ana", "role": "annotator", "project": "tickets"},
        headers=admin,
    )
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"name", "role", "active", "created_at", "password", "token"}
    password, token = body["password"], body["token"]
    assert len(token) >= 43 and len(password) >= 16
    ana = bearer(token)
    responses = [
        client.get(f"{API}/me", headers=ana),
        client.get(f"{API}/members", headers=admin),
        client.get(f"{API}/projects/tickets/members", headers=admin),
        client.patch(f"{API}/members/ana", json={"role": "reviewer"}, headers=admin),
        client.get(f"{API}/projects", headers=ana),
        client.get(f"{API}/openapi.json"),
    ]
    for response in responses:
        assert response.status_code == 200
        assert password not in response.text and token not in response.text
        assert "hash" not in response.text.lower() or "openapi" in str(response.url)
    assert password not in caplog.text and token not in caplog.text
    with read_only(app.state.session_factory) as session:
        member = session.scalar(select(Member).where(Member.name == "ana"))
        assert member.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert member.password_hash.startswith("$argon2")
        assert password not in member.password_hash
        assert verify_password(session=session, name="ana", password=password) == member
        with pytest.raises(NotAuthenticated):
            verify_password(session=session, name="ana", password=password + "x")
        with pytest.raises(NotAuthenticated):
            verify_password(session=session, name="nobody", password=password)


def test_rotating_a_token_revokes_the_old_one(session_factory):
    with transaction(session_factory) as session:
        _, _, old = create_member(session=session, name="ana", role="lead")
        _, new = rotate_token(session=session, member="ana")
    assert new != old
    with read_only(session_factory) as session:
        assert authenticate_token(session=session, token=new).name == "ana"
        with pytest.raises(NotAuthenticated):
            authenticate_token(session=session, token=old)
        with pytest.raises(NotAuthenticated):
            authenticate_token(session=session, token="")


def test_member_validation(session_factory):
    with transaction(session_factory) as session:
        with pytest.raises(ConfigError, match="admin, lead, reviewer, annotator"):
            create_member(session=session, name="ana", role="boss")
        with pytest.raises(InvalidInputError, match="member name"):
            create_member(session=session, name=" ana", role="lead")
        create_member(session=session, name="ana", role="lead")
        with pytest.raises(ConflictError, match="already exists"):
            create_member(session=session, name="ana", role="annotator")


def test_ensure_admin_only_when_there_is_none(session_factory):
    with transaction(session_factory) as session:
        created = ensure_admin(session=session)
    assert created is not None
    member, password, token = created
    assert member.name == "admin" and member.role == "admin"
    with transaction(session_factory) as session:
        assert ensure_admin(session=session) is None
    with read_only(session_factory) as session:
        assert authenticate_token(session=session, token=token).role == "admin"
        assert verify_password(session=session, name="admin", password=password)
