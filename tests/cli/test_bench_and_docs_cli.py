import json
from pathlib import Path

from typer.testing import CliRunner

from labelwise.cli import app
from labelwise.cli._docs import command_paths, render_cli_docs
from labelwise.policy import get_policy

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_bench_efficiency_writes_table_json_and_plots(tmp_path):
    out = tmp_path / "eff"
    result = runner.invoke(
        app,
        [
            "bench",
            "efficiency",
            "--datasets",
            "breast_cancer",
            "--policies",
            "margin",
            "--seeds",
            "2",
            "--noise",
            "0,0.3",
            "--out",
            str(out),
            "--jobs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    table = (out / "results.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| breast_cancer")]
    # two noise levels x (margin, random)
    assert len(rows) == 4
    assert any("breast_cancer+noise30" in row for row in rows)
    payload = json.loads((out / "results.json").read_text())
    assert [c["dataset"] for c in payload] == ["breast_cancer", "breast_cancer+noise30"]
    assert payload[1]["config"]["noise"] == 0.3
    for name in ("breast_cancer.png", "breast_cancer+noise30.png", "summary.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_bench_unknown_case_lists_valid_names(tmp_path):
    result = runner.invoke(
        app, ["bench", "efficiency", "--datasets", "nope", "--out", str(tmp_path)]
    )
    assert result.exit_code == 4
    assert "sms_spam" in result.stderr


def test_policies_json_lists_versions():
    result = runner.invoke(app, ["policies", "--json"])
    assert result.exit_code == 0, result.output
    data = {p["name"]: p for p in json.loads(result.stdout)}
    assert {"default", "random", "margin"} <= set(data)
    assert data["default"]["version"] == get_policy("default").version


def test_policies_unknown_file_exits_2():
    result = runner.invoke(app, ["policies", "no_such_policy"])
    assert result.exit_code == 2
    assert "default" in result.stderr


def test_strategies_lists_every_strategy():
    result = runner.invoke(app, ["strategies"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("margin", "kcenter", "error_driven", "vote_entropy"):
        assert name in result.stdout


def test_cli_docs_are_current():
    expected = render_cli_docs(app)
    current = (ROOT / "docs" / "cli.md").read_text()
    assert current == expected, "docs/cli.md is stale: run scripts/docs"
    assert ["bench", "efficiency"] in command_paths(app)
