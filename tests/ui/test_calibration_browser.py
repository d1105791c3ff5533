"""A calibration session in a real browser: the lead creates it, an annotator
labels every item blind with the keyboard, the lead reads the report and closes
it with a new guideline version; then the database is checked."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select
from test_browser import log_in, screenshot
from uitools import Server

from labelwise.service.store.schema import (
    Annotation,
    CalibrationAnswer,
    CalibrationSession,
    Guideline,
)

pytestmark = pytest.mark.browser

NEW_GUIDELINE = "Invoice totals are billing, even when the page looks broken."


def test_calibration_session_through_the_ui(
    browser: Any, server: Server, js_errors: list[str], dialogs: list[str]
) -> None:
    lead = browser.new_context(
        base_url=server.url, viewport={"width": 1280, "height": 800}
    )
    lead.set_default_timeout(5000)
    page = lead.new_page()
    log_in(page, server, "lee", "/projects/tickets/calibration")
    expect(page.locator("#no-sessions")).to_be_visible()
    page.fill("#session-name", "invoices")
    page.select_option("#session-rule", "manual")
    page.fill("#session-items", "\n".join(f"tickets-{n}" for n in range(20)))
    page.click("#create-session button[type=submit]")
    page.wait_for_url("**/projects/tickets/calibration/1")
    expect(page.locator("#session-status")).to_have_text("open")
    expect(page.locator('[data-figure="n_items"]')).to_have_text("0 of 20")

    annotator = browser.new_context(
        base_url=server.url, viewport={"width": 1280, "height": 800}
    )
    annotator.set_default_timeout(5000)
    tab = annotator.new_page()
    tab.on("pageerror", lambda exc: js_errors.append(str(exc)))
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(tab, server, "ana", "/projects/tickets/calibration")
    expect(tab.locator('tr[data-session="1"]')).to_contain_text("0 / 20")
    tab.click('tr[data-session="1"] a')
    tab.wait_for_url("**/projects/tickets/calibration/1")
    # The page shows only the item: no other answer, no report.
    expect(tab.locator("#split-items")).to_have_count(0)
    for n in range(20):
        expect(tab.locator("#progress")).to_have_text(f"Item {n + 1} of 20")
        tab.keyboard.press("2" if n < 3 else "1")  # billing for 3, bug for the rest
        tab.keyboard.press("Enter")
    expect(tab.locator("#progress")).to_have_text("All done")
    expect(tab.locator("#item-empty")).to_contain_text("answered every item")
    screenshot(tab, "calibrate.png")
    assert js_errors == [] and dialogs == []

    page.reload()
    expect(page.locator('[data-figure="n_items"]')).to_have_text("20 of 20")
    expect(page.locator('#participants tr[data-annotator="ana"]')).to_contain_text(
        "20 / 20"
    )
    expect(page.locator('#split-items tr[data-item="tickets-0"]')).to_contain_text(
        "billing × 1"
    )
    screenshot(page, "calibration_report.png")
    page.fill("#close-guideline", NEW_GUIDELINE)
    page.click("#close-session button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("guideline v2 published")
    expect(page.locator("#session-status")).to_have_text("closed")
    lead.close()
    annotator.close()

    with server.session() as session:
        assert session.scalar(select(func.count()).select_from(CalibrationAnswer)) == 20
        labels = sorted(session.scalars(select(CalibrationAnswer.label)))
        assert labels.count('"billing"') == 3 and labels.count('"bug"') == 17
        assert session.scalar(select(func.count()).select_from(Annotation)) == 0
        row = session.scalar(select(CalibrationSession))
        assert (row.status, row.published_guideline_version) == ("closed", 2)
        newest = session.scalar(select(Guideline).order_by(Guideline.version.desc()))
        assert (newest.version, newest.text) == (2, NEW_GUIDELINE)
