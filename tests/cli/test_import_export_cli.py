"""`labelwise import` and `labelwise export`: exit codes, messages, files (SQLite)."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from labelwise.cli import app

runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.delenv("LABELWISE_DATABASE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = runner.invoke(
        app, ["project", "create", "sms", "--labels", "ham,spam", "--db", url]
    )
    assert result.exit_code == 0, result.output
    return url


@pytest.fixture
def sms(tmp_path):
    path = tmp_path / "sms.parquet"
    table = pa.table(
        {
            "text": ["free prize", "hi mum", "call me", "see you", "win cash"],
            "label": ["spam", "ham", "ham", "ham", "spam"],
            "split": ["train", "train", "train", "test", "test"],
        }
    )
    pq.write_table(table, path)
    return path


def test_import_by_split_then_export(db, sms, tmp_path):
    result = runner.invoke(
        app,
        ["import", "sms", str(sms), "--role", "pool", "--split", "train", "--db", db],
    )
    assert result.exit_code == 0, result.output
    assert "Imported 3 pool items (3 with a label) into project 'sms'" in result.stdout
    assert "Skipped 2 records of other splits." in result.stdout
    result = runner.invoke(
        app,
        ["import", "sms", str(sms), "--role", "validation", "--split", "test",
         "--db", db, "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == {
        "project": "sms", "path": str(sms), "format": "parquet",
        "role": "validation", "items": 2, "labels": 2, "skipped_by_split": 3,
        "skipped_duplicates": 0,
    }  # fmt: skip

    out = tmp_path / "val.csv"
    result = runner.invoke(
        app, ["export", "sms", "--out", str(out), "--role", "validation", "--db", db]
    )
    assert result.exit_code == 0, result.output
    assert f"Exported 2 items of project 'sms' to {out} (csv)." in result.stdout
    lines = out.read_text().splitlines()
    assert lines[0] == (
        "external_id,role,text,label,label_method,annotator,annotated_at,round,"
        "reason,policy_version"
    )
    assert lines[1].endswith(",validation,see you,ham,seed,,,,,")


def test_export_formats_and_json(db, sms, tmp_path):
    runner.invoke(app, ["import", "sms", str(sms), "--role", "pool", "--db", db])
    out = tmp_path / "tasks.json"
    result = runner.invoke(
        app, ["export", "sms", "--out", str(out), "--db", db, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["format"] == "label-studio"
    assert len(json.loads(out.read_text())) == 5
    out = tmp_path / "prodigy.jsonl"
    result = runner.invoke(
        app, ["export", "sms", "--out", str(out), "--format", "prodigy", "--db", db]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text().splitlines()[0])["answer"] == "accept"


def test_bad_import_exits_3_and_lists_every_bad_line(db, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"text": "ok", "label": "ham"}\n'
        '{"text": "x", "label": "eggs"}\n'
        '{"label": "ham"}\n'
        '{"text": "cut", "lab'
    )
    result = runner.invoke(
        app, ["import", "sms", str(path), "--role", "pool", "--db", db]
    )
    assert result.exit_code == 3
    assert "Error: Import of" in result.stderr
    assert "nothing was written" in result.stderr
    bad = [
        line.strip() for line in result.stderr.splitlines() if str(path) + ":" in line
    ]
    assert [line.split(":")[1] for line in bad] == ["2", "3", "4"]
    assert f"{path}:2: label: 'eggs' is not a label of project 'sms'" in result.stderr
    assert "Hint: Fix every record listed" in result.stderr
    result = runner.invoke(app, ["export", "sms", "--out", str(tmp_path / "o.jsonl"),
                                 "--db", db, "--json"])  # fmt: skip
    assert json.loads(result.stdout)["items"] == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["import", "nope", "FILE", "--role", "pool"], 4, "No project named 'nope'"),
        (["import", "sms", "missing.csv", "--role", "pool"], 4, "no such file"),
        (["import", "sms", "FILE.txt", "--role", "pool"], 2, "Cannot tell the format"),
        (["export", "sms", "--out", "x.txt"], 2, "Cannot tell the export format"),
        (["export", "nope", "--out", "x.csv"], 4, "No project named 'nope'"),
    ],
)
def test_errors_exit_codes(db, sms, tmp_path, args, code, message):
    txt = tmp_path / "FILE.txt"
    txt.write_text("x")
    replace = {
        "FILE": str(sms),
        "FILE.txt": str(txt),
        "missing.csv": str(tmp_path / "m.csv"),
        "x.txt": str(tmp_path / "x.txt"),
        "x.csv": str(tmp_path / "x.csv"),
    }
    result = runner.invoke(app, [replace.get(a, a) for a in args] + ["--db", db])
    assert result.exit_code == code, result.output
    assert message in result.stderr


def test_role_is_required_and_checked(db, sms):
    result = runner.invoke(app, ["import", "sms", str(sms), "--db", db])
    assert result.exit_code == 2
    assert "--role" in result.stderr
    result = runner.invoke(
        app, ["import", "sms", str(sms), "--role", "train", "--db", db]
    )
    assert result.exit_code == 2
    assert "pool" in result.stderr


def test_ignore_labels_imports_an_unlabeled_pool(db, sms):
    result = runner.invoke(
        app,
        ["import", "sms", str(sms), "--role", "pool", "--ignore-labels",
         "--db", db, "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["items"], report["labels"]) == (5, 0)
    shown = json.loads(
        runner.invoke(app, ["project", "show", "sms", "--json", "--db", db]).stdout
    )
    assert (shown["labeled"], shown["unlabeled"]) == (0, 5)


def test_ignore_labels_is_refused_for_validation_items(db, sms):
    result = runner.invoke(
        app,
        ["import", "sms", str(sms), "--role", "validation", "--ignore-labels",
         "--db", db],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "validation items need their labels" in result.stderr
