"""Browser-test fixtures: a real ``labelwise serve`` subprocess and Chromium.

One SQLite database per test module, filled straight through the store:

- ``tickets``: 20 pool items, two of them markup (``<script>``, ``<img
  onerror>``), queued one annotator per item; annotator ``ana``, lead ``lee``.
- ``inert``: only the two markup items; annotator ``ana`` too.
- ``disputes``: 4 items that each need two annotators (``bob`` and ``cat``,
  who answer through the API with their tokens); reviewer ``rita``.

The server runs with ``LABELWISE_DEV=1`` and a random secret key on a free
port; its output goes to a log file that is printed when it fails to start
and after every failing test. Chromium is Debian's (``/usr/bin/chromium``,
installed by ``scripts/install``); without it the browser tests fail with a
message saying so (``-m "not browser"`` leaves them out).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from uitools import (
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    Server,
    find_free_port,
    seed,
    server_output,
    wait_for_server,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``labelwise serve`` on a free port over a freshly seeded SQLite database."""
    folder = tmp_path_factory.mktemp("ui")
    db_url = f"sqlite:///{folder / 'ui.db'}"
    passwords, tokens = seed(db_url)
    port = find_free_port()
    log = folder / "serve.log"
    env = {
        **os.environ,
        "LABELWISE_DEV": "1",
        "LABELWISE_SECRET_KEY": secrets.token_urlsafe(32),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("LABELWISE_DATABASE_URL", None)
    labelwise = shutil.which("labelwise", path=str(Path(sys.executable).parent))
    command = (
        [labelwise]
        if labelwise
        else [sys.executable, "-c", "from labelwise.cli import main; main()"]
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *command,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--db",
                db_url,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(process, f"{url}/api/v1/health", log)
        yield Server(
            url=url, db_url=db_url, log=log, passwords=passwords, tokens=tokens
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, driven by Playwright (skipped if missing)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"The browser tests need Debian's Chromium at {CHROMIUM}; it is missing. "
            "Run scripts/install as root (or apt-get install -y chromium), or leave "
            "these tests out with -m 'not browser'.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def dialogs() -> list[str]:
    """Every alert/confirm/prompt the page opened ("type: message"), dismissed."""
    return []


@pytest.fixture
def js_errors() -> list[str]:
    """Uncaught JavaScript errors of the page."""
    return []


@pytest.fixture
def page(
    browser: Any, server: Server, dialogs: list[str], js_errors: list[str]
) -> Iterator[Any]:
    """A fresh 1280×800 page on the server; dialogs are recorded and dismissed."""
    context = browser.new_context(viewport=VIEWPORT, base_url=server.url)
    context.set_default_timeout(5000)
    tab = context.new_page()

    def on_dialog(dialog: Any) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    tab.on("pageerror", lambda exc: js_errors.append(str(exc)))
    yield tab
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the server's output to a failing browser test's report."""
    report = yield
    server = getattr(item, "funcargs", {}).get("server")
    if report.failed and isinstance(server, Server):
        report.sections.append(("labelwise serve output", server_output(server.log)))
    return report
