import json

import pytest
from typer.testing import CliRunner

from labelwise.cli import app

runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.delenv("LABELWISE_DATABASE_URL", raising=False)
    return f"sqlite:///{tmp_path / 'x.db'}"


def invoke(*args):
    return runner.invoke(app, ["project", *args])


def test_create_list_show_json_round_trip(db, tmp_path):
    guideline = tmp_path / "guide.md"
    guideline.write_text("Spam sells something.\n")
    result = invoke(
        "create",
        "spam",
        "--labels",
        "spam,ham",
        "--guideline",
        str(guideline),
        "--db",
        db,
    )
    assert result.exit_code == 0, result.output
    assert "Created project 'spam'" in result.stdout
    assert "guideline v1" in result.stdout
    result = invoke(
        "create",
        "tickets",
        "--labels",
        "bug,billing",
        "--multi-label",
        "--fields",
        "title,body",
        "--db",
        db,
    )
    assert result.exit_code == 0, result.output

    result = invoke("list", "--json", "--db", db)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["spam", "tickets"]
    assert rows[1]["fields"] == ["title", "body"]
    assert rows[1]["multi_label"] is True

    result = invoke("list", "--db", db)
    assert result.exit_code == 0
    assert "spam" in result.stdout and "title, body" in result.stdout

    result = invoke("show", "spam", "--json", "--db", db)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "name": "spam",
        "labels": ["spam", "ham"],
        "multi_label": False,
        "text_field": "text",
        "fields": [],
        "guideline_version": 1,
        "items_by_role": {"pool": 0, "validation": 0, "gold": 0, "failure": 0},
        "labeled": 0,
        "unlabeled": 0,
        "label_counts": {"spam": 0, "ham": 0},
        "rounds": [],
    }


def test_show_without_json_is_readable(db):
    assert invoke("create", "spam", "--labels", "spam,ham", "--db", db).exit_code == 0
    result = invoke("show", "spam", "--db", db)
    assert result.exit_code == 0, result.output
    for text in ("spam", "single-label", "guideline: none", "validation", "ham"):
        assert text in result.stdout
    assert "No rounds yet." in result.stdout


def test_database_url_from_environment(db, monkeypatch):
    monkeypatch.setenv("LABELWISE_DATABASE_URL", db)
    assert invoke("create", "spam", "--labels", "spam,ham").exit_code == 0
    result = invoke("list", "--json")
    assert [r["name"] for r in json.loads(result.stdout)] == ["spam"]


def test_list_without_projects(db):
    result = invoke("list", "--db", db)
    assert result.exit_code == 0
    assert "No projects yet" in result.stderr
    result = invoke("list", "--json", "--db", db)
    assert json.loads(result.stdout) == []


def test_duplicate_project_exits_5_with_hint(db):
    assert invoke("create", "spam", "--labels", "spam,ham", "--db", db).exit_code == 0
    result = invoke("create", "spam", "--labels", "a,b", "--db", db)
    assert result.exit_code == 5
    assert "project 'spam' already exists" in result.stderr
    assert "labelwise project show spam" in result.stderr


def test_unknown_project_exits_4_listing_names(db):
    invoke("create", "beta", "--labels", "a,b", "--db", db)
    invoke("create", "alpha", "--labels", "a,b", "--db", db)
    result = invoke("show", "nope", "--db", db)
    assert result.exit_code == 4
    assert "No project named 'nope'" in result.stderr
    assert "Existing projects: alpha, beta" in result.stderr
    assert "labelwise project create nope" in result.stderr
    assert result.stdout == ""


def test_text_field_and_fields_together_exit_2(db, tmp_path):
    result = invoke(
        "create",
        "p",
        "--labels",
        "a,b",
        "--text-field",
        "t",
        "--fields",
        "x,y",
        "--db",
        db,
    )
    assert result.exit_code == 2
    assert "--text-field" in result.stderr and "--fields" in result.stderr
    assert "not both" in result.stderr
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("spam", "at least 2 distinct labels"),
        ("a,,b", "non-empty"),
        ("a,b,a", "more than once"),
    ],
)
def test_bad_labels_exit_2(db, labels, message):
    result = invoke("create", "p", "--labels", labels, "--db", db)
    assert result.exit_code == 2
    assert message in result.stderr


def test_guideline_adds_versions(db, tmp_path):
    first = tmp_path / "v1.md"
    first.write_text("first")
    second = tmp_path / "v2.md"
    second.write_text("second")
    invoke("create", "p", "--labels", "a,b", "--guideline", str(first), "--db", db)
    result = invoke("guideline", "p", str(second), "--note", "clearer", "--db", db)
    assert result.exit_code == 0, result.output
    assert "Saved guideline v2 of project 'p'" in result.stdout
    result = invoke("show", "p", "--json", "--db", db)
    assert json.loads(result.stdout)["guideline_version"] == 2

    result = invoke("guideline", "nope", str(second), "--db", db)
    assert result.exit_code == 4
    assert "Existing projects: p" in result.stderr

    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    result = invoke("guideline", "p", str(empty), "--db", db)
    assert result.exit_code == 2
    assert "non-empty text" in result.stderr


def test_missing_guideline_file_exits_2(db, tmp_path):
    result = invoke(
        "create",
        "p",
        "--labels",
        "a,b",
        "--guideline",
        str(tmp_path / "no.md"),
        "--db",
        db,
    )
    assert result.exit_code == 2
    assert "Invalid value for '--guideline'" in result.stderr


def test_bad_database_url_exits_2(tmp_path):
    result = invoke("list", "--db", "mysql://u@h/db")
    assert result.exit_code == 2
    assert "sqlite and postgresql" in result.stderr
