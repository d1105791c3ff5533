"""``labelwise agreement --project`` and ``labelwise project quality``."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from labelwise.cli import app
from labelwise.quality import agreement_report
from labelwise.service.store import (
    add_guideline,
    create_project,
    make_engine,
    make_sessionmaker,
    transaction,
)
from labelwise.service.store.migrate import upgrade
from labelwise.service.store.schema import (
    Annotation,
    FinalLabel,
    Item,
    Member,
    QueueEntry,
    Round,
)

runner = CliRunner()
VOTES = {  # item -> (ann1, ann2, ann3); None = not labeled (missing data)
    0: ("bug", "bug", "bug"),
    1: ("bug", "ask", "bug"),
    2: ("ask", "ask", None),
    3: ("ask", "bug", "ask"),
    4: ("bug", None, "bug"),
}


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.delenv("LABELWISE_DATABASE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'q.db'}"
    engine = make_engine(url)
    upgrade(engine)
    start = datetime(2026, 3, 2, 12, tzinfo=UTC)  # a Monday
    with transaction(make_sessionmaker(engine)) as session:
        project = create_project(session=session, name="tickets", labels=["bug", "ask"])
        members = [Member(name=f"ann{n}", role="annotator") for n in (1, 2, 3)]
        session.add_all(members)
        round_ = Round(
            project_id=project.id,
            number=1,
            policy_version="p",
            policy={},
            batch_size=5,
        )
        session.add(round_)
        session.flush()
        for item_no, votes in VOTES.items():
            item = Item(
                project_id=project.id,
                external_id=f"t{item_no}",
                role="pool",
                fields={"text": "x"},
                content_hash=hashlib.sha256(b"%d" % item_no).hexdigest(),
            )
            session.add(item)
            session.flush()
            given = [v for v in votes if v is not None]
            session.add(
                QueueEntry(
                    project_id=project.id,
                    round_id=round_.id,
                    item_id=item.id,
                    rank=item_no,
                    reason="uncertain" if item_no % 2 else "random",
                    target=len(given),
                    done=len(given),
                )
            )
            if item_no == 3:
                add_guideline(session=session, project=project, text="v1")
            for member, vote in zip(members, votes, strict=True):
                if vote is None:
                    continue
                session.add(
                    Annotation(
                        project_id=project.id,
                        item_id=item.id,
                        member_id=member.id,
                        label=json.dumps(vote),
                        source="queue",
                        provenance={},
                        reason="uncertain" if item_no % 2 else "random",
                        guideline_version=1 if item_no >= 3 else None,
                        created_at=start + timedelta(days=3 * item_no),
                    )
                )
    engine.dispose()
    return url


def expected() -> dict:
    rows = [
        (item, f"ann{n + 1}", vote)
        for item, votes in VOTES.items()
        for n, vote in enumerate(votes)
        if vote is not None
    ]
    return agreement_report(
        pd.DataFrame(rows, columns=["item", "annotator", "label"])
    ).to_dict()


def test_project_agreement_json_matches_the_file_figures(db):
    result = runner.invoke(
        app, ["agreement", "--project", "tickets", "--db", db, "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    for key, value in expected().items():
        assert body[key] == pytest.approx(value, abs=1e-12), key
    assert body["fleiss_kappa"] is None  # raters per item vary (2 or 3)
    assert body["n_items"] == 5 and body["n_annotators"] == 3
    by_reason = {row["reason"]: row for row in body["by_reason"]}
    assert set(by_reason) == {"random", "uncertain"}
    assert by_reason["uncertain"]["n_items"] == 2
    # Answers on days 0, 3, 6 (Sunday) of ISO week 10, and 9, 12 of week 11.
    weeks = {row["week"]: row["n_items"] for row in body["by_week"]}
    assert weeks == {"2026-W10": 3, "2026-W11": 2}
    versions = {
        row["guideline_version"]: row["n_items"] for row in body["by_guideline_version"]
    }
    assert versions == {"none": 3, "v1": 2}
    assert {row["final_label"] for row in body["by_label"]} == {"none"}


def test_project_agreement_table_and_errors(db, tmp_path):
    result = runner.invoke(app, ["agreement", "--project", "tickets", "--db", db])
    assert result.exit_code == 0, result.output
    assert "krippendorff_alpha" in result.stdout and "by reason" in result.stdout
    both = runner.invoke(
        app, ["agreement", str(tmp_path / "x.csv"), "--project", "tickets", "--db", db]
    )
    assert both.exit_code != 0 and "either a label FILE" in both.output
    missing = runner.invoke(app, ["agreement", "--project", "nope", "--db", db])
    assert missing.exit_code != 0 and "No project named 'nope'" in missing.output


def test_project_quality_switches_rules_and_redecides(db):
    shown = runner.invoke(app, ["project", "quality", "tickets", "--db", db, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["settings"]["dispute_rules"]["disagreement"] is True
    changed = runner.invoke(
        app,
        [
            "project",
            "quality",
            "tickets",
            "--no-disagreement",
            "--aggregation",
            "dawid_skene",
            "--db",
            db,
            "--json",
        ],
    )
    assert changed.exit_code == 0, changed.output
    body = json.loads(changed.stdout)
    assert body["settings"]["aggregation"] == "dawid_skene"
    assert body["items"]["final"] == 5 and body["items"]["review"] == 0
    engine = make_engine(db)
    with make_sessionmaker(engine)() as session:
        methods = set(session.scalars(select(FinalLabel.method)))
    engine.dispose()
    assert methods == {"dawid_skene"}
    bad = runner.invoke(
        app, ["project", "quality", "tickets", "--aggregation", "mean", "--db", db]
    )
    assert bad.exit_code != 0 and "majority, dawid_skene" in bad.output
    text = runner.invoke(
        app, ["project", "quality", "tickets", "--disagreement", "--db", db]
    )
    assert text.exit_code == 0 and "2 to review" in text.stdout


def test_export_writes_guidelines_and_sessions_beside_the_file(db, tmp_path):
    out = tmp_path / "tickets.jsonl"
    result = runner.invoke(app, ["export", "tickets", "--out", str(out), "--db", db])
    assert result.exit_code == 0, result.output
    sidecar = json.loads((tmp_path / "tickets.jsonl.quality.json").read_text())
    assert sidecar["project"] == "tickets"
    assert [g["version"] for g in sidecar["guidelines"]] == [1]
    assert sidecar["guidelines"][0]["text"] == "v1"
    assert sidecar["sessions"] == []
