"""Regenerate docs/img/report.png and docs/img/dashboard-roi.png.

Runs the known-truth scenario (``simulate_labeling``: 8 rounds of the default
policy, a shifted late import) into a temporary SQLite database, writes the
HTML report, starts ``labelwise serve`` on a free port, logs in as a lead and
photographs the report and the dashboard's ROI section with Playwright and
Debian's Chromium. Run: ``nice -n 19 .venv/bin/python scripts/report_screenshots.py``.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from labelwise.service.report import build_report, render_html, simulate_labeling
from labelwise.service.store.engine import (
    make_engine,
    make_sessionmaker,
    read_only,
    transaction,
)
from labelwise.service.store.members import create_member
from labelwise.service.store.migrate import upgrade
from labelwise.service.store.projects import get_project

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "img"
CHROMIUM = "/usr/bin/chromium"
PROJECT = "rare-events"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(200):
        if process.poll() is not None:
            raise SystemExit(f"labelwise serve exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"labelwise serve did not start:\n{log.read_text()}")


def main() -> None:
    """Simulate, render, serve and photograph."""
    from playwright.sync_api import sync_playwright

    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="labelwise-shots-") as folder:
        where = Path(folder)
        url = f"sqlite:///{where / 'shots.db'}"
        engine = make_engine(url)
        upgrade(engine)
        factory = make_sessionmaker(engine)
        simulate_labeling(
            factory, name=PROJECT, rounds=8, late_pool=300, late_shift=1.0, rng=11
        )
        with transaction(factory) as session:
            project = get_project(session=session, name=PROJECT)
            _, password, _ = create_member(
                session=session, name="lena", role="lead", project=project
            )
        with read_only(factory) as session:
            project = get_project(session=session, name=PROJECT)
            report = build_report(session=session, project=project)
        engine.dispose()
        html = where / "report.html"
        html.write_text(render_html(report), encoding="utf-8")

        port = _free_port()
        log = where / "serve.log"
        env = {
            **os.environ,
            "LABELWISE_DEV": "1",
            "LABELWISE_SECRET_KEY": secrets.token_urlsafe(32),
        }
        env.pop("LABELWISE_DATABASE_URL", None)
        command = [sys.executable, "-c", "from labelwise.cli import main; main()"]
        with log.open("wb") as out:
            server = subprocess.Popen(
                [
                    *command,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--db",
                    url,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(f"{base}/api/v1/health", server, log)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
                )
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(html.as_uri())
                page.screenshot(path=str(IMAGES / "report.png"), full_page=True)
                page.goto(f"{base}/login?next=/projects/{PROJECT}/dashboard")
                page.fill("#username", "lena")
                page.fill("#password", password)
                page.click("#login-submit")
                page.wait_for_url(f"**/projects/{PROJECT}/dashboard", timeout=120_000)
                # The dashboard computes the report in the background: reload
                # until the ROI section shows it.
                for _ in range(120):
                    if page.locator("#roi #verdict").count():
                        break
                    time.sleep(1)
                    page.reload()
                page.locator("#roi").screenshot(path=str(IMAGES / "dashboard-roi.png"))
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(report["control_slice"]["verdict_text"])  # noqa: T201 - a script's output
    print(f"Wrote {IMAGES / 'report.png'} and {IMAGES / 'dashboard-roi.png'}")  # noqa: T201


if __name__ == "__main__":
    main()
