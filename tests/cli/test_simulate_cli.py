import json

from typer.testing import CliRunner

from labelwise.cli import app

runner = CliRunner()
ARGS = [
    "simulate",
    "--data",
    "sklearn:iris",
    "--budget",
    "35",
    "--batch-size",
    "10",
    "--initial",
    "15",
    "--seeds",
    "2",
]


def test_simulate_json_contract():
    result = runner.invoke(app, [*ARGS, "--policy", "margin", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in (
        "dataset",
        "policy",
        "policy_version",
        "seeds",
        "metric",
        "full_data_score",
        "results",
        "gain_vs_random",
    ):
        assert key in data
    assert data["policy"] == "margin"
    assert data["dataset"] == "sklearn:iris"
    assert len(data["policy_version"]) == 12
    assert set(data["results"]) == {"margin", "random"}
    for row in data["results"].values():
        assert {"aulc_mean", "aulc_std", "labels_to_target_mean", "curve"} <= set(row)
        assert all(len(point) == 3 for point in row["curve"])
    assert set(data["gain_vs_random"]) >= {"aulc_delta", "p_value"}


def test_simulate_table_and_plot(tmp_path):
    plot = tmp_path / "c.png"
    result = runner.invoke(app, [*ARGS, "--compare", "entropy", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "entropy" in result.stdout
    assert "random" in result.stdout
    assert plot.exists()


def test_missing_file_exits_4_and_names_the_fix(tmp_path):
    result = runner.invoke(app, ["simulate", "--data", str(tmp_path / "nope.csv")])
    assert result.exit_code == 4
    assert "does not exist" in result.stderr
    assert "Hint" in result.stderr


def test_unknown_policy_lists_names():
    result = runner.invoke(app, [*ARGS, "--policy", "marginn"])
    assert result.exit_code == 2
    assert "margin" in result.stderr
    assert "random" in result.stderr
