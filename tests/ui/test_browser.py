"""The web UI in a real browser: Debian's Chromium driven by Playwright.

Each test works through the pages of a ``labelwise serve`` subprocess (see
``conftest.py``) and then checks the database itself: what the pages claim
was done must be exactly what was stored. Screenshots of the three pages go
to ``tests/ui/screenshots/`` (kept out of git; the README's copies are in
``docs/img/``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select
from uitools import IMG_TEXT, LABELS, SCREENSHOTS, SCRIPT_TEXT, URGENT, Server

from labelwise.service.store.schema import (
    Annotation,
    FinalLabel,
    Item,
    Lease,
    Member,
    Project,
    Round,
)

pytestmark = pytest.mark.browser

FLAG_NOTE = "Two teams could answer this; the guideline does not say which."
REVIEW_NOTE = "Charged twice is billing, per guideline section 2."


# ------------------------------------------------------------------ helpers


def log_in(page: Any, server: Server, name: str, next_path: str = "/") -> None:
    """Log in through the login form as ``name``; lands on ``next_path``."""
    page.goto(f"/login?next={next_path}")
    page.fill("#username", name)
    page.fill("#password", server.passwords[name])
    page.click("#login-submit")
    page.wait_for_url(f"**{next_path}")


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def shown_lease(page: Any, other_than: str = "") -> str:
    """Wait until the annotator page shows a lease other than ``other_than``."""
    page.wait_for_function(
        """prev => {
            const id = document.getElementById("annotate").dataset.leaseId;
            return id && id !== prev;
        }""",
        arg=other_than,
    )
    lease: str = page.get_attribute("#annotate", "data-lease-id")
    return lease


def item_text(page: Any) -> str:
    text: str = page.text_content("#item-text")
    return text


def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """``check()``'s value once it is truthy (the page's last post may be in flight)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def project_id(session: Any, name: str) -> int:
    found: int = session.scalar(select(Project.id).where(Project.name == name))
    return found


def member_id(session: Any, name: str) -> int:
    found: int = session.scalar(select(Member.id).where(Member.name == name))
    return found


def queue_answers(server: Server, project: str, member: str) -> dict[str, str]:
    """``{item text: label}`` of ``member``'s queue answers in ``project``."""
    with server.session() as session:
        rows = session.execute(
            select(Item.fields, Annotation.label)
            .join(Item, Item.id == Annotation.item_id)
            .where(
                Annotation.project_id == project_id(session, project),
                Annotation.member_id == member_id(session, member),
                Annotation.source == "queue",
            )
        ).all()
    return {fields["text"]: json.loads(label) for fields, label in rows}


def leases_by_text(server: Server, project: str, member: str) -> dict[str, Any]:
    """``{item text: Lease}`` of ``member``'s leases in ``project``."""
    with server.session() as session:
        rows = session.execute(
            select(Item.fields, Lease)
            .join(Item, Item.id == Lease.item_id)
            .where(
                Lease.project_id == project_id(session, project),
                Lease.member_id == member_id(session, member),
            )
        ).all()
        session.expunge_all()
    return {fields["text"]: lease for fields, lease in rows}


# -------------------------------------------------------------------- tests


def test_login_projects_and_logout(page, server, dialogs, js_errors):
    page.goto("/projects/tickets/annotate")
    page.wait_for_url("**/login?next=*")
    page.fill("#username", "ana")
    page.fill("#password", "not-the-password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_contain_text("wrong password")
    page.fill("#password", server.passwords["ana"])
    page.click("#login-submit")
    page.wait_for_url("**/projects/tickets/annotate")
    expect(page.locator("#item-text")).not_to_be_empty()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["labelwise_session"]["httpOnly"] is True

    page.goto("/")  # annotators see only their projects
    rows = page.locator("#projects tr[data-project]")
    expect(rows).to_have_count(2)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.project)") == [
        "inert",
        "tickets",
    ]
    response = page.goto("/projects/disputes/annotate")
    assert response is not None and response.status == 404

    page.click("#logout")
    page.wait_for_url("**/login")
    page.goto("/projects/tickets/annotate")
    page.wait_for_url("**/login?next=*")
    assert dialogs == []
    assert js_errors == []


def test_keyboard_only_labeling_skip_flag_undo(page, server, dialogs, js_errors):
    log_in(page, server, "ana", "/projects/tickets/annotate")
    keyboard = page.keyboard

    expect(page.locator("#shortcuts")).to_be_hidden()
    keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    keyboard.press("Escape")
    expect(page.locator("#shortcuts")).to_be_hidden()
    keyboard.press("g")
    expect(page.locator("#guideline")).to_contain_text("Pick the team")
    keyboard.press("Escape")
    expect(page.locator("#guideline")).to_be_hidden()

    typed: list[tuple[str, str]] = []
    lease = shown_lease(page)
    for n in range(10):
        key = str(n % len(LABELS) + 1)
        label = LABELS[n % len(LABELS)]
        text = item_text(page)
        keyboard.press(key)
        expect(page.locator(f'.label-button[data-key="{key}"]')).to_have_attribute(
            "aria-pressed", "true"
        )
        if n == 5:
            expect(page.locator("#progress")).to_contain_text("Done today: 5")
            screenshot(page, "annotate.png")
        keyboard.press("Enter")
        typed.append((text, label))
        last_lease, lease = lease, shown_lease(page, lease)
    expect(page.locator("#flash")).to_contain_text(f"Saved: {typed[-1][1]}")

    skipped = item_text(page)
    keyboard.press("s")
    lease = shown_lease(page, lease)

    flagged = item_text(page)
    keyboard.press("f")
    expect(page.locator("#flag-form")).to_be_visible()
    keyboard.press("Tab")
    expect(page.locator("#flag-note")).to_be_focused()
    keyboard.type(FLAG_NOTE)
    keyboard.press("Enter")
    lease = shown_lease(page, lease)
    expect(page.locator("#flag-form")).to_be_hidden()

    keyboard.press("u")
    shown_lease(page, lease)
    expect(page.locator("#annotate")).to_have_attribute("data-lease-id", last_lease)
    expect(page.locator("#item-text")).to_have_text(typed[-1][0])
    expect(page.locator("#flash")).to_contain_text("Undone")
    undone_key = str(9 % len(LABELS) + 1)
    expect(page.locator(f'.label-button[data-key="{undone_key}"]')).to_have_attribute(
        "aria-pressed", "true"
    )

    expected = dict(typed[:9])
    answers = eventually(
        lambda: (a := queue_answers(server, "tickets", "ana")) == expected and a
    )
    assert answers == expected
    leases = leases_by_text(server, "tickets", "ana")
    by_status: dict[str, list[str]] = {}
    for text, row in leases.items():
        by_status.setdefault(row.status, []).append(text)
    assert by_status["skipped"] == [skipped]
    assert by_status["flagged"] == [flagged]
    assert leases[flagged].flag == "ambiguous"
    assert leases[flagged].note == FLAG_NOTE
    assert len(by_status["submitted"]) == 9
    assert typed[-1][0] in by_status["active"]  # the undone item, held again
    expect(page.locator("#progress")).to_have_attribute("data-done-today", "9")
    assert dialogs == []
    assert js_errors == []


def test_markup_in_items_is_shown_as_inert_text(page, server, dialogs, js_errors):
    log_in(page, server, "ana", "/projects/inert/annotate")
    seen: list[str] = []
    lease = ""
    for _ in range(2):
        lease = shown_lease(page, lease)
        text = item_text(page)
        seen.append(text)
        assert page.locator("#item-text > *").count() == 0
        assert text in page.locator("body").inner_text()
        assert page.locator("img[src=x]").count() == 0
        assert page.locator("#annotate script").count() == 0
        page.keyboard.press("1")
        page.keyboard.press("Enter")
    expect(page.locator("#item-empty")).to_be_visible()
    assert sorted(seen) == sorted([SCRIPT_TEXT, IMG_TEXT])
    assert dialogs == []
    assert js_errors == []
    answers = eventually(
        lambda: len(a := queue_answers(server, "inert", "ana")) == 2 and a
    )
    assert answers == {SCRIPT_TEXT: "bug", IMG_TEXT: "bug"}


def _answer(server: Server, member: str, label: str | None) -> str:
    """Claim the next disputes item as ``member`` and answer (or flag) it."""
    claim = server.api("POST", "/projects/disputes/next", member)
    assert claim.status_code == 200, claim.text
    lease_id = claim.json()["lease_id"]
    if label is None:
        done = server.api(
            "POST",
            f"/leases/{lease_id}/flag",
            member,
            json={"flag": "guideline_gap", "note": "Which team owns refunds?"},
        )
    else:
        done = server.api(
            "POST",
            f"/leases/{lease_id}/annotation",
            member,
            json={
                "label": label,
                "time_spent_ms": 4200,
                "idempotency_key": f"{member}-{lease_id}",
            },
        )
    assert done.is_success, done.text
    external_id: str = claim.json()["item"]["external_id"]
    return external_id


def test_reviewer_resolves_a_disagreement(page, server, dialogs, js_errors):
    # bob and cat answer the same items (overlap 2): two disagree, one agrees,
    # cat flags the last one.
    plan = [("bug", "billing"), ("account", "other"), ("bug", "bug"), ("other", None)]
    items = []
    for bob_label, cat_label in plan:
        first = _answer(server, "bob", bob_label)
        second = _answer(server, "cat", cat_label)
        assert first == second
        items.append(first)
    disputed, other_disputed, agreed, flagged = items

    log_in(page, server, "rita", "/projects/disputes/review")
    cards = page.locator(".dispute")
    expect(cards).to_have_count(3)
    assert sorted(cards.evaluate_all("els => els.map(e => e.dataset.item)")) == sorted(
        [disputed, other_disputed, flagged]
    )
    card = page.locator(f'.dispute[data-item="{disputed}"]')
    expect(card.locator(".answer")).to_have_count(2)
    expect(card.locator(".answer-label")).to_have_text(["bug", "billing"])
    expect(page.locator(f'.dispute[data-item="{flagged}"]')).to_contain_text(
        "Which team owns refunds?"
    )
    texts = page.locator(".dispute .item-text")
    expect(texts).to_have_count(3)
    assert all(t.strip().endswith(URGENT) for t in texts.all_text_contents())
    assert page.locator(".dispute .item-text > *").count() == 0
    screenshot(page, "review.png")

    page.fill("#review-note", REVIEW_NOTE)
    card.locator('.resolve-button[data-label="billing"]').click()
    page.wait_for_url("**/projects/disputes/review")
    expect(page.locator(".flash")).to_contain_text(
        f"Item '{disputed}' resolved as 'billing'"
    )
    expect(page.locator(".dispute")).to_have_count(2)
    expect(page.locator(f'.dispute[data-item="{disputed}"]')).to_have_count(0)

    with server.session() as session:
        item_id = session.scalar(select(Item.id).where(Item.external_id == disputed))
        final = session.get(FinalLabel, item_id)
        assert final is not None
        assert (json.loads(final.label), final.method) == ("billing", "adjudicated")
        votes = session.execute(
            select(Annotation.source, Annotation.label, Annotation.note, Member.name)
            .join(Member, Member.id == Annotation.member_id)
            .where(Annotation.item_id == item_id)
            .order_by(Annotation.id)
        ).all()
        assert [tuple(v) for v in votes] == [
            ("queue", '"bug"', None, "bob"),
            ("queue", '"billing"', None, "cat"),
            ("review", '"billing"', REVIEW_NOTE, "rita"),
        ]
        agreed_id = session.scalar(select(Item.id).where(Item.external_id == agreed))
        agreed_final = session.get(FinalLabel, agreed_id)
        assert agreed_final is not None and agreed_final.method == "agreement"
    assert dialogs == []
    assert js_errors == []


def test_lead_dashboard_shows_the_backlog_and_starts_a_round(
    page, server, dialogs, js_errors
):
    log_in(page, server, "lee", "/projects/tickets/dashboard")
    status = server.api("GET", "/projects/tickets/queue", "lee").json()
    backlog = page.locator("#backlog")
    for key in ("open_entries", "remaining", "active_leases"):
        expect(backlog.locator(f'[data-stat="{key}"] strong')).to_have_text(
            str(status[key])
        )
    expect(page.locator("#latest-round [data-field=number]")).to_have_text("1")
    expect(page.locator("#throughput")).to_be_visible()
    screenshot(page, "dashboard.png")

    form = page.locator("#start-round")
    form.locator("input[name=batch_size]").fill("5")
    form.locator("button[type=submit]").click()
    expect(page.locator(".flash")).to_contain_text("Round 2 queued")
    expect(page.locator("#latest-round [data-field=number]")).to_have_text("2")
    with server.session() as session:
        rounds = session.scalars(
            select(Round.batch_size)
            .where(Round.project_id == project_id(session, "tickets"))
            .order_by(Round.number)
        ).all()
        assert rounds == [20, 5]

    def n_items() -> int:
        with server.session() as session:
            count: int = session.scalar(
                select(func.count())
                .select_from(Item)
                .where(Item.project_id == project_id(session, "tickets"))
            )
            return count

    before = n_items()
    upload = page.locator("#upload")
    upload.locator("input[name=file]").set_input_files(
        files=[
            {
                "name": "more.jsonl",
                "mimeType": "application/x-ndjson",
                "buffer": (
                    b'{"id": "new-1", "text": "Refund please"}\n'
                    b'{"id": "new-2", "text": "Cannot log in", "label": "spam"}\n'
                ),
            }
        ]
    )
    upload.locator("button[type=submit]").click()
    errors = page.locator("#import-errors")
    expect(errors).to_contain_text("more.jsonl:2: label")
    assert n_items() == before  # all or nothing
    assert dialogs == []
    assert js_errors == []
