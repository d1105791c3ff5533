"""`labelwise train`, `labelwise release ...` and `export --release` (CliRunner)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from labelwise.cli import app

runner = CliRunner()
MANIFEST_KEYS = [
    "release_id",
    "created_at",
    "counts_by_label",
    "counts_by_reason",
    "policy_versions",
    "model_versions",
    "label_date_range",
    "guideline_versions",
    "agreement",
    "validation_metric",
]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _records(n, seed, prefix, labeled):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "a" if i % 2 == 0 else "b"
        centre = 0.0 if label == "a" else 3.0
        x, y = centre + rng.normal(size=2)
        row = {"id": f"{prefix}{i}", "x": float(x), "y": float(y)}
        if i < labeled:
            row["label"] = label
        rows.append(row)
    return rows


@pytest.fixture
def db(tmp_path, monkeypatch):
    """Project "t": 60 pool items (24 labeled) and 20 validation items."""
    monkeypatch.delenv("LABELWISE_DATABASE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = invoke(
        "project", "create", "t", "--labels", "a,b", "--fields", "x,y", "--db", url
    )
    assert result.exit_code == 0, result.output
    for role, rows in (
        ("pool", _records(60, 1, "p", 24)),
        ("validation", _records(20, 2, "v", 20)),
    ):
        path = tmp_path / f"{role}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        result = invoke("import", "t", path, "--role", role, "--db", url)
        assert result.exit_code == 0, result.output
    return url


def test_train_runs_a_job_and_prints_the_model_and_round(db):
    result = invoke("train", "t", "--batch-size", 8, "--seed", 3, "--db", db)
    assert result.exit_code == 0, result.output
    assert "Training job 1 of project 't': done." in result.stdout
    assert (
        "trained on 24 labels" in result.stdout and "round    1 queued" in result.stdout
    )
    result = invoke("train", "t", "--json", "--db", db)
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    assert job["status"] == "done" and job["trigger"] == "cli"
    assert job["batch_size"] == 8  # repeated from the latest round
    assert job["round"]["number"] == 2 and job["model"]["metrics"]["n_validation"] == 20


def test_train_failure_exits_non_zero_with_the_error(db):
    result = invoke("train", "t", "--policy", "no-such-policy", "--db", db)
    assert result.exit_code == 2
    assert "no-such-policy" in result.stderr
    result = invoke("train", "nope", "--db", db)
    assert result.exit_code == 4 and "nope" in result.stderr


def test_release_create_list_diff_rollback(db, tmp_path):
    result = invoke("release", "t", "--note", "seed labels", "--json", "--db", db)
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert list(manifest)[: len(MANIFEST_KEYS)] == MANIFEST_KEYS
    assert manifest["release_id"] == "r1" and manifest["n_labels"] == 44
    more = tmp_path / "more.jsonl"
    more.write_text(
        json.dumps({"id": "extra", "x": 0.1, "y": 0.2, "label": "a"}) + "\n"
    )
    assert invoke("import", "t", more, "--role", "pool", "--db", db).exit_code == 0
    result = invoke("release", "t", "--db", db)
    assert result.exit_code == 0, result.output
    assert "Release r2 of project 't': 45 labels" in result.stdout
    assert "labels     a 23, b 22" in result.stdout
    result = invoke("release", "list", "t", "--db", db)
    assert result.exit_code == 0
    assert (
        "r1" in result.stdout
        and "seed labels" in result.stdout
        and "r2" in result.stdout
    )
    result = invoke("release", "diff", "t", "r1", "r2", "--db", db)
    assert result.exit_code == 0, result.output
    assert "r1 -> r2: 1 added, 0 removed, 0 changed, 44 unchanged." in result.stdout
    assert "+ extra  a" in result.stdout
    result = invoke("release", "diff", "t", "r1", "r7", "--json", "--db", db)
    assert result.exit_code == 4 and "No release 'r7'" in result.stderr
    result = invoke("release", "rollback", "t", "r1", "--json", "--db", db)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["removed"] == 1
    result = invoke("release", "diff", "t", "r2", "r1", "--json", "--db", db)
    assert json.loads(result.stdout)["removed"] == [
        {"external_id": "extra", "label": "a"}
    ]


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet", "json"])
def test_export_a_release(db, tmp_path, suffix):
    assert invoke("release", "t", "--db", db).exit_code == 0
    out = tmp_path / f"r1.{suffix}"
    result = invoke(
        "export", "t", "--out", out, "--release", "r1", "--json", "--db", db
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["items"] == 44 and report["release"] == "r1"
    result = invoke("export", "t", "--out", out, "--release", "r5", "--db", db)
    assert result.exit_code == 4 and "No release 'r5'" in result.stderr


def test_export_a_release_as_prodigy(db, tmp_path):
    assert invoke("release", "t", "--db", db).exit_code == 0
    out = tmp_path / "r1.jsonl"
    result = invoke(
        "export",
        "t",
        "--out",
        out,
        "--format",
        "prodigy",
        "--release",
        "r1",
        "--role",
        "validation",
        "--db",
        db,
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 20 and all(line["answer"] == "accept" for line in lines)
    assert "Exported 20 labels of release r1 of project 't'" in result.stdout
