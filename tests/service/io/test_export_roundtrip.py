"""export_project on SQLite and PostgreSQL: round trips, provenance, paging, errors."""

import json

import pyarrow.parquet as pq
import pytest
from sqlalchemy import event, select

from labelwise.exceptions import InvalidInputError
from labelwise.service.io._writers import prodigy_hash
from labelwise.service.store.engine import transaction
from labelwise.service.store.labels import set_final_label
from labelwise.service.store.projects import get_project
from labelwise.service.store.schema import (
    Annotation,
    FinalLabel,
    Item,
    Member,
    Round,
    Selection,
)

SUFFIX = {
    "jsonl": "jsonl",
    "csv": "csv",
    "parquet": "parquet",
    "label-studio": "json",
    "prodigy": "jsonl",
}
FORMATS = list(SUFFIX)

TRICKY = [
    {"id": "a-1", "text": 'comma, "quotes"\nand a newline', "label": "spam"},
    {"id": 2, "text": "ünïcödé ✓ — 𝔘", "label": "ham"},
    {"text": "no id, no label"},
    {"text": "hashed id, labeled", "label": "spam"},
    {"external_id": "x|y", "text": "  leading spaces", "label": "ham"},
]


def jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def state(session_factory, name):
    """{external_id: (role, fields, final label, gold label)} of a project."""
    with transaction(session_factory) as session:
        project = get_project(session=session, name=name)
        rows = session.execute(
            select(
                Item.external_id, Item.role, Item.fields, FinalLabel.label,
                Item.gold_label,
            )
            .outerjoin(FinalLabel, FinalLabel.item_id == Item.id)
            .where(Item.project_id == project.id)
        ).all()  # fmt: skip
    return {r[0]: tuple(r[1:]) for r in rows}


def round_trip(tmp_path, fmt, make_project, run_import, run_export, role="pool", **kw):
    out = tmp_path / f"export.{SUFFIX[fmt]}"
    written = run_export("src", out, fmt)
    make_project("dst", **kw)
    report = run_import("dst", out, role=role, format=fmt)
    return written, report


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_keeps_ids_fields_and_labels(
    tmp_path, fmt, make_project, run_import, run_export, session_factory
):
    make_project("src")
    run_import("src", jsonl(tmp_path / "in.jsonl", TRICKY))
    written, report = round_trip(tmp_path, fmt, make_project, run_import, run_export)
    assert written == report.items == 5
    source = state(session_factory, "src")
    assert {"a-1", "2", "x|y"} <= set(source)
    assert state(session_factory, "dst") == source


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_multi_label(
    tmp_path, fmt, make_project, run_import, run_export, session_factory
):
    labels = ("a", "b", "c")
    make_project("src", labels=labels, multi_label=True)
    records = [
        {"id": "1", "text": "x", "label": ["b", "a"]},
        {"id": "2", "text": "y", "label": ["c"]},
        {"id": "3", "text": "z"},
    ]
    run_import("src", jsonl(tmp_path / "in.jsonl", records))
    round_trip(
        tmp_path, fmt, make_project, run_import, run_export, labels=labels,
        multi_label=True,
    )  # fmt: skip
    assert state(session_factory, "dst") == state(session_factory, "src")


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_gold(
    tmp_path, fmt, make_project, run_import, run_export, session_factory
):
    make_project("src")
    records = [
        {"id": "g1", "text": "a", "label": "spam"},
        {"text": "b", "label": "ham"},
    ]
    run_import("src", jsonl(tmp_path / "in.jsonl", records), role="gold")
    round_trip(tmp_path, fmt, make_project, run_import, run_export, role="gold")
    after = state(session_factory, "dst")
    assert after == state(session_factory, "src")
    assert after["g1"] == ("gold", {"text": "a"}, None, '"spam"')


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "label-studio", "prodigy"])
def test_round_trip_tabular_fields_keep_types(
    tmp_path, fmt, make_project, run_import, run_export, session_factory
):
    make_project("src", fields=["age", "city", "score"])
    records = [
        {"id": i, "age": 30 + i, "city": f"c{i}", "score": i / 4, "label": "ham"}
        for i in range(4)
    ]
    run_import("src", jsonl(tmp_path / "in.jsonl", records))
    round_trip(
        tmp_path, fmt, make_project, run_import, run_export,
        fields=["age", "city", "score"],
    )  # fmt: skip
    after = state(session_factory, "dst")
    assert after == state(session_factory, "src")
    assert after["1"][1] == {"age": 31, "city": "c1", "score": 0.25}


def test_export_fields_and_provenance(
    tmp_path, make_project, run_import, run_export, session_factory
):
    make_project("src")
    records = [
        {"id": "seed", "text": "a", "label": "ham", "annotator": "ann",
         "annotated_at": "2024-01-01T00:00:00+00:00"},
        {"id": "queued", "text": "b"},
        {"id": "plain", "text": "c"},
    ]  # fmt: skip
    run_import("src", jsonl(tmp_path / "in.jsonl", records))
    with transaction(session_factory) as session:
        project = get_project(session=session, name="src")
        item = session.scalar(select(Item).where(Item.external_id == "queued"))
        member = Member(name="maria", role="annotator")
        rnd = Round(
            project_id=project.id, number=3, policy_version="pv-123", policy={},
            batch_size=10,
        )  # fmt: skip
        session.add_all([member, rnd])
        session.flush()
        session.add(
            Selection(
                round_id=rnd.id, item_id=item.id, reason="uncertain",
                strategy="margin", rank=0,
            )
        )  # fmt: skip
        session.add(
            Annotation(
                project_id=project.id, item_id=item.id, member_id=member.id,
                label='"spam"', source="queue", round_id=rnd.id,
            )
        )  # fmt: skip
        set_final_label(session=session, item=item, label="spam", method="single")
    out = tmp_path / "out.jsonl"
    assert run_export("src", out, "jsonl") == 3
    rows = {r["external_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert list(rows["seed"]) == [
        "external_id", "role", "text", "label", "label_method", "annotator",
        "annotated_at", "round", "reason", "policy_version",
    ]  # fmt: skip
    assert rows["seed"] == {
        "external_id": "seed", "role": "pool", "text": "a", "label": "ham",
        "label_method": "seed", "annotator": "ann",
        "annotated_at": "2024-01-01T00:00:00+00:00", "round": None, "reason": None,
        "policy_version": None,
    }  # fmt: skip
    queued = rows["queued"]
    assert (queued["label"], queued["label_method"]) == ("spam", "single")
    assert (queued["annotator"], queued["round"]) == ("maria", 3)
    assert (queued["reason"], queued["policy_version"]) == ("uncertain", "pv-123")
    assert queued["annotated_at"].startswith("20")
    assert rows["plain"]["label"] is None and rows["plain"]["annotator"] is None


def test_label_studio_and_prodigy_shapes(
    tmp_path, make_project, run_import, run_export
):
    make_project("src")
    records = [{"id": "k", "text": "a", "label": "spam", "_input_hash": 42,
                "answer": "accept", "_timestamp": 1700000000}]  # fmt: skip
    run_import("src", jsonl(tmp_path / "in.jsonl", records), format="prodigy")
    run_export("src", tmp_path / "ls.json", "label-studio")
    [task] = json.loads((tmp_path / "ls.json").read_text())
    assert task["data"] == {"text": "a"}
    assert task["meta"]["external_id"] == "k"
    [annotation] = task["annotations"]
    assert annotation["result"] == [
        {"from_name": "label", "to_name": "text", "type": "choices",
         "value": {"choices": ["spam"]}}
    ]  # fmt: skip
    run_export("src", tmp_path / "p.jsonl", "prodigy")
    record = json.loads((tmp_path / "p.jsonl").read_text())
    assert record["_input_hash"] == 42  # kept from the import
    assert (record["answer"], record["accept"]) == ("accept", ["spam"])
    assert record["meta"]["id"] == "k"
    assert record["_timestamp"] == 1700000000
    assert record["options"] == [
        {"id": "ham", "text": "ham"},
        {"id": "spam", "text": "spam"},
    ]


def test_prodigy_hash_is_computed_when_not_imported():
    assert prodigy_hash({"text": "a"}) == prodigy_hash({"text": "a"})
    assert -(2**31) <= prodigy_hash({"text": "a"}) < 2**31
    assert prodigy_hash({"text": "a"}) != prodigy_hash({"text": "b"})


def test_export_role_filter_and_parquet_types(
    tmp_path, make_project, run_import, run_export
):
    make_project("src")
    run_import("src", jsonl(tmp_path / "a.jsonl", [{"text": "p", "label": "ham"}]))
    run_import(
        "src", jsonl(tmp_path / "b.jsonl", [{"text": "v", "label": "spam"}]),
        role="validation",
    )  # fmt: skip
    out = tmp_path / "v.parquet"
    assert run_export("src", out, "parquet", role="validation") == 1
    table = pq.read_table(out)
    assert table.column("text").to_pylist() == ["v"]
    assert str(table.schema.field("round").type) == "int64"


def test_export_pages_with_a_few_queries(
    tmp_path, make_project, run_import, run_export, engine
):
    make_project("src")
    records = [{"text": f"t{i}", "label": "ham"} for i in range(2500)]
    run_import("src", jsonl(tmp_path / "in.jsonl", records))
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert run_export("src", tmp_path / "out.csv", "csv") == 2500
    finally:
        event.remove(engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # get_project + 3 pages x (items, annotations) + the final empty page
    assert len(selects) <= 9, selects


def test_export_errors_leave_no_file(tmp_path, make_project, run_import, run_export):
    make_project("src", fields=["x"])
    run_import("src", jsonl(tmp_path / "in.jsonl", [{"x": 1}, {"x": "one"}]))
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "out.parquet"
    out.write_text("old content")
    with pytest.raises(InvalidInputError, match="different types") as info:
        run_export("src", out, "parquet")
    assert "--format jsonl" in info.value.hint
    assert out.read_text() == "old content"
    assert [p.name for p in folder.iterdir()] == ["out.parquet"]
    with pytest.raises(InvalidInputError, match="valid formats: csv"):
        run_export("src", tmp_path / "o.xml", "xml")
    with pytest.raises(InvalidInputError, match="role must be one of"):
        run_export("src", tmp_path / "o.csv", "csv", role="train")
    with pytest.raises(InvalidInputError, match="does not exist"):
        run_export("src", tmp_path / "no" / "o.csv", "csv")
