import json
from pathlib import Path

import pytest
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
    table = (out / "results.md").read_text().split("\n\n")[0]  # per-policy rows
    rows = [line for line in table.splitlines() if line.startswith("| breast_cancer")]
    # two noise levels x (margin, random)
    assert len(rows) == 4
    assert any("breast_cancer+noise30" in row for row in rows)
    payload = json.loads((out / "results.json").read_text())
    assert [c["dataset"] for c in payload] == ["breast_cancer", "breast_cancer+noise30"]
    assert payload[1]["config"]["noise"] == 0.3
    for name in ("breast_cancer.png", "breast_cancer+noise30.png", "summary.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_bench_efficiency_batches_and_primary_vs_best_other(tmp_path):
    out = tmp_path / "eff"
    options = {"--datasets": "iris", "--seeds": "2", "--batches": "main,alt"}
    options |= {"--policies": "default,margin", "--jobs": "1", "--out": str(out)}
    args = [part for pair in options.items() for part in pair]
    result = runner.invoke(app, ["bench", "efficiency", *args])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "results.json").read_text())
    assert [c["dataset"] for c in payload] == ["iris@b5", "iris@b10"]
    assert [c["config"]["batch_size"] for c in payload] == [5, 10]
    for comp in payload:
        results = comp["results"]
        assert set(results) == {"default", "margin", "random"}
        assert comp["gain_vs_random"]["n_pairs"] == 2  # the t-test stays
        versus = comp["wilcoxon_vs_random"]
        assert set(versus) == {"policy", "aulc_delta", "p_value", "n"}
        assert versus["policy"] == "random"
        assert versus["n"] == 2
        assert 0 <= versus["p_value"] <= 1
        primary = results["default"]["aulc_mean"]
        assert versus["aulc_delta"] == pytest.approx(
            primary - results["random"]["aulc_mean"]
        )
        best = comp["vs_best_other"]
        others = {n: r["aulc_mean"] for n, r in results.items() if n != "default"}
        assert best["policy"] == max(others, key=others.__getitem__)
        assert best["aulc_delta"] == pytest.approx(primary - others[best["policy"]])
    per_policy, note, versus_table = (out / "results.md").read_text().split("\n\n")
    assert "Wilcoxon signed-rank" in note
    header, _, *rows = versus_table.strip().splitlines()
    assert header == (
        "| dataset | budget / batch | primary | AULC ± std | labels to 95 % | "
        "Δ vs random (p) | best other | Δ vs best (p) |"
    )
    assert [row.split(" | ")[:3] for row in rows] == [
        ["| iris@b5", "60 / 5", "default"],
        ["| iris@b10", "60 / 10", "default"],
    ]
    for row, comp in zip(rows, payload, strict=True):
        assert f"| {comp['vs_best_other']['policy']} |" in row
        assert row.count("(p ") == 2
    assert per_policy.count("| iris@b10 |") == 3
    for name in ("iris@b5.png", "iris@b10.png", "summary.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_bench_batch_too_large_names_the_fix(tmp_path):
    result = runner.invoke(
        app,
        [
            *["bench", "efficiency", "--datasets", "iris"],
            *["--batches", "5,60", "--out", str(tmp_path)],
        ],
    )
    assert result.exit_code == 2
    assert "smaller than the budget minus the initial set" in result.stderr
    assert "--batches" in result.stderr
    assert not (tmp_path / "results.json").exists()


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
