import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from labelwise.cli import app

runner = CliRunner()

KEYS = {
    "n_items",
    "n_annotators",
    "n_labels",
    "percent_agreement",
    "fleiss_kappa",
    "krippendorff_alpha",
    "mean_pairwise_cohen_kappa",
}


def _long():
    return pd.DataFrame(
        {
            "doc": [1, 1, 1, 2, 2, 2, 3, 3, 3],
            "who": ["a", "b", "c"] * 3,
            "tag": ["x", "x", "y", "y", "y", "y", "x", "y", "x"],
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_json_has_exactly_the_figures(tmp_path, suffix):
    path = tmp_path / f"labels{suffix}"
    frame = _long()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    args = ["agreement", str(path), "--item-column", "doc"]
    args += ["--annotator-column", "who", "--label-column", "tag", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert set(figures) == KEYS
    assert figures["n_items"] == 3
    assert figures["n_labels"] == 9
    assert figures["percent_agreement"] == pytest.approx(5 / 9)


def test_list_columns_are_exploded_and_table_printed(tmp_path):
    path = tmp_path / "wide.parquet"
    pd.DataFrame(
        {
            "item_id": ["t1", "t2", "t3"],
            "annotators": [["a", "b"], ["a", "b"], ["a", "b"]],
            "annotations": [[1, 1], [0, 1], [0, 0]],
        }
    ).to_parquet(path)
    args = ["agreement", str(path), "--item-column", "item_id"]
    args += ["--annotator-column", "annotators", "--label-column", "annotations"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["n_annotators"] == 2
    assert figures["mean_pairwise_cohen_kappa"] == pytest.approx(0.4)
    table = runner.invoke(app, args, env={"COLUMNS": "120"})
    assert table.exit_code == 0, table.output
    for key in KEYS:
        assert key in table.stdout
    assert "0.4000" in table.stdout


@pytest.mark.parametrize("method", ["majority", "dawid-skene"])
def test_aggregate_writes_final_labels(tmp_path, method):
    path = tmp_path / "labels.csv"
    _long().to_csv(path, index=False)
    out = tmp_path / "final.csv"
    args = ["agreement", str(path), "--item-column", "doc", "--annotator-column"]
    args += ["who", "--label-column", "tag", "--aggregate", method, "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Wrote 3 final labels" in result.stdout
    final = pd.read_csv(out)
    assert list(final.columns) == ["item", "label", "confidence", "method"]
    assert final["label"].tolist() == ["x", "y", "x"]
    expected = "majority" if method == "majority" else "dawid-skene"
    assert set(final["method"]) == {expected}


def test_missing_column_exits_2_and_lists_columns(tmp_path):
    path = tmp_path / "labels.csv"
    _long().to_csv(path, index=False)
    result = runner.invoke(app, ["agreement", str(path), "--item-column", "doc"])
    assert result.exit_code == 2
    assert "'annotator', 'label'" in result.stderr
    assert "'doc', 'who', 'tag'" in result.stderr
    assert "--annotator-column" in result.stderr


def test_bad_aggregate_options_exit_2(tmp_path):
    path = tmp_path / "labels.csv"
    _long().to_csv(path, index=False)
    base = ["agreement", str(path), "--item-column", "doc"]
    base += ["--annotator-column", "who", "--label-column", "tag"]
    result = runner.invoke(app, [*base, "--aggregate", "majority"])
    assert result.exit_code == 2
    assert "--aggregate and --out go together" in result.stderr
    result = runner.invoke(app, [*base, "--aggregate", "mean", "--out", "x.csv"])
    assert result.exit_code == 2
    assert "dawid-skene, majority" in result.stderr


def test_missing_file_and_unknown_format(tmp_path):
    result = runner.invoke(app, ["agreement", str(tmp_path / "nope.csv")])
    assert result.exit_code == 4
    assert "does not exist" in result.stderr
    odd = tmp_path / "labels.txt"
    odd.write_text("x")
    result = runner.invoke(app, ["agreement", str(odd)])
    assert result.exit_code == 2
    assert "suffix" in result.stderr
