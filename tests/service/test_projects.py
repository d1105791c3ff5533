import json
from datetime import UTC, datetime

import pytest

from labelwise.exceptions import ConflictError, InvalidInputError, NotFoundError
from labelwise.service import store
from labelwise.service.store import (
    add_guideline,
    create_project,
    current_guideline,
    get_project,
    list_projects,
    project_summary,
    read_only,
    transaction,
)
from labelwise.service.store.schema import (
    FinalLabel,
    Guideline,
    Item,
    ModelVersion,
    Project,
    Round,
    Selection,
)


def test_store_all_is_sorted_and_complete():
    assert store.__all__ == sorted(store.__all__)
    for name in store.__all__:
        assert hasattr(store, name)


def test_create_and_get_project(session_factory):
    with transaction(session_factory) as session:
        project = create_project(
            session=session, name="  spam  ", labels=[" spam", "ham "]
        )
        assert project.id is not None
    with read_only(session_factory) as session:
        found = get_project(session=session, name="spam")
        assert found.labels == ["spam", "ham"]
        assert found.multi_label is False
        assert found.text_field == "text"
        assert found.fields == []
        assert current_guideline(session=session, project=found) is None


def test_create_with_fields_and_guideline(session_factory):
    with transaction(session_factory) as session:
        create_project(
            session=session,
            name="tab",
            labels=["a"],
            multi_label=True,
            fields=["x", " y"],
            guideline="Label carefully.",
        )
    with read_only(session_factory) as session:
        project = get_project(session=session, name="tab")
        assert project.text_field is None
        assert project.fields == ["x", "y"]
        guideline = current_guideline(session=session, project=project)
        assert guideline is not None
        assert (guideline.version, guideline.text) == (1, "Label carefully.")


def test_custom_text_field(session_factory):
    with transaction(session_factory) as session:
        project = create_project(
            session=session, name="p", labels=["a", "b"], text_field="body"
        )
        assert (project.text_field, project.fields) == ("body", [])


def test_duplicate_name_is_a_conflict_with_a_hint(session_factory):
    with transaction(session_factory) as session:
        create_project(session=session, name="spam", labels=["spam", "ham"])
    with pytest.raises(ConflictError) as info, transaction(session_factory) as session:
        create_project(session=session, name="spam", labels=["a", "b"])
    assert "project 'spam' already exists" in info.value.message
    assert "labelwise project show spam" in (info.value.hint or "")
    with read_only(session_factory) as session:
        assert [p.name for p in list_projects(session=session)] == ["spam"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": " ", "labels": ["a", "b"]}, "non-empty"),
        ({"name": "x" * 201, "labels": ["a", "b"]}, "at most 200"),
        ({"name": "p", "labels": ["a"]}, "at least 2 distinct labels"),
        ({"name": "p", "labels": ["a"], "multi_label": False}, "Got 1"),
        ({"name": "p", "labels": [], "multi_label": True}, "at least 1"),
        ({"name": "p", "labels": ["a", " "]}, "non-empty string"),
        ({"name": "p", "labels": ["a", "b", "a "]}, "Got a more than once"),
        (
            {"name": "p", "labels": ["a", "b"], "text_field": "t", "fields": ["f"]},
            "not both",
        ),
        ({"name": "p", "labels": ["a", "b"], "fields": []}, "at least one field"),
        ({"name": "p", "labels": ["a", "b"], "fields": ["f", "f"]}, "once"),
        ({"name": "p", "labels": ["a", "b"], "text_field": " "}, "text field"),
        ({"name": "p", "labels": ["a", "b"], "guideline": "  "}, "guideline"),
    ],
)
def test_create_validates_input(session_factory, kwargs, match):
    with pytest.raises(InvalidInputError, match=match) as info:
        with transaction(session_factory) as session:
            create_project(session=session, **kwargs)
    assert info.value.hint
    with read_only(session_factory) as session:
        assert list_projects(session=session) == []


def test_multi_label_project_accepts_one_label(session_factory):
    with transaction(session_factory) as session:
        project = create_project(
            session=session, name="tags", labels=["urgent"], multi_label=True
        )
        assert project.multi_label is True


def test_unknown_project_lists_existing_names(session_factory):
    with read_only(session_factory) as session:
        with pytest.raises(NotFoundError, match="no projects yet"):
            get_project(session=session, name="nope")
    with transaction(session_factory) as session:
        create_project(session=session, name="b", labels=["x", "y"])
        create_project(session=session, name="a", labels=["x", "y"])
    with read_only(session_factory) as session:
        with pytest.raises(NotFoundError, match="Existing projects: a, b") as info:
            get_project(session=session, name="nope")
        assert "labelwise project create nope" in (info.value.hint or "")
        assert [p.name for p in list_projects(session=session)] == ["a", "b"]


def test_guideline_versions_are_never_overwritten(session_factory):
    with transaction(session_factory) as session:
        project = create_project(
            session=session, name="p", labels=["a", "b"], guideline="v1 text"
        )
    with transaction(session_factory) as session:
        project = get_project(session=session, name="p")
        second = add_guideline(
            session=session, project=project, text="v2 text", note="clarified"
        )
        assert second.version == 2
    with transaction(session_factory) as session:
        project = get_project(session=session, name="p")
        third = add_guideline(session=session, project=project, text="v3 text")
        assert third.version == 3
    with read_only(session_factory) as session:
        project = get_project(session=session, name="p")
        rows = session.query(Guideline).order_by(Guideline.version).all()
        assert [(g.version, g.text, g.note) for g in rows] == [
            (1, "v1 text", None),
            (2, "v2 text", "clarified"),
            (3, "v3 text", None),
        ]
        current = current_guideline(session=session, project=project)
        assert current is not None and current.version == 3


def test_guideline_versions_are_per_project(session_factory):
    with transaction(session_factory) as session:
        one = create_project(session=session, name="one", labels=["a", "b"])
        two = create_project(session=session, name="two", labels=["a", "b"])
        add_guideline(session=session, project=one, text="x")
        add_guideline(session=session, project=one, text="y")
        assert add_guideline(session=session, project=two, text="z").version == 1


def test_empty_guideline_is_refused(session_factory):
    with transaction(session_factory) as session:
        project = create_project(session=session, name="p", labels=["a", "b"])
        with pytest.raises(InvalidInputError, match="non-empty text"):
            add_guideline(session=session, project=project, text="\n ")


def _add_items(session, project, role, n, start=0):
    items = [
        Item(
            project_id=project.id,
            external_id=f"{role}-{start + i}",
            role=role,
            fields={"text": f"{role} {i}"},
            content_hash=f"{role}{start + i}",
        )
        for i in range(n)
    ]
    session.add_all(items)
    session.flush()
    return items


def _final(project, item, label):
    return FinalLabel(
        item_id=item.id, project_id=project.id, label=json.dumps(label), method="seed"
    )


def test_summary_counts(session_factory):
    with transaction(session_factory) as session:
        project = create_project(
            session=session, name="p", labels=["spam", "ham", "other"], guideline="g"
        )
        other = create_project(session=session, name="q", labels=["spam", "ham"])
        pool = _add_items(session, project, "pool", 5)
        validation = _add_items(session, project, "validation", 2)
        failures = _add_items(session, project, "failure", 1)
        noise = _add_items(session, other, "pool", 3)
        session.add_all(
            [
                _final(project, pool[0], "spam"),
                _final(project, pool[1], "spam"),
                _final(project, pool[2], "ham"),
                _final(project, validation[0], "ham"),
                _final(project, failures[0], "spam"),
                _final(other, noise[0], "ham"),
            ]
        )
        model = ModelVersion(
            project_id=project.id,
            version="m" * 64,
            model_name="tfidf",
            n_labels=3,
            labels_hash="h",
        )
        session.add(model)
        session.flush()
        first = Round(
            project_id=project.id,
            number=1,
            policy_version="p1",
            policy={},
            batch_size=2,
            mode="cold_start",
            created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        )
        second = Round(
            project_id=project.id,
            number=2,
            model_version_id=model.id,
            policy_version="p2",
            policy={},
            batch_size=3,
        )
        session.add_all([second, first])
        session.flush()
        session.add_all(
            [
                Selection(
                    round_id=first.id,
                    item_id=pool[3].id,
                    reason="random",
                    strategy="random",
                    rank=1,
                ),
                Selection(
                    round_id=first.id,
                    item_id=pool[4].id,
                    reason="random",
                    strategy="random",
                    rank=2,
                ),
                Selection(
                    round_id=second.id,
                    item_id=pool[3].id,
                    reason="uncertain",
                    strategy="margin",
                    score=0.9,
                    rank=1,
                ),
                Selection(
                    round_id=second.id,
                    item_id=pool[4].id,
                    reason="random",
                    strategy="random",
                    rank=2,
                ),
                Selection(
                    round_id=second.id,
                    item_id=failures[0].id,
                    reason="failure",
                    strategy="error_driven",
                    rank=3,
                ),
            ]
        )
    with read_only(session_factory) as session:
        project = get_project(session=session, name="p")
        summary = project_summary(session=session, project=project)
        empty = project_summary(
            session=session, project=get_project(session=session, name="q")
        )
    assert json.loads(json.dumps(summary)) == summary
    rounds = summary.pop("rounds")
    assert summary == {
        "name": "p",
        "labels": ["spam", "ham", "other"],
        "multi_label": False,
        "text_field": "text",
        "fields": [],
        "guideline_version": 1,
        "items_by_role": {"pool": 5, "validation": 2, "gold": 0, "failure": 1},
        "labeled": 3,
        "unlabeled": 2,
        "label_counts": {"spam": 3, "ham": 2, "other": 0},
    }
    assert [r["number"] for r in rounds] == [1, 2]
    assert rounds[0] == {
        "round_id": rounds[0]["round_id"],
        "number": 1,
        "created_at": "2025-01-02T03:04:05+00:00",
        "policy_version": "p1",
        "model_version": None,
        "selected": 2,
        "counts_by_reason": {"random": 2},
    }
    assert rounds[1]["model_version"] == "m" * 64
    assert rounds[1]["selected"] == 3
    assert rounds[1]["counts_by_reason"] == {"failure": 1, "random": 1, "uncertain": 1}
    assert datetime.fromisoformat(rounds[1]["created_at"]).tzinfo is not None
    assert empty["items_by_role"] == {
        "pool": 3,
        "validation": 0,
        "gold": 0,
        "failure": 0,
    }
    assert (empty["labeled"], empty["unlabeled"]) == (1, 2)
    assert empty["label_counts"] == {"spam": 0, "ham": 1}
    assert empty["guideline_version"] is None
    assert empty["rounds"] == []


def test_summary_uses_aggregate_queries(session_factory, engine):
    from sqlalchemy import event

    with transaction(session_factory) as session:
        project = create_project(session=session, name="p", labels=["a", "b"])
        items = _add_items(session, project, "pool", 40)
        session.add_all([_final(project, item, "a") for item in items[:20]])
    statements = []

    def count(*args):
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        with read_only(session_factory) as session:
            found = session.get(Project, project.id)
            assert found is not None
            project_summary(session=session, project=found)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert 0 < len(selects) <= 10, selects  # 40 items, 20 labels: no query per item
