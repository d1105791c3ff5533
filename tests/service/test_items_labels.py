import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import event

from labelwise.exceptions import InvalidInputError, NotFoundError
from labelwise.service.store import (
    count_items,
    create_project,
    decode_label,
    decode_label_text,
    encode_label,
    final_label_counts,
    get_item,
    get_project,
    iter_items,
    labeled_items,
    read_only,
    set_final_label,
    transaction,
    unlabeled_pool,
)
from labelwise.service.store.schema import FinalLabel, Item, Project, as_utc


def _project(name="p", labels=("spam", "ham"), multi_label=False):
    return Project(
        id=1, name=name, labels=list(labels), multi_label=multi_label, fields=[]
    )


def test_encode_decode_single_label():
    project = _project()
    assert encode_label(project, "spam") == json.dumps("spam")
    assert encode_label(project, " ham ") == '"ham"'
    assert decode_label(project, '"spam"') == "spam"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"spam"', "spam"),
        ('["a", "b"]', ["a", "b"]),
        ('"gone"', "gone"),  # no project check: a label since removed decodes
        ("not json", "not json"),
        (None, None),
    ],
)
def test_decode_label_text_decodes_as_stored(text, expected):
    assert decode_label_text(text) == expected


def test_as_utc_reads_naive_times_as_utc_and_converts_aware_ones():
    naive = datetime(2026, 3, 25, 12, 0)
    assert as_utc(naive) == naive.replace(tzinfo=UTC)
    assert as_utc(naive).tzinfo is UTC
    paris = datetime(2026, 3, 25, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert as_utc(paris) == datetime(2026, 3, 25, 12, 0, tzinfo=UTC)
    assert as_utc(paris).utcoffset() == timedelta(0)
    assert as_utc(None) is None


@pytest.mark.parametrize("value", ["eggs", ["spam"], 3, None, ""])
def test_single_label_must_be_a_project_label(value):
    with pytest.raises(InvalidInputError, match="one of its labels: spam, ham") as info:
        encode_label(_project(), value)
    assert repr(value) in info.value.message
    assert info.value.hint


def test_encode_decode_multi_label_sorted_and_deduplicated():
    project = _project(labels=("urgent", "billing", "bug"), multi_label=True)
    assert encode_label(project, ["urgent", "bug", "bug"]) == '["bug", "urgent"]'
    assert encode_label(project, ()) == "[]"
    assert decode_label(project, '["urgent", "billing"]') == ["billing", "urgent"]


@pytest.mark.parametrize("value", ["bug", 3, ["bug", "nope"]])
def test_multi_label_values_are_checked(value):
    project = _project(labels=("urgent", "bug"), multi_label=True)
    with pytest.raises(InvalidInputError, match="urgent, bug"):
        encode_label(project, value)


@pytest.mark.parametrize("text", ["spam", "{", '"eggs"'])
def test_decode_refuses_bad_text(text):
    with pytest.raises(InvalidInputError):
        decode_label(_project(), text)


def _setup(session, *, multi_label=False, labels=("spam", "ham")):
    project = create_project(
        session=session, name="p", labels=list(labels), multi_label=multi_label
    )
    other = create_project(session=session, name="q", labels=list(labels))
    roles = ["pool"] * 6 + ["validation"] * 2 + ["gold", "failure"]
    items = [
        Item(
            project_id=project.id,
            external_id=f"e{i}",
            role=role,
            fields={"text": f"text {i}"},
            content_hash=str(i),
        )
        for i, role in enumerate(roles)
    ]
    items.append(
        Item(
            project_id=other.id,
            external_id="e0",
            role="pool",
            fields={"text": "other"},
            content_hash="x",
        )
    )
    session.add_all(items)
    session.flush()
    return project, items


def test_count_get_and_iter_items(session_factory):
    with transaction(session_factory) as session:
        _setup(session)
    with read_only(session_factory) as session:
        project = get_project(session=session, name="p")
        assert count_items(session=session, project=project) == 10
        assert count_items(session=session, project=project, role="pool") == 6
        assert count_items(session=session, project=project, role="gold") == 1
        item = get_item(session=session, project=project, external_id="e7")
        assert (item.role, item.fields) == ("validation", {"text": "text 7"})
        with pytest.raises(NotFoundError, match="'nope' in project 'p'") as info:
            get_item(session=session, project=project, external_id="nope")
        assert "labelwise import" in (info.value.hint or "")
        with pytest.raises(InvalidInputError, match="pool, validation, gold"):
            count_items(session=session, project=project, role="train")

        every = [i.external_id for i in iter_items(session=session, project=project)]
        assert every == [f"e{i}" for i in range(10)]
        pool = list(iter_items(session=session, project=project, role="pool"))
        assert [i.external_id for i in pool] == [f"e{i}" for i in range(6)]
        with pytest.raises(InvalidInputError, match="batch_size"):
            list(iter_items(session=session, project=project, batch_size=0))


@pytest.mark.parametrize("batch_size", [1, 3, 5, 10, 1000])
def test_iter_items_pages_by_keyset(session_factory, engine, batch_size):
    with transaction(session_factory) as session:
        _setup(session)
    statements = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with read_only(session_factory) as session:
            project = get_project(session=session, name="p")
            statements.clear()
            ids = [
                i.id
                for i in iter_items(
                    session=session, project=project, batch_size=batch_size
                )
            ]
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert ids == sorted(ids) and len(ids) == 10
    assert len(statements) == 10 // batch_size + 1
    assert all("LIMIT" in s.upper() for s in statements)


def test_iter_items_is_lazy(session_factory):
    with transaction(session_factory) as session:
        _setup(session)
    with read_only(session_factory) as session:
        project = get_project(session=session, name="p")
        stream = iter_items(session=session, project=project, batch_size=2)
        assert next(stream).external_id == "e0"


def test_final_labels_and_splits(session_factory):
    with transaction(session_factory) as session:
        project, items = _setup(session)
        set_final_label(session=session, item=items[0], label="spam", method="seed")
        set_final_label(session=session, item=items[1], label="ham", method="single")
        set_final_label(session=session, item=items[6], label="ham", method="seed")
        set_final_label(session=session, item=items[9], label="spam", method="seed")
        set_final_label(session=session, item=items[10], label="spam", method="seed")
    with read_only(session_factory) as session:
        project = get_project(session=session, name="p")
        ids, fields = unlabeled_pool(session=session, project=project)
        assert ids == [items[i].id for i in (2, 3, 4, 5)]
        assert fields == [{"text": f"text {i}"} for i in (2, 3, 4, 5)]
        ids, fields, labels = labeled_items(session=session, project=project)
        assert ids == [items[0].id, items[1].id, items[9].id]
        assert fields[0] == {"text": "text 0"}
        assert labels == ["spam", "ham", "spam"]
        ids, _, labels = labeled_items(
            session=session, project=project, roles=("validation",)
        )
        assert (ids, labels) == ([items[6].id], ["ham"])
        with pytest.raises(InvalidInputError, match="item role"):
            labeled_items(session=session, project=project, roles=("train",))
        assert final_label_counts(session=session, project=project) == {
            "spam": 2,
            "ham": 2,
        }


def test_set_final_label_upserts(session_factory):
    with transaction(session_factory) as session:
        _project, items = _setup(session)
        first = set_final_label(
            session=session, item=items[0], label="spam", method="seed"
        )
        assert (first.label, first.method, first.n_annotations) == ('"spam"', "seed", 1)
    with transaction(session_factory) as session:
        item = session.get(Item, items[0].id)
        assert item is not None
        final = set_final_label(
            session=session,
            item=item,
            label="ham",
            method="majority",
            confidence=0.67,
            n_annotations=3,
        )
        assert (final.label, final.method, final.confidence, final.n_annotations) == (
            '"ham"',
            "majority",
            0.67,
            3,
        )
    with read_only(session_factory) as session:
        rows = session.query(FinalLabel).all()
        assert [(r.item_id, r.label, r.method) for r in rows] == [
            (items[0].id, '"ham"', "majority")
        ]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"label": "eggs", "method": "seed"}, "one of its labels"),
        ({"label": "spam", "method": "vote"}, "method must be one of"),
        ({"label": "spam", "method": "seed", "confidence": 1.5}, r"\[0, 1\]"),
        ({"label": "spam", "method": "seed", "n_annotations": -1}, ">= 0"),
    ],
)
def test_set_final_label_validates(session_factory, kwargs, match):
    with transaction(session_factory) as session:
        _project, items = _setup(session)
        with pytest.raises(InvalidInputError, match=match):
            set_final_label(session=session, item=items[0], **kwargs)
        assert session.query(FinalLabel).count() == 0


def test_multi_label_final_labels(session_factory):
    with transaction(session_factory) as session:
        project, items = _setup(
            session, multi_label=True, labels=("urgent", "bug", "billing")
        )
        set_final_label(
            session=session, item=items[0], label=["urgent", "bug"], method="seed"
        )
        set_final_label(session=session, item=items[1], label=["bug"], method="seed")
        set_final_label(session=session, item=items[2], label=[], method="seed")
    with read_only(session_factory) as session:
        project = get_project(session=session, name="p")
        _, _, labels = labeled_items(session=session, project=project)
        assert labels == [["bug", "urgent"], ["bug"], []]
        assert final_label_counts(session=session, project=project) == {
            "urgent": 1,
            "bug": 2,
            "billing": 0,
        }
        ids, _ = unlabeled_pool(session=session, project=project)
        assert ids == [items[i].id for i in (3, 4, 5)]
