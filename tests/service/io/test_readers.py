"""Readers and record rules, without a database: positions, errors, ids, labels."""

import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelwise.exceptions import InvalidInputError, RecordError
from labelwise.service.io import count_records, detect_format
from labelwise.service.io._normalize import Normalizer, canonical_json
from labelwise.service.io._readers import RawRecord, RecordSource
from labelwise.service.store.schema import Project


def read(path, fmt):
    return list(RecordSource(path, fmt))


def errors_of(reads):
    return [r for r in reads if isinstance(r, RecordError)]


def project(labels=("ham", "spam"), multi_label=False, text_field="text", fields=()):
    return Project(
        name="p",
        labels=list(labels),
        multi_label=multi_label,
        text_field=text_field,
        fields=list(fields),
        settings={},
    )


# -- formats -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.csv", "text\n", "csv"),
        ("a.parquet", "", "parquet"),
        ("a.json", "[]", "label-studio"),
        ("a.jsonl", '{"text": "x"}\n', "jsonl"),
        ("a.jsonl", '\n{"text": "x", "_input_hash": 1}\n', "prodigy"),
        ("a.jsonl", '{"text": "x", "answer": "accept"}\n', "prodigy"),
        ("a.jsonl", "{broken\n", "jsonl"),
    ],
)
def test_detect_format_by_suffix_and_first_record(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content)
    assert detect_format(path) == expected


def test_detect_format_unknown_suffix_names_the_choices(tmp_path):
    with pytest.raises(InvalidInputError, match=r"\.txt.*expected \.csv") as info:
        detect_format(tmp_path / "a.txt")
    assert "--format csv|jsonl|parquet|label-studio|prodigy" in info.value.hint


def test_unknown_format_lists_valid_ones(tmp_path):
    with pytest.raises(InvalidInputError, match="valid formats: auto, csv"):
        RecordSource(tmp_path / "a", "xml")


# -- JSONL -----------------------------------------------------------------------


def test_jsonl_lines_are_physical_lines_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "a"}\n\n{"text": "b"}\n')
    reads = read(path, "jsonl")
    assert reads == [RawRecord(1, {"text": "a"}), RawRecord(3, {"text": "b"})]


def test_jsonl_invalid_utf8_names_its_line_and_reading_goes_on(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"text": "a"}\n{"text": "caf\xe9"}\n{"text": "c"}\n')
    reads = read(path, "jsonl")
    [error] = errors_of(reads)
    assert (error.line, error.field) == (2, "encoding")
    assert "invalid UTF-8 at byte 14" in error.message
    assert [r.line for r in reads if isinstance(r, RawRecord)] == [1, 3]


def test_jsonl_truncated_last_line_says_cut_off(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b", "lab')
    [error] = errors_of(read(path, "jsonl"))
    assert error.line == 2
    assert error.message.startswith("not valid JSON (")
    assert "the file looks cut off here" in error.message


@pytest.mark.parametrize(
    ("line", "problem"),
    [("[1, 2]", "expected a JSON object per line, got a list"), ("NaN", "NaN")],
)
def test_jsonl_rejects_non_objects_and_nan(tmp_path, line, problem):
    path = tmp_path / "a.jsonl"
    path.write_text(line + "\n")
    [error] = errors_of(read(path, "jsonl"))
    assert problem in error.message


# -- CSV ---------------------------------------------------------------------------


def test_csv_line_numbers_count_the_header_and_multiline_fields(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('text,label\n"two\nlines",ham\n\nb,spam\n')
    reads = read(path, "csv")
    assert reads == [
        RawRecord(2, {"text": "two\nlines", "label": "ham"}),
        RawRecord(5, {"text": "b", "label": "spam"}),
    ]


def test_csv_wrong_column_count_and_bad_utf8_are_reported_per_line(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"text,label\na,ham,extra\n\xff\xfe,spam\nc,ham\n")
    reads = read(path, "csv")
    errors = errors_of(reads)
    assert [(e.line, e.field) for e in errors] == [(2, "csv"), (3, "encoding")]
    assert "expected 2 values (one per header column), got 3" in errors[0].message
    assert reads[-1] == RawRecord(4, {"text": "c", "label": "ham"})


def test_csv_cut_off_inside_a_quote_is_an_error(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('text,label\na,ham\n"unterminated,spa')
    [error] = errors_of(read(path, "csv"))
    assert error.line == 3
    assert "cut off or have an unbalanced quote" in error.message


@pytest.mark.parametrize(
    ("content", "field", "problem"),
    [
        ("", "file", "the file is empty"),
        ("text,text\na,b\n", "header", "repeated: text"),
    ],
)
def test_csv_bad_headers(tmp_path, content, field, problem):
    path = tmp_path / "a.csv"
    path.write_text(content)
    [error] = read(path, "csv")
    assert error.field == field
    assert problem in error.message


# -- Parquet -------------------------------------------------------------------


def test_parquet_streams_rows_numbered_from_one(tmp_path):
    path = tmp_path / "a.parquet"
    texts = [f"t{i}" for i in range(10_000)]
    pq.write_table(pa.table({"text": texts}), path, row_group_size=3000)
    reads = read(path, "parquet")
    assert len(reads) == 10_000
    assert reads[0] == RawRecord(1, {"text": "t0"})
    assert reads[-1] == RawRecord(10_000, {"text": "t9999"})
    assert count_records(path) == 10_000


def test_parquet_truncated_bytes_are_one_file_error(tmp_path):
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": ["a", "b"]}), path)
    path.write_bytes(path.read_bytes()[:-30])
    [error] = read(path, "parquet")
    assert (error.line, error.field) == (0, "file")
    assert "may be truncated" in error.message


# -- Label Studio ----------------------------------------------------------------


def test_label_studio_positions_are_array_indexes(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"data": {"text": "a"}}, 5, {"data": {"text": "c"}}]))
    reads = read(path, "label-studio")
    assert reads[0] == RawRecord(0, {"data": {"text": "a"}})
    assert (reads[1].line, reads[1].field) == (1, "task")
    assert reads[2].line == 2
    assert count_records(path) == 3


def test_label_studio_cut_mid_array_is_one_file_error(tmp_path):
    path = tmp_path / "a.json"
    full = json.dumps([{"data": {"text": "a"}}, {"data": {"text": "b"}}], indent=1)
    path.write_text(full[: len(full) // 2])
    [error] = read(path, "label-studio")
    assert (error.line, error.field) == (0, "file")
    assert "not valid JSON at line" in error.message
    assert "check that the file is complete" in error.message


def test_label_studio_single_task_object_is_accepted(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"data": {"text": "a"}}')
    assert read(path, "label-studio") == [RawRecord(0, {"data": {"text": "a"}})]


@given(data=st.binary(max_size=300))
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "label-studio"])
def test_readers_turn_any_bytes_into_records_or_record_errors(tmp_path, fmt, data):
    path = tmp_path / f"random.{fmt}"
    path.write_bytes(data)
    for result in RecordSource(path, fmt):
        assert isinstance(result, RawRecord | RecordError)
        if isinstance(result, RawRecord):
            assert isinstance(result.data, dict)


# -- record rules -----------------------------------------------------------------


def normalize(data, fmt="jsonl", id_field=None, **project_options):
    normalizer = Normalizer(project(**project_options), fmt, "f", id_field)
    return normalizer(RawRecord(7, data))


def test_content_hash_id_is_sha256_of_canonical_fields():
    candidate, errors = normalize({"text": "héllo", "other": 1})
    assert errors == []
    expected = hashlib.sha256(
        canonical_json({"text": "héllo"}).encode("utf-8")
    ).hexdigest()
    assert candidate.content_hash == expected
    assert candidate.external_id == expected[:16]
    assert not candidate.explicit_id
    assert candidate.source["extra"] == {"other": 1}


@pytest.mark.parametrize(
    ("data", "id_field", "expected"),
    [
        ({"text": "a", "id": 3, "external_id": "e"}, None, "e"),
        ({"text": "a", "id": 3}, None, "3"),
        ({"text": "a", "id": 3, "key": "k"}, "key", "k"),
        ({"text": "a", "id": 3.0}, None, "3"),
    ],
)
def test_explicit_ids_take_precedence(data, id_field, expected):
    candidate, errors = normalize(data, id_field=id_field)
    assert errors == []
    assert candidate.external_id == expected
    assert candidate.explicit_id


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        ({"label": "ham"}, "text", "missing; the project's text field 'text'"),
        ({"text": 5}, "text", "expected a string (the item's text), got a number"),
        ({"text": "  "}, "text", "is empty"),
        ({"text": "a", "label": "spma"}, "label", "'spma' is not a label"),
        ({"text": "a", "label": ["ham", "spam"]}, "label", "got 2 labels"),
        ({"text": "a", "label": {"x": 1}}, "label", "expected a label (a string)"),
        ({"text": "a", "id": [1]}, "id", "expected a string or an integer id"),
        ({"text": "a", "id": "x" * 501}, "id", "ids have at most 500"),
        ({"text": "a\ud800"}, "text", "not valid Unicode"),
    ],
)
def test_bad_records_name_the_field_and_the_problem(data, field, problem):
    candidate, errors = normalize(data)
    assert candidate is None
    assert any(e.field == field and problem in e.message for e in errors), errors
    assert all(e.line == 7 and e.path == "f" for e in errors)


def test_missing_id_with_id_field_is_an_error():
    _, [error] = normalize({"text": "a"}, id_field="key")
    assert error.field == "key"
    assert "--id-field key needs an id in every record" in error.message


@pytest.mark.parametrize(
    ("value", "label"),
    [("b|a", '["a", "b"]'), (["b", "a", "b"], '["a", "b"]'), ("", None), ([], None)],
)
def test_multi_label_takes_lists_and_pipes(value, label):
    candidate, errors = normalize(
        {"text": "x", "label": value}, labels=("a", "b", "c"), multi_label=True
    )
    assert errors == []
    assert candidate.label == label


def test_multi_label_unknown_labels_are_all_named():
    _, [error] = normalize(
        {"text": "x", "label": "a|q|z"}, labels=("a", "b"), multi_label=True
    )
    assert "'q', 'z' are not labels of project 'p'; valid labels: a, b" in error.message


def test_tabular_fields_keep_their_json_types():
    candidate, errors = normalize(
        {"age": 41, "city": "Oslo", "label": "ham"},
        text_field=None,
        fields=("age", "city"),
    )
    assert errors == []
    assert candidate.fields == {"age": 41, "city": "Oslo"}


def test_label_studio_annotations_predictions_and_ids():
    task = {
        "id": 17,
        "data": {"text": "win now", "lang": "en"},
        "meta": {"external_id": "m-1"},
        "annotations": [
            {
                "completed_by": {"id": 3, "email": "a@x.org"},
                "created_at": "2024-01-02T03:04:05Z",
                "result": [{"value": {"choices": ["spam"]}}],
            },
            {"completed_by": 4, "result": [{"value": {"choices": ["ham"]}}]},
            {"completed_by": 5, "result": [{"value": {"choices": ["spam"]}}]},
            {"was_cancelled": True, "result": [{"value": {"choices": ["ham"]}}]},
        ],
        "predictions": [{"result": [{"value": {"choices": ["ham"]}}], "score": 0.9}],
    }
    candidate, errors = normalize(task, fmt="label-studio")
    assert errors == []
    assert candidate.external_id == "m-1"
    assert candidate.label == '"spam"'
    assert candidate.confidence == pytest.approx(2 / 3)
    assert [a.provenance["annotator"] for a in candidate.annotations] == [
        "a@x.org",
        "4",
        "5",
    ]
    first = candidate.annotations[0].provenance
    assert first["timestamp"] == "2024-01-02T03:04:05Z"
    assert first["tool"] == "label-studio"
    assert candidate.source["ls_id"] == 17
    assert candidate.source["ls_predictions"][0]["score"] == 0.9
    assert candidate.source["extra"] == {"lang": "en"}


def test_label_studio_two_choices_in_a_single_label_project_is_an_error():
    task = {"data": {"text": "x"}, "annotations": [{"result": [
        {"value": {"choices": ["ham", "spam"]}}]}]}  # fmt: skip
    _, [error] = normalize(task, fmt="label-studio")
    assert error.field == "annotations[0].result"
    assert "exactly one" in error.message


@pytest.mark.parametrize(
    ("record", "label"),
    [
        ({"text": "x", "label": "spam", "answer": "accept"}, '"spam"'),
        ({"text": "x", "accept": ["ham"], "answer": "accept"}, '"ham"'),
        ({"text": "x", "label": "spam", "answer": "reject"}, None),
        ({"text": "x", "label": "spam", "answer": "ignore"}, None),
        ({"text": "x", "label": "spam"}, None),
    ],
)
def test_prodigy_answers(record, label):
    record = {**record, "_input_hash": 11, "_annotator_id": "sess-ann", "_timestamp": 5}
    candidate, errors = normalize(record, fmt="prodigy")
    assert errors == []
    assert candidate.label == label
    assert candidate.source["prodigy"]["_input_hash"] == 11
    if label:
        [seed] = candidate.annotations
        assert seed.provenance["annotator"] == "sess-ann"
        assert seed.provenance["timestamp"] == 5


def test_prodigy_meta_id_and_text_fallback():
    record = {"text": "x", "meta": {"id": "row-9", "source": "web"}}
    candidate, errors = normalize(record, fmt="prodigy", text_field="body")
    assert errors == []
    assert candidate.external_id == "row-9"
    assert candidate.fields == {"body": "x"}
    assert candidate.source["extra"] == {"meta": {"id": "row-9", "source": "web"}}


def test_prodigy_unknown_answer_is_an_error():
    _, [error] = normalize({"text": "x", "answer": "maybe"}, fmt="prodigy")
    assert error.field == "answer"
    assert "expected 'accept', 'reject' or 'ignore'" in error.message
