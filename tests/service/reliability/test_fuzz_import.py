"""Importers under hostile files: truncated, re-encoded, garbled, in all five formats.

tests/service/io/test_import.py already throws random bytes and random JSON
at ``import_file``. Here hypothesis starts from a **valid** file of each format
(CSV, JSONL, Parquet, Label Studio JSON, Prodigy JSONL) and breaks it the ways
files break in practice: cut at any byte (an interrupted download), saved in
another encoding (UTF-16, Latin-1, cp1252, with or without a BOM), or with
bytes flipped. Every outcome is one of two:

- the file still holds only valid records: they are imported, and the counts
  grow by exactly the report's figures;
- a ``LabelwiseError`` whose every record error names the file and a line
  (``FILE:LINE: field: problem``) and a non-empty problem, and the database
  is unchanged (nothing written).

Any other exception (UnicodeDecodeError, a pyarrow error, KeyError...) fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from labelwise.exceptions import ConflictError, ImportRejected, LabelwiseError
from labelwise.service.io import import_file
from labelwise.service.store.engine import transaction
from labelwise.service.store.projects import create_project, get_project
from labelwise.service.store.schema import Annotation, FinalLabel, Item

TEXTS = ["Ünïcode café ✓", "plain ticket", 'quote " and, comma', "naïve — dash"]
FORMATS = ("csv", "jsonl", "parquet", "label-studio", "prodigy")
SUFFIX = {"label-studio": ".json", "prodigy": ".jsonl"}


def valid_file(fmt: str, n: int) -> bytes:
    """A valid file of ``n`` labeled records in ``fmt``."""
    rows = [
        {"id": f"r{i}", "text": TEXTS[i % len(TEXTS)], "label": ["ham", "spam"][i % 2]}
        for i in range(n)
    ]
    if fmt == "csv":
        lines = ["id,text,label"] + [
            f'{r["id"]},"{r["text"].replace(chr(34), chr(34) * 2)}",{r["label"]}'
            for r in rows
        ]
        return ("\n".join(lines) + "\n").encode()
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    if fmt == "prodigy":
        return "".join(
            json.dumps(
                {"text": r["text"], "label": r["label"], "answer": "accept",
                 "_input_hash": i},
                ensure_ascii=False,
            ) + "\n"
            for i, r in enumerate(rows)
        ).encode()  # fmt: skip
    if fmt == "label-studio":
        tasks = [
            {
                "id": i,
                "data": {"text": r["text"]},
                "annotations": [{"result": [{"value": {"choices": [r["label"]]}}]}],
            }
            for i, r in enumerate(rows)
        ]
        return json.dumps(tasks, ensure_ascii=False).encode()
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def counts(factory) -> tuple[int, int, int]:
    with transaction(factory) as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(table)) or 0
            for table in (Item, Annotation, FinalLabel)
        )


@st.composite
def broken_files(draw) -> tuple[str, bytes, str]:
    fmt = draw(st.sampled_from(FORMATS))
    data = valid_file(fmt, draw(st.integers(1, 6)))
    how = draw(st.sampled_from(["truncated", "encoding", "flipped"]))
    if how == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "encoding":
        codec = draw(st.sampled_from(["utf-16", "utf-16-be", "latin-1", "cp1252"]))
        if fmt == "parquet":
            data = data.decode("latin-1").encode("utf-16")  # nonsense on purpose
        else:
            text = data.decode()
            data = text.encode(codec, errors="replace")
        if draw(st.booleans()):
            data = b"\xef\xbb\xbf" + data  # a UTF-8 BOM in front of it all
    else:
        positions = draw(st.lists(st.integers(0, len(data) - 1), max_size=4))
        flipped = bytearray(data)
        for position in positions:
            flipped[position] ^= draw(st.integers(1, 255))
        data = bytes(flipped)
    return fmt, data, how


@pytest.fixture
def factory(session_factory):
    with transaction(session_factory) as session:
        create_project(session=session, name="fuzz", labels=["ham", "spam"])
    return session_factory


@given(case=broken_files())
@settings(
    max_examples=int(os.environ.get("LABELWISE_FUZZ_EXAMPLES_IMPORT", "60")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_broken_files_are_imported_whole_or_refused_without_writes(factory, case):
    fmt, data, how = case
    handle, name = tempfile.mkstemp(suffix=SUFFIX.get(fmt, "." + fmt))
    os.close(handle)
    path = Path(name)
    path.write_bytes(data)
    before = counts(factory)
    try:
        with transaction(factory) as session:
            report = import_file(
                session=session,
                project=get_project(session=session, name="fuzz"),
                path=path,
                role="pool",
                format=fmt,
            )
    except LabelwiseError as error:
        assert counts(factory) == before, (fmt, how)
        assert error.message and error.hint, (fmt, how, error)
        if isinstance(error, ImportRejected):
            assert error.errors, (fmt, how)
            for record in error.errors:
                assert str(record).startswith(f"{path}:{record.line}: "), record
                assert record.line >= 0 and record.message.strip(), record
        else:
            assert not isinstance(error, ConflictError) or "already" in str(error)
    else:
        after = counts(factory)
        assert after[0] == before[0] + report.items, (fmt, how)
        assert after[2] == before[2] + report.labels, (fmt, how)
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_valid_sample_imports(factory, tmp_path, fmt):
    """The starting points are valid: a broken file fails for the breakage."""
    path = tmp_path / f"ok{SUFFIX.get(fmt, '.' + fmt)}"
    path.write_bytes(valid_file(fmt, 4))
    with transaction(factory) as session:
        report = import_file(
            session=session,
            project=get_project(session=session, name="fuzz"),
            path=path,
            role="pool",
            format=fmt,
        )
    assert (report.items, report.labels) == (4, 4)
