"""Log in, log out, and the member's projects list (``/``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.members import (
    NotAuthenticated,
    list_visible_projects,
    verify_password,
)
from labelwise.service.ui.auth import (
    UIMember,
    current_ui_member,
    log_in,
    log_out,
    require_csrf,
)
from labelwise.service.ui.templating import render

__all__ = ["router", "safe_next"]

router = APIRouter()


def safe_next(value: object) -> str:
    """A local path to go to after login (never another site)."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//"):
        if "\\" not in value:
            return value
    return "/"


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    """The login form (or the projects list, when already logged in)."""
    if current_ui_member(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next_path": safe_next(next), "username": ""})


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the name and password; start a session and go on, or show the error."""
    form = await request.form()
    require_csrf(request, form)
    name = str(form.get("username") or "")
    password = str(form.get("password") or "")
    target = safe_next(form.get("next"))
    limiter = request.app.state.login_limiter
    address = request.client.host if request.client else ""
    wait = limiter.retry_after(name, address)
    if wait:
        return render(
            request,
            "login.html",
            {
                "error": f"Too many failed logins; try again in {wait} seconds. "
                "Nothing was checked.",
                "next_path": target,
                "username": name,
            },
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    factory = request.app.state.session_factory
    try:
        with transaction(factory) as session:  # may rehash the password
            member = verify_password(session=session, name=name, password=password)
    except NotAuthenticated:
        limiter.failed(name, address)
        return render(
            request,
            "login.html",
            {
                "error": "Unknown name or wrong password (or the account is "
                "deactivated). Check both and try again.",
                "next_path": target,
                "username": name,
            },
            status_code=401,
        )
    limiter.succeeded(name, address)
    log_in(request, member)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session and go back to the login page."""
    form = await request.form()
    require_csrf(request, form)
    log_out(request)
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def projects_page(request: Request, member: UIMember) -> Response:
    """The projects the member belongs to (every project for admins)."""
    with read_only(request.app.state.session_factory) as session:
        projects = list_visible_projects(session=session, member=member)
        rows = [{"name": p.name, "labels": list(p.labels)} for p in projects]
    return render(request, "projects.html", {"projects": rows}, member=member)
