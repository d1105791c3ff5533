"""import_file on SQLite and PostgreSQL: what it writes, what it refuses, atomically."""

import contextlib
import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from labelwise.exceptions import (
    ConflictError,
    ImportRejected,
    InvalidInputError,
    NotFoundError,
)
from labelwise.service.io import import_file
from labelwise.service.store.engine import transaction
from labelwise.service.store.projects import get_project
from labelwise.service.store.schema import Annotation, FinalLabel, Item

SHARED = Path(__file__).resolve().parents[4] / "shared" / "datasets"


def jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def items(session_factory):
    with transaction(session_factory) as session:
        rows = session.execute(
            select(
                Item.external_id, Item.role, Item.fields, Item.gold_label, Item.source
            ).order_by(Item.id)
        ).all()
        labels = dict(
            session.execute(
                select(Item.external_id, FinalLabel.label).join(
                    FinalLabel, FinalLabel.item_id == Item.id
                )
            ).all()
        )
    return rows, labels


def rejected(run, *args, **kwargs):
    with pytest.raises(ImportRejected) as info:
        run(*args, **kwargs)
    return info.value


# -- what an import writes ------------------------------------------------------


def test_split_imports_train_as_pool_and_test_as_validation(
    tmp_path, make_project, run_import, session_factory
):
    path = tmp_path / "sms.parquet"
    table = pa.table(
        {
            "text": ["free prize", "hi mum", "free prize", "call me", "see you"],
            "label": ["spam", "ham", "spam", "ham", "ham"],
            "split": ["train", "train", "train", "test", "test"],
        }
    )
    pq.write_table(table, path)
    make_project("sms")
    train = run_import("sms", path, role="pool", split="train")
    test = run_import("sms", path, role="validation", split="test")
    assert (train.items, train.labels, train.skipped_by_split) == (2, 2, 2)
    assert train.skipped_duplicates == 1  # same text, same label: the same item
    assert (test.items, test.labels, test.skipped_by_split) == (2, 2, 3)
    rows, labels = items(session_factory)
    assert [(r.fields["text"], r.role) for r in rows] == [
        ("free prize", "pool"),
        ("hi mum", "pool"),
        ("call me", "validation"),
        ("see you", "validation"),
    ]
    assert rows[0].source["extra"] == {"split": "train"}
    assert rows[0].source["line"] == 1 and rows[0].source["format"] == "parquet"
    assert sorted(labels.values()) == ['"ham"', '"ham"', '"ham"', '"spam"']


@pytest.mark.skipif(not (SHARED / "sms_spam.parquet").exists(), reason="no dataset")
def test_sms_spam_dataset_imports_by_split(make_project, run_import):
    make_project("sms")
    train = run_import("sms", SHARED / "sms_spam.parquet", role="pool", split="train")
    test = run_import(
        "sms", SHARED / "sms_spam.parquet", role="validation", split="test"
    )
    assert train.items + train.skipped_duplicates == 4460
    assert test.items + test.skipped_duplicates == 1114
    assert train.labels == train.items


def test_seed_labels_become_annotations_and_final_labels(
    tmp_path, make_project, run_import, session_factory
):
    path = jsonl(
        tmp_path / "a.jsonl",
        [
            {"id": "a", "text": "win", "label": "spam", "annotator": "ann",
             "annotated_at": "2024-05-01T00:00:00+00:00"},
            {"id": "b", "text": "hello"},
        ],
    )  # fmt: skip
    make_project("p")
    report = run_import("p", path)
    assert (report.items, report.labels) == (2, 1)
    with transaction(session_factory) as session:
        [annotation] = session.scalars(select(Annotation)).all()
        [final] = session.scalars(select(FinalLabel)).all()
        item = session.get(Item, annotation.item_id)
    assert item.external_id == "a"
    assert annotation.source == "import"
    assert annotation.label == '"spam"'
    assert annotation.provenance == {
        "tool": "jsonl",
        "file": str(path),
        "line": 1,
        "annotator": "ann",
        "timestamp": "2024-05-01T00:00:00+00:00",
    }
    assert (final.item_id, final.label, final.method) == (item.id, '"spam"', "seed")


def test_gold_labels_go_to_the_item(
    tmp_path, make_project, run_import, session_factory
):
    path = jsonl(tmp_path / "g.jsonl", [{"text": "x", "label": "ham"}])
    make_project("p")
    run_import("p", path, role="gold")
    rows, labels = items(session_factory)
    assert rows[0].gold_label == '"ham"'
    assert labels == {}


@pytest.mark.parametrize("role", ["gold", "validation"])
def test_gold_and_validation_need_labels(tmp_path, make_project, run_import, role):
    path = jsonl(tmp_path / "g.jsonl", [{"text": "x", "label": "ham"}, {"text": "y"}])
    make_project("p")
    error = rejected(run_import, "p", path, role=role)
    assert [str(e) for e in error.errors] == [
        f"{path}:2: label: missing; every {role} item needs a label, this record "
        "has none"
    ]


def test_chunks_map_labels_to_the_right_items(
    tmp_path, make_project, run_import, session_factory, engine
):
    n = 5000  # three INSERT chunks, and enough to refresh PostgreSQL's statistics
    records = [
        {"text": f"text {i}", "label": "spam" if i % 3 == 0 else "ham"}
        for i in range(n)
    ]
    make_project("p")
    report = run_import("p", jsonl(tmp_path / "big.jsonl", records))
    assert (report.items, report.labels) == (n, n)
    with transaction(session_factory) as session:
        pairs = session.execute(
            select(Item.fields, FinalLabel.label).join(
                FinalLabel, FinalLabel.item_id == Item.id
            )
        ).all()
        if engine.dialect.name == "postgresql":  # ANALYZE ran after the load
            estimate = session.scalar(
                text("SELECT reltuples FROM pg_class WHERE relname = 'items'")
            )
            assert estimate == n
    assert len(pairs) == n
    for fields, label in pairs:
        number = int(fields["text"].split()[1])
        assert label == ('"spam"' if number % 3 == 0 else '"ham"')


def test_label_studio_import(tmp_path, make_project, run_import, session_factory):
    tasks = [
        {
            "id": 1,
            "data": {"text": "a"},
            "annotations": [
                {"completed_by": 7, "result": [{"value": {"choices": ["spam"]}}]}
            ],
            "predictions": [{"result": [{"value": {"choices": ["ham"]}}]}],
        },
        {"id": 2, "data": {"text": "b"}, "predictions": [{"result": []}]},
    ]
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(tasks))
    make_project("p")
    report = run_import("p", path)
    assert (report.format, report.items, report.labels) == ("label-studio", 2, 1)
    rows, labels = items(session_factory)
    assert [r.external_id for r in rows] == ["1", "2"]
    assert labels == {"1": '"spam"'}  # predictions are not labels
    assert rows[1].source["ls_predictions"] == [{"result": []}]
    with transaction(session_factory) as session:
        annotation = session.scalars(select(Annotation)).one()
    assert annotation.provenance["annotator"] == "7"


def test_prodigy_import(tmp_path, make_project, run_import, session_factory):
    path = jsonl(
        tmp_path / "p.jsonl",
        [
            {"text": "a", "label": "spam", "answer": "accept", "_input_hash": 1,
             "_task_hash": 2, "_annotator_id": "s-x", "_timestamp": 1700000000},
            {"text": "b", "label": "spam", "answer": "reject", "_input_hash": 3},
        ],
    )  # fmt: skip
    make_project("p")
    report = run_import("p", path, role="failure")
    assert (report.format, report.items, report.labels) == ("prodigy", 2, 1)
    rows, labels = items(session_factory)
    assert rows[1].source["prodigy"] == {
        "label": "spam",
        "answer": "reject",
        "_input_hash": 3,
    }
    assert list(labels.values()) == ['"spam"']


def test_multi_label_import(tmp_path, make_project, run_import, session_factory):
    path = tmp_path / "m.csv"
    path.write_text("text,label\nx,b|a\ny,\n")
    make_project("m", labels=("a", "b", "c"), multi_label=True)
    run_import("m", path)
    _, labels = items(session_factory)
    assert list(labels.values()) == ['["a", "b"]']


# -- what an import refuses ------------------------------------------------------


def test_duplicate_ids_in_the_file(tmp_path, make_project, run_import):
    path = tmp_path / "d.csv"
    path.write_text("id,text\n1,a\n2,b\n1,c\n")
    make_project("p")
    error = rejected(run_import, "p", path)
    assert [str(e) for e in error.errors] == [
        f"{path}:4: id: duplicate id '1': line 2 has the same id; every record "
        "needs an id of its own"
    ]


def test_duplicate_ids_against_the_project(tmp_path, make_project, run_import):
    make_project("p")
    run_import("p", jsonl(tmp_path / "a.jsonl", [{"external_id": "k", "text": "a"}]))
    path = jsonl(
        tmp_path / "b.jsonl", [{"text": "z"}, {"external_id": "k", "text": "b"}]
    )
    error = rejected(run_import, "p", path, role="failure")
    [record] = error.errors
    assert (record.line, record.field) == (2, "external_id")
    assert "id 'k' is already in project 'p' (a pool item)" in record.message


def test_same_content_with_another_label_is_refused(tmp_path, make_project, run_import):
    make_project("p")
    run_import("p", jsonl(tmp_path / "a.jsonl", [{"text": "a", "label": "ham"}]))
    path = jsonl(
        tmp_path / "b.jsonl",
        [{"text": "a", "label": "spam"}, {"text": "q", "label": "ham"},
         {"text": "q", "label": "spam"}],
    )  # fmt: skip
    error = rejected(run_import, "p", path)
    assert [(e.line, e.field) for e in error.errors] == [(1, "label"), (3, "label")]
    # Errors come sorted by line.
    assert "already in project 'p'" in error.errors[0].message
    assert (
        "same content as line 2 but spam here and ham there" in error.errors[1].message
    )


def test_unknown_labels(tmp_path, make_project, run_import):
    path = tmp_path / "l.csv"
    path.write_text("text,label\na,ham\nb,spma\nc,SPAM\n")
    make_project("p")
    error = rejected(run_import, "p", path)
    valid = "of project 'p'; valid labels: ham, spam"
    assert [str(e) for e in error.errors] == [
        f"{path}:3: label: 'spma' is not a label {valid}",
        f"{path}:4: label: 'SPAM' is not a label {valid}",
    ]


def test_missing_text_field(tmp_path, make_project, run_import):
    path = jsonl(tmp_path / "t.jsonl", [{"body": "a"}])
    make_project("p")
    [error] = rejected(run_import, "p", path).errors
    assert str(error) == (
        f"{path}:1: text: missing; the project's text field 'text' must be in every "
        "record (keys here: body)"
    )


def test_wrong_types(tmp_path, make_project, run_import):
    path = jsonl(
        tmp_path / "t.jsonl",
        [{"text": ["a"]}, {"text": "b", "label": 3}, {"text": "c", "id": {"x": 1}}],
    )
    make_project("p")
    errors = rejected(run_import, "p", path).errors
    assert [(e.line, e.field) for e in errors] == [(1, "text"), (2, "label"), (3, "id")]
    assert "expected a string (the item's text), got a list" in errors[0].message
    assert "'3' is not a label" in errors[1].message
    assert "expected a string or an integer id, got an object" in errors[2].message


def test_invalid_utf8(tmp_path, make_project, run_import):
    path = tmp_path / "u.csv"
    path.write_bytes(b"text\nok\nbad \xc3\x28 byte\n")
    make_project("p")
    [error] = rejected(run_import, "p", path).errors
    assert (error.line, error.field) == (3, "encoding")


@pytest.mark.parametrize("kind", ["jsonl", "label-studio", "parquet"])
def test_truncated_files(tmp_path, make_project, run_import, kind):
    make_project("p")
    records = [{"text": f"t{i}", "label": "ham"} for i in range(50)]
    if kind == "jsonl":
        path = tmp_path / "cut.jsonl"
        full = "".join(json.dumps(r) + "\n" for r in records)
        path.write_text(full[: len(full) - 15])
        where = (50, "json")
    elif kind == "label-studio":
        path = tmp_path / "cut.json"
        tasks = [{"data": {"text": r["text"]}} for r in records]
        full = json.dumps(tasks)
        path.write_text(full[: len(full) // 2])
        where = (0, "file")
    else:
        path = tmp_path / "cut.parquet"
        pq.write_table(pa.Table.from_pylist(records), path)
        path.write_bytes(path.read_bytes()[:-100])
        where = (0, "file")
    [error] = rejected(run_import, "p", path).errors
    assert (error.line, error.field) == where


def test_empty_file_and_unmatched_split(tmp_path, make_project, run_import):
    make_project("p")
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n")
    [error] = rejected(run_import, "p", empty).errors
    assert str(error) == f"{empty}:0: file: has no records; expected at least one"
    path = jsonl(tmp_path / "s.jsonl", [{"text": "a", "split": "train"}])
    [error] = rejected(run_import, "p", path, split="tset").errors
    assert error.message == "no record has split 'tset'; splits in the file: train"


def test_every_bad_line_is_named(tmp_path, make_project, run_import):
    path = tmp_path / "bad.csv"
    path.write_text("text,label\nfine,ham\nx,nope\nfine too,spam\n,ham\ny,bad\n")
    make_project("p")
    error = rejected(run_import, "p", path)
    assert [e.line for e in error.errors] == [3, 5, 6]
    assert "3 problems in a file of 5 records; nothing was written" in error.message
    assert "docs/import-export.md" in error.hint


def test_bad_arguments(tmp_path, make_project, run_import):
    make_project("p")
    path = jsonl(tmp_path / "a.jsonl", [{"text": "a"}])
    with pytest.raises(InvalidInputError, match="role must be one of pool"):
        run_import("p", path, role="train")
    with pytest.raises(InvalidInputError, match="Unknown import format 'xml'"):
        run_import("p", path, format="xml")
    with pytest.raises(NotFoundError, match="no such file"):
        run_import("p", tmp_path / "missing.jsonl")


# -- atomicity ----------------------------------------------------------------------


def test_a_refused_import_leaves_the_database_unchanged(
    tmp_path, make_project, run_import, snapshot, row_counts
):
    make_project("p")
    good = [{"id": str(i), "text": f"t{i}", "label": "ham"} for i in range(2100)]
    run_import("p", jsonl(tmp_path / "good.jsonl", good))
    before, counts = snapshot(), row_counts()
    assert counts["items"] == 2100 and counts["final_labels"] == 2100
    bad = [{"id": f"n{i}", "text": f"new {i}", "label": "ham"} for i in range(2999)]
    bad.append({"id": "last", "text": "the last record is bad", "label": "nope"})
    error = rejected(run_import, "p", jsonl(tmp_path / "bad.jsonl", bad))
    assert [e.line for e in error.errors] == [3000]
    assert row_counts() == counts
    assert snapshot() == before


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.sampled_from(["ham", "spam", "accept", "reject"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(
        st.sampled_from(["text", "label", "id", "answer", "data", "annotations",
                         "result", "value", "choices", "meta", "split", "accept"])
        | st.text(max_size=5),
        children,
        max_size=4,
    ),
    max_leaves=12,
)  # fmt: skip


plausible = st.fixed_dictionaries(
    {"text": st.text(max_size=10)},
    optional={
        "label": st.sampled_from(["ham", "spam", "eggs", ""]),
        "id": st.integers(0, 3) | st.text(max_size=3),
        "answer": st.sampled_from(["accept", "reject"]),
        "split": st.just("train"),
    },
)


@given(
    fmt=st.sampled_from(["jsonl", "label-studio", "prodigy", "csv", "parquet"]),
    raw=st.binary(max_size=200),
    values=st.lists(json_values | plausible, max_size=4),
    use_json=st.booleans(),
)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_any_input_is_imported_cleanly_or_rejected_without_writes(
    make_project, session_factory, row_counts, fmt, raw, values, use_json
):
    with contextlib.suppress(ConflictError):  # the project stays between examples
        make_project("fuzz")
    suffix = {"label-studio": ".json", "prodigy": ".jsonl"}.get(fmt, "." + fmt)
    handle, name = tempfile.mkstemp(suffix=suffix)
    os.close(handle)
    path = Path(name)
    try:
        if use_json and fmt == "label-studio":
            path.write_text(json.dumps(values))
        elif use_json and fmt in ("jsonl", "prodigy"):
            path.write_text("".join(json.dumps(v) + "\n" for v in values))
        else:
            path.write_bytes(raw)
        before = row_counts()
        try:
            with transaction(session_factory) as session:
                project = get_project(session=session, name="fuzz")
                report = import_file(
                    session=session, project=project, path=path, role="pool",
                    format=fmt,
                )  # fmt: skip
        except ImportRejected as error:
            assert error.errors
            assert row_counts() == before
        else:
            after = row_counts()
            assert after["items"] == before["items"] + report.items
            assert after["final_labels"] == before["final_labels"] + report.labels
    finally:
        path.unlink()
