"""The web UI: server-rendered pages (Jinja2) and a little plain JavaScript.

:func:`labelwise.service.ui.app.mount_ui` adds it to the API app built by
``create_app``. The pieces other UI modules build on:

- :mod:`labelwise.service.ui.auth`: the signed session cookie, the logged-in
  member (:func:`~labelwise.service.ui.auth.current_ui_member`,
  :data:`~labelwise.service.ui.auth.UIMember`) and the CSRF checks
  (:func:`~labelwise.service.ui.auth.require_csrf` for forms,
  :data:`~labelwise.service.ui.auth.CsrfHeader` for the JSON posts);
- :func:`labelwise.service.ui.templating.render`: a template response with
  ``member``, ``csrf_token`` and ``nav`` in its context;
- ``templates/base.html``: the page frame (nav bar, ``{% block content %}``).

A module ``routes_*.py`` here that defines ``router`` (an ``APIRouter``) and
is listed in :data:`labelwise.service.ui.app.UI_ROUTERS` is mounted too.
"""

from __future__ import annotations

__all__: list[str] = []
