"""Members, their project memberships, passwords and API tokens.

Passwords are hashed with Argon2 (argon2-cffi); API tokens are random
``secrets.token_urlsafe(32)`` strings stored only as their SHA-256 hex digest.
Neither is ever stored or logged in clear: :func:`create_member`,
:func:`rotate_token` and :func:`ensure_admin` return them once, to be shown to
the person and forgotten.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from labelwise.exceptions import (
    ConfigError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDenied,
)
from labelwise.service.store.schema import (
    MEMBER_ROLES,
    Item,
    Lease,
    Member,
    Project,
    ProjectMember,
)

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = [
    "ADMIN_NAME",
    "MEMBER_ROLES",
    "NotAuthenticated",
    "add_to_project",
    "authenticate_lease",
    "authenticate_project",
    "authenticate_token",
    "check_role",
    "create_member",
    "create_owned_project",
    "ensure_admin",
    "get_member",
    "get_visible_lease",
    "get_visible_project",
    "hash_token",
    "is_member",
    "item_gold",
    "join_project",
    "list_members",
    "list_visible_projects",
    "membership_checked",
    "project_members",
    "rotate_token",
    "update_member",
    "verify_password",
    "visible_lease_loaded",
]

#: The name :func:`ensure_admin` gives the first administrator.
ADMIN_NAME = "admin"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}")
_TOKEN_BYTES = 32
_PASSWORD_BYTES = 18


class NotAuthenticated(PermissionDenied):
    """No valid credentials: an unknown, revoked or missing token or password."""

    code = "not_authenticated"


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_token(token: str) -> str:
    """The stored form of an API token: its SHA-256 hex digest."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


def check_role(role: str) -> str:
    """``role`` if it is a member role, else ConfigError listing the roles."""
    if role not in MEMBER_ROLES:
        raise ConfigError(
            f"A member's role must be one of {', '.join(MEMBER_ROLES)}. "
            f"Got {role!r} instead.",
            hint="admin: everything; lead: their projects' items, rounds, "
            "annotations and members; reviewer and annotator: the queue.",
        )
    return role


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(
            "A member name must be 1 to 200 letters, digits or . _ @ + - and start "
            f"with a letter or digit. Got {name!r} instead.",
            hint="Use a login-like name such as 'ana' or 'ana.lopez@example.org'.",
        )
    return name


def _exists(name: str) -> ConflictError:
    return ConflictError(
        f"Cannot create member {name!r}: a member with that name already exists "
        "(member names are unique).",
        hint=f"Pick another name; to give {name!r} a new token use "
        f"`labelwise user token {name}`.",
    )


def create_member(
    *,
    session: Session,
    name: str,
    role: str,
    project: Project | str | None = None,
) -> tuple[Member, str, str]:
    """Create a member (in ``project``): returns it, its password and its token."""
    name = _check_name(name)
    role = check_role(role)
    if isinstance(project, str):
        from labelwise.service.store.projects import get_project

        project = get_project(session=session, name=project)
    if session.scalar(select(Member.id).where(Member.name == name)) is not None:
        raise _exists(name)
    password = secrets.token_urlsafe(_PASSWORD_BYTES)
    token = _new_token()
    member = Member(
        name=name,
        role=role,
        password_hash=_hasher().hash(password),
        token_hash=hash_token(token),
        active=True,
    )
    session.add(member)
    try:
        session.flush()
    except IntegrityError as exc:  # pragma: no cover - a concurrent create won
        raise _exists(name) from exc
    if project is not None:
        add_to_project(session=session, member=member, project=project)
    return member, password, token


def get_member(*, session: Session, name: str) -> Member:
    """The member called ``name``."""
    member = session.scalar(select(Member).where(Member.name == name))
    if member is None:
        raise NotFoundError(
            f"No member named {name!r} (names are case-sensitive).",
            hint="Check the name (`labelwise user list` lists them), or create "
            f"the member with `labelwise user add {name} --role annotator`.",
        )
    return member


def list_members(*, session: Session) -> list[Member]:
    """Every member, by name."""
    return list(session.scalars(select(Member).order_by(Member.name)))


def is_member(*, session: Session, member: Member, project: Project) -> bool:
    """True when ``member`` belongs to ``project`` (admins only when added)."""
    return (
        session.scalar(
            select(ProjectMember.member_id).where(
                ProjectMember.project_id == project.id,
                ProjectMember.member_id == member.id,
            )
        )
        is not None
    )


def add_to_project(*, session: Session, member: Member, project: Project) -> bool:
    """Make ``member`` a member of ``project``; False when it already was."""
    if is_member(session=session, member=member, project=project):
        return False
    session.add(ProjectMember(project_id=project.id, member_id=member.id))
    session.flush()
    return True


def join_project(
    *, session: Session, project: Project, name: str
) -> tuple[Member, bool]:
    """Add the member called ``name`` to ``project``; True when newly added."""
    member = get_member(session=session, name=name)
    return member, add_to_project(session=session, member=member, project=project)


def create_owned_project(
    *, session: Session, member: Member, name: str, **spec: Any
) -> Project:
    """Create a project (see ``create_project``) with ``member`` as its first member."""
    from labelwise.service.store.projects import create_project

    project = create_project(session=session, name=name, **spec)
    add_to_project(session=session, member=member, project=project)
    return project


def project_members(*, session: Session, project: Project) -> list[Member]:
    """The members of ``project``, by name."""
    return list(
        session.scalars(
            select(Member)
            .join(ProjectMember, ProjectMember.member_id == Member.id)
            .where(ProjectMember.project_id == project.id)
            .order_by(Member.name)
        )
    )


def list_visible_projects(*, session: Session, member: Member) -> list[Project]:
    """The projects ``member`` may see, by name: its own, or every one for admins."""
    query = select(Project).order_by(Project.name)
    if member.role != "admin":
        query = query.join(ProjectMember, ProjectMember.project_id == Project.id).where(
            ProjectMember.member_id == member.id
        )
    return list(session.scalars(query))


# What the API's dependencies checked in the current transaction, so that the
# use-cases they call do not query it again (never kept past the transaction).
_CHECKED = "labelwise_checked"
_joined = (
    exists()
    .where(
        ProjectMember.project_id == Project.id,
        ProjectMember.member_id == bindparam("member_id"),
    )
    .label("joined")
)
_VISIBLE_PROJECT = select(Project, _joined).where(Project.name == bindparam("name"))
_VISIBLE_LEASE = (
    select(Lease, Project, _joined)
    .join(Project, Project.id == Lease.project_id)
    .where(Lease.id == bindparam("lease_id"))
)
_BY_TOKEN = select(Member).where(Member.token_hash == bindparam("token_hash"))
# The hot paths (claim, submit) check the token and what it may see in one
# query: the member by token, outer-joined to the project or lease asked for.
_member_joined = (
    exists()
    .where(
        ProjectMember.project_id == Project.id,
        ProjectMember.member_id == Member.id,
    )
    .label("joined")
)
_TOKEN_AND_PROJECT = (
    select(Member, Project, _member_joined)
    .select_from(Member)
    .outerjoin(Project, Project.name == bindparam("name"))
    .where(Member.token_hash == bindparam("token_hash"))
)
_TOKEN_AND_LEASE = (
    select(Member, Lease, Project, _member_joined, Item.role, Item.gold_label)
    .select_from(Member)
    .outerjoin(Lease, Lease.id == bindparam("lease_id"))
    .outerjoin(Project, Project.id == Lease.project_id)
    .outerjoin(Item, Item.id == Lease.item_id)
    .where(Member.token_hash == bindparam("token_hash"))
)


class _Checks:
    """What this transaction checked: memberships, loaded leases, gold answers."""

    def __init__(self, transaction: object) -> None:
        self.transaction = transaction
        self.seen: set[tuple[str, int, int]] = set()
        #: item id -> (role, gold_label), read with the lease (submit's gold check).
        self.gold: dict[int, tuple[str, str | None]] = {}
        #: Objects held until the transaction ends (the identity map is weak).
        self.held: list[object] = []


def _checks(session: Session, *keep: object) -> _Checks:
    """This transaction's checks (a fresh record when the transaction is new).

    ``keep``: objects to hold until the transaction ends (the session's
    identity map holds its objects weakly; a use-case's ``session.get`` then
    finds them without a query).
    """
    transaction = session.get_transaction()
    stored = session.info.get(_CHECKED)
    if stored is None or stored.transaction is not transaction:
        stored = session.info[_CHECKED] = _Checks(transaction)
    stored.held.extend(keep)
    checks: _Checks = stored
    return checks


def _checked(session: Session, *keep: object) -> set[tuple[str, int, int]]:
    """This transaction's checks: ("member", project, member), ("lease", id, 0)."""
    return _checks(session, *keep).seen


def membership_checked(session: Session, project_id: int, member_id: int) -> bool:
    """True when this transaction already found ``member_id`` in ``project_id``."""
    return ("member", project_id, member_id) in _checked(session)


def visible_lease_loaded(session: Session, lease_id: int) -> bool:
    """True when this transaction loaded lease ``lease_id`` (get_visible_lease)."""
    return ("lease", lease_id, 0) in _checked(session)


def item_gold(session: Session, item_id: int) -> tuple[str, str | None] | None:
    """The role and gold label of ``item_id`` if this transaction read them
    with its lease (:func:`authenticate_lease`), else None."""
    return _checks(session).gold.get(item_id)


def get_visible_project(*, session: Session, member: Member, name: str) -> Project:
    """Project ``name`` if ``member`` may see it; otherwise as if it did not exist."""
    row = session.execute(
        _VISIBLE_PROJECT, {"name": name, "member_id": member.id}
    ).first()
    if row is not None and (member.role == "admin" or row.joined):
        project: Project = row[0]
        if row.joined:
            _checked(session).add(("member", project.id, member.id))
        return project
    raise _no_project(session, member, name)


def _no_project(session: Session, member: Member, name: str) -> NotFoundError:
    names = [p.name for p in list_visible_projects(session=session, member=member)]
    yours = (
        f"Your projects: {', '.join(names)}." if names else "You have no projects yet."
    )
    return NotFoundError(
        f"No project named {name!r} among your projects. {yours}",
        hint="Check the name, or ask an admin or the project's lead to add you.",
    )


def get_visible_lease(*, session: Session, member: Member, lease_id: int) -> Lease:
    """Lease ``lease_id`` if its project is one ``member`` may see; else NotFound."""
    row = session.execute(
        _VISIBLE_LEASE, {"lease_id": lease_id, "member_id": member.id}
    ).first()
    if row is not None and (member.role == "admin" or row.joined):
        lease: Lease = row[0]
        checks = _checked(session, row[1])
        checks.add(("lease", lease.id, 0))
        if row.joined:
            checks.add(("member", lease.project_id, member.id))
        return lease
    raise _no_lease(lease_id)


def _no_lease(lease_id: int) -> NotFoundError:
    return NotFoundError(
        f"No lease with id {lease_id} in your projects.",
        hint="Use the lease_id returned when you claimed the item "
        "(POST /api/v1/projects/{project}/next).",
    )


def _not_authenticated() -> NotAuthenticated:
    return NotAuthenticated(
        "Expected a valid API token (Authorization: Bearer TOKEN). The token "
        "given is unknown, revoked or belongs to a deactivated member.",
        hint="Ask an admin for a new token (`labelwise user token NAME`).",
    )


def authenticate_token(*, session: Session, token: str) -> Member:
    """The active member whose API token is ``token``."""
    member = None
    if token:
        member = session.scalar(_BY_TOKEN, {"token_hash": hash_token(token)})
    if member is None or not member.active:
        raise _not_authenticated()
    return member


def _active_token_row(
    session: Session, statement: Any, token: str, **params: Any
) -> Any:
    """The row of ``statement`` for ``token``'s active member, else 401."""
    row = None
    if token:
        params["token_hash"] = hash_token(token)
        row = session.execute(statement, params).first()
    if row is None or not row[0].active:
        raise _not_authenticated()
    return row


def authenticate_project(
    *, session: Session, token: str, name: str
) -> tuple[Member, Project]:
    """:func:`authenticate_token` then :func:`get_visible_project`, in one query.

    The same checks, errors and precedence (401 before 404); the token is
    looked up in the same transaction as the work it authorises, never cached.
    """
    row = _active_token_row(session, _TOKEN_AND_PROJECT, token, name=name)
    member: Member = row[0]
    project: Project | None = row[1]
    if project is None or not (member.role == "admin" or row.joined):
        raise _no_project(session, member, name)
    if row.joined:
        _checked(session).add(("member", project.id, member.id))
    return member, project


def authenticate_lease(
    *, session: Session, token: str, lease_id: int
) -> tuple[Member, Lease]:
    """:func:`authenticate_token` then :func:`get_visible_lease`, in one query.

    The same checks, errors and precedence (401 before 404). The lease's
    item role and gold label come with it, for the gold check of a submit
    (:func:`item_gold`) in this transaction.
    """
    row = _active_token_row(session, _TOKEN_AND_LEASE, token, lease_id=lease_id)
    member: Member = row[0]
    lease: Lease | None = row[1]
    if lease is None or not (member.role == "admin" or row.joined):
        raise _no_lease(lease_id)
    checks = _checks(session, row[2])
    checks.seen.add(("lease", lease.id, 0))
    if row.joined:
        checks.seen.add(("member", lease.project_id, member.id))
    checks.gold[lease.item_id] = (row.role, row.gold_label)
    return member, lease


def verify_password(*, session: Session, name: str, password: str) -> Member:
    """The active member ``name`` if ``password`` is theirs."""
    from argon2.exceptions import InvalidHashError, VerificationError

    member = session.scalar(select(Member).where(Member.name == name))
    stored = member.password_hash if member is not None else None
    try:
        if stored is None:
            # Same work for unknown names, so timing does not reveal them.
            _hasher().verify(_dummy_hash(), password + "\0")
        elif _hasher().verify(stored, password):
            if member is not None and member.active:
                if _hasher().check_needs_rehash(stored):
                    member.password_hash = _hasher().hash(password)
                return member
    except (VerificationError, InvalidHashError):
        pass
    raise NotAuthenticated(
        "Expected a member name and its password. The name is unknown, the "
        "password is wrong, or the member is deactivated.",
        hint="Check both; an admin can issue a new token with "
        "`labelwise user token NAME`.",
    )


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(_PASSWORD_BYTES))


def _resolve(session: Session, member: Member | str) -> Member:
    if isinstance(member, str):
        return get_member(session=session, name=member)
    return member


def rotate_token(*, session: Session, member: Member | str) -> tuple[Member, str]:
    """Give ``member`` (or its name) a new API token; the old one stops working."""
    member = _resolve(session, member)
    token = _new_token()
    member.token_hash = hash_token(token)
    session.flush()
    return member, token


def _active_admins(session: Session) -> list[int]:
    return list(
        session.scalars(
            select(Member.id).where(Member.role == "admin", Member.active.is_(True))
        )
    )


def update_member(
    *,
    session: Session,
    member: Member | str,
    role: str | None = None,
    active: bool | None = None,
) -> Member:
    """Change ``member``'s (or name's) role or active flag; keeps one admin."""
    member = _resolve(session, member)
    new_role = member.role if role is None else check_role(role)
    new_active = member.active if active is None else bool(active)
    was_admin = member.role == "admin" and member.active
    stays_admin = new_role == "admin" and new_active
    if was_admin and not stays_admin and _active_admins(session) == [member.id]:
        raise ConflictError(
            f"Cannot demote or deactivate {member.name!r}: it is the last active "
            "admin, and labelwise needs one.",
            hint="Make another member admin first.",
        )
    member.role = new_role
    member.active = new_active
    session.flush()
    return member


def ensure_admin(*, session: Session) -> tuple[Member, str, str] | None:
    """Create an ``admin`` with a random password and token if no admin exists."""
    exists = session.scalar(select(Member.id).where(Member.role == "admin").limit(1))
    if exists is not None:
        return None
    return create_member(session=session, name=ADMIN_NAME, role="admin")
