"""FastAPI dependencies as ``Annotated`` aliases: settings, sessions, the caller.

- :data:`SettingsDep`, :data:`SessionFactoryDep`: what ``create_app`` and its
  lifespan put on ``app.state`` (tests override them, or build another app);
- :data:`SessionDep`: one session per request, shared by every dependency of
  the request. GET and HEAD get a read-only session; any other method gets a
  write transaction that commits when the route returns and **before** the
  response is sent (``scope="function"``), so a 2xx means committed;
- :data:`CurrentMember`: the member whose API token is in
  ``Authorization: Bearer TOKEN`` (401 with ``WWW-Authenticate: Bearer``);
- :func:`require_role`: the caller, if their role is one of ``roles`` (403);
- :data:`ProjectDep` and :func:`project_for`: the ``{project}`` path
  parameter as a Project the caller may see. A project the caller does not
  belong to is a 404, exactly as if it did not exist (admins see all);
  :data:`LeaseDep` does the same for ``{lease_id}``;
- :data:`NowDep`: the current UTC time (tests override the clock);
- :data:`TokenDep` and :func:`in_write_transaction`:
  for the queue's hot paths (claim, submit), which check the token and what
  it may see in one query and run their whole transaction, commit included,
  on one worker thread (each hop onto a thread costs ~0.1 ms of CPU and,
  on a busy machine, a wait to be scheduled; the dependencies above take
  one hop each).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from labelwise.exceptions import PermissionDenied
from labelwise.service.settings import Settings
from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.members import (
    NotAuthenticated,
    authenticate_token,
    get_visible_lease,
    get_visible_project,
)
from labelwise.service.store.schema import Lease, Member, Project

__all__ = [
    "READ_METHODS",
    "AdminMember",
    "AdminOrLead",
    "BearerDep",
    "CurrentMember",
    "LeadProject",
    "LeaseDep",
    "LeaseId",
    "NowDep",
    "ProjectDep",
    "ProjectName",
    "SessionDep",
    "SessionFactoryDep",
    "SettingsDep",
    "TokenDep",
    "bearer_token",
    "get_current_member",
    "get_lease",
    "get_now",
    "get_project",
    "get_session",
    "get_session_factory",
    "get_settings",
    "get_token",
    "in_write_transaction",
    "project_for",
    "require_role",
]

#: Methods served from a read-only session (no write lock on SQLite).
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token: `labelwise user add` or `labelwise user token` "
    "prints it once.",
)


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def``
# dependency on a worker thread, a hop that costs about 0.1 ms of CPU.


async def get_settings(request: Request) -> Settings:
    """The app's Settings."""
    settings: Settings = request.app.state.settings
    return settings


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    """The session factory the app's lifespan built."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]


async def get_session(
    request: Request, factory: SessionFactoryDep
) -> AsyncIterator[Session]:
    """A read-only session for reads, else a transaction committed before the reply.

    A write transaction starts without I/O (SQLAlchemy connects on the first
    query, on the thread that runs it), so it is opened here on the event
    loop; the commit or rollback, and the read-only session's connect, run
    on a worker thread.
    """
    if request.method in READ_METHODS:
        scope = read_only(factory)
        session = await run_in_threadpool(scope.__enter__)
    else:
        scope = transaction(factory)
        session = scope.__enter__()
    try:
        yield session
    except BaseException as exc:
        await run_in_threadpool(scope.__exit__, type(exc), exc, exc.__traceback__)
        raise
    await run_in_threadpool(scope.__exit__, None, None, None)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
#: The Authorization header's Bearer credentials, if any (no I/O).
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

_P = ParamSpec("_P")
_T = TypeVar("_T")


async def in_write_transaction(
    factory: sessionmaker[Session],
    work: Callable[Concatenate[Session, _P], _T],
    *args: _P.args,
    **kwargs: _P.kwargs,
) -> _T:
    """``work(session, *args, **kwargs)`` in one write transaction on one thread.

    The transaction commits (or rolls back on an error, which propagates)
    before this returns, so a reply built from the result is sent after the
    commit, as with :data:`SessionDep`.
    """

    def run() -> _T:
        with transaction(factory) as session:
            return work(session, *args, **kwargs)

    return await run_in_threadpool(run)


def bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    """The token of the Authorization header (401 when there is none)."""
    if credentials is None:
        raise NotAuthenticated(
            "This endpoint needs an API token in the header "
            "'Authorization: Bearer TOKEN'. Got none.",
            hint="Ask an admin for a token (`labelwise user add NAME --role ROLE` "
            "prints one) and send it as a Bearer token.",
        )
    return credentials.credentials


async def get_token(credentials: BearerDep) -> str:
    """The caller's API token (401 when there is none); checked by the route."""
    return bearer_token(credentials)


#: The API token of the Authorization header, not yet checked.
TokenDep = Annotated[str, Depends(get_token)]


def get_current_member(session: SessionDep, credentials: BearerDep) -> Member:
    """The member whose token is in the Authorization header."""
    return authenticate_token(session=session, token=bearer_token(credentials))


CurrentMember = Annotated[Member, Depends(get_current_member)]


def _check_role(member: Member, roles: tuple[str, ...], what: str) -> None:
    if member.role not in roles:
        raise PermissionDenied(
            f"{what} is for the roles {', '.join(roles)}. Member {member.name!r} "
            f"has the role {member.role!r}.",
            hint="Ask an admin to change your role if you need this.",
        )


def require_role(*roles: str) -> Callable[[Member], Awaitable[Member]]:
    """A dependency: the current member, if its role is one of ``roles``."""

    async def dependency(member: CurrentMember) -> Member:
        _check_role(member, roles, "This endpoint")
        return member

    return dependency


ProjectName = Annotated[
    str, Path(description="The project's name.", min_length=1, max_length=200)
]


def get_project(
    session: SessionDep, member: CurrentMember, project: ProjectName
) -> Project:
    """The ``{project}`` of the path, if the caller may see it (404 otherwise)."""
    return get_visible_project(session=session, member=member, name=project)


ProjectDep = Annotated[Project, Depends(get_project)]


def project_for(*roles: str) -> Callable[[Member, Project], Awaitable[Project]]:
    """A dependency: the visible ``{project}``, if the caller has one of ``roles``."""

    async def dependency(member: CurrentMember, project: ProjectDep) -> Project:
        _check_role(member, roles, f"This endpoint of project {project.name!r}")
        return project

    return dependency


#: The caller, if an admin.
AdminMember = Annotated[Member, Depends(require_role("admin"))]
#: The caller, if an admin or a lead.
AdminOrLead = Annotated[Member, Depends(require_role("admin", "lead"))]
#: The ``{project}``, if the caller is an admin or one of its leads.
LeadProject = Annotated[Project, Depends(project_for("admin", "lead"))]


async def get_now() -> datetime:
    """The current time, timezone-aware UTC (no I/O: no thread hop)."""
    return datetime.now(UTC)


NowDep = Annotated[datetime, Depends(get_now)]

LeaseId = Annotated[
    int,
    Path(ge=1, le=2**31 - 1, description="The lease id returned by claiming an item."),
]


def get_lease(session: SessionDep, member: CurrentMember, lease_id: LeaseId) -> Lease:
    """The ``{lease_id}`` of the path, if in a project the caller may see (404)."""
    return get_visible_lease(session=session, member=member, lease_id=lease_id)


LeaseDep = Annotated[Lease, Depends(get_lease)]
