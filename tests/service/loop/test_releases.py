"""Releases on SQLite and PostgreSQL: manifest, immutability, diff, rollback, export."""

from __future__ import annotations

import pytest
from conftest import LABELS, project_of
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from labelwise.exceptions import ConflictError, NotFoundError
from labelwise.service.io import import_file
from labelwise.service.io.exporter import write_export
from labelwise.service.loop.releases import (
    MANIFEST_KEYS,
    create_release,
    diff_releases,
    get_release,
    iter_release_rows,
    rollback_to_release,
)
from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.labels import set_final_label
from labelwise.service.store.projects import create_project
from labelwise.service.store.schema import (
    Annotation,
    FinalLabel,
    Item,
    Release,
    ReleaseRollback,
)


def _release(factory, note=None):
    with transaction(factory) as session:
        row = create_release(session=session, project=project_of(session), note=note)
        return row.release_id, dict(row.manifest)


def test_manifest_has_every_promised_key_and_the_counts(seeded):
    release_id, manifest = _release(seeded, note="first cut")
    assert release_id == "r1"
    assert list(manifest)[: len(MANIFEST_KEYS)] == list(MANIFEST_KEYS)
    assert manifest["n_labels"] == 50
    assert manifest["counts_by_label"] == {"a": 25, "b": 25}
    assert manifest["counts_by_role"] == {"pool": 30, "validation": 20}
    assert manifest["counts_by_reason"] == {"unselected": 50}
    assert manifest["counts_by_method"] == {"seed": 50}
    assert manifest["policy_versions"] == manifest["model_versions"] == []
    assert manifest["note"] == "first cut"
    dates = manifest["label_date_range"]
    assert dates["first"] is not None and dates["first"] <= dates["last"]
    metric = manifest["validation_metric"]
    assert metric["n_validation"] == 20 and metric["n_labels"] == 30
    assert metric["accuracy"] > 0.8  # two well-separated blobs
    assert manifest["agreement"] == {
        "items_with_overlap": 0,
        "agreed": 0,
        "share": None,
    }
    assert _release(seeded)[0] == "r2"


def test_a_release_cannot_be_updated_or_deleted(seeded):
    _release(seeded)
    with pytest.raises(DBAPIError, match="immutable"):
        with transaction(seeded) as session:
            row = session.scalar(select(Release))
            row.note = "rewritten"
    with pytest.raises(DBAPIError, match="immutable"):
        with transaction(seeded) as session:
            session.execute(update(Release).values(labels=[]))
    with pytest.raises(DBAPIError, match="immutable"):
        with transaction(seeded) as session:
            session.execute(delete(Release))
    with pytest.raises(DBAPIError, match="immutable"):
        with transaction(seeded) as session:
            session.execute(text("UPDATE releases SET manifest = '{}'"))
    with read_only(seeded) as session:
        row = session.scalar(select(Release))
        assert row.note is None and len(row.labels) == 50


def test_a_release_needs_final_labels(session_factory):
    with transaction(session_factory) as session:
        project = create_project(session=session, name="empty", labels=LABELS)
        with pytest.raises(ConflictError, match="has none"):
            create_release(session=session, project=project)


def test_unknown_release_lists_the_known_ones(seeded):
    _release(seeded)
    with read_only(seeded) as session:
        with pytest.raises(NotFoundError, match="its releases: r1"):
            get_release(session=session, project=project_of(session), release_id="r9")


def _item(session, external_id):
    return session.scalar(select(Item).where(Item.external_id == external_id))


def test_diff_lists_added_removed_and_changed_with_old_and_new(seeded):
    _release(seeded)
    with transaction(seeded) as session:
        project = project_of(session)
        set_final_label(
            session=session, item=_item(session, "p0"), label="b", method="adjudicated"
        )
        session.execute(
            delete(FinalLabel).where(FinalLabel.item_id == _item(session, "p1").id)
        )
        set_final_label(
            session=session, item=_item(session, "p40"), label="a", method="single"
        )
        diff_id = create_release(session=session, project=project).release_id
        diff = diff_releases(session=session, project=project, a="r1", b=diff_id)
    assert diff["counts"] == {"added": 1, "removed": 1, "changed": 1, "unchanged": 48}
    assert diff["added"] == [{"external_id": "p40", "label": "a"}]
    assert diff["removed"] == [{"external_id": "p1", "label": "b"}]
    assert diff["changed"] == [{"external_id": "p0", "old": "a", "new": "b"}]


def test_rollback_restores_the_labels_and_keeps_every_annotation(seeded):
    _release(seeded)
    with transaction(seeded) as session:
        project = project_of(session)
        p0, p1, p50 = (_item(session, e) for e in ("p0", "p1", "p50"))
        # Later work: an annotator relabels p0, labels p50; p1 loses its label.
        for item, label in ((p0, "b"), (p50, "a")):
            session.execute(
                insert(Annotation).values(
                    project_id=project.id,
                    item_id=item.id,
                    label=f'"{label}"',
                    source="queue",
                )
            )
            set_final_label(session=session, item=item, label=label, method="single")
        session.execute(delete(FinalLabel).where(FinalLabel.item_id == p1.id))
        before = session.scalar(select(func.count()).select_from(Annotation))
        result = rollback_to_release(session=session, project=project, release_id="r1")
    assert result == {
        "project": "t",
        "release_id": "r1",
        "restored": 1,
        "changed": 1,
        "removed": 1,
        "unchanged": 48,
    }
    with read_only(seeded) as session:
        finals = dict(
            session.execute(
                select(Item.external_id, FinalLabel.label).join(
                    FinalLabel, FinalLabel.item_id == Item.id
                )
            ).all()
        )
        release = get_release(
            session=session, project=project_of(session), release_id="r1"
        )
        assert finals == {e["external_id"]: f'"{e["label"]}"' for e in release.labels}
        # The later annotations are all still there, and the rollback is recorded.
        assert session.scalar(select(func.count()).select_from(Annotation)) == before
        later = session.scalars(
            select(Annotation.label).where(Annotation.source == "queue")
        )
        assert sorted(later) == ['"a"', '"b"']
        recorded = session.scalar(select(ReleaseRollback))
        assert recorded.release_id == "r1" and recorded.counts["removed"] == 1


@pytest.mark.parametrize(
    "fmt,suffix",
    [
        ("jsonl", "jsonl"),
        ("csv", "csv"),
        ("parquet", "parquet"),
        ("label-studio", "json"),
        ("prodigy", "jsonl"),
    ],
)
def test_release_export_round_trips_in_every_format(seeded, tmp_path, fmt, suffix):
    _release(seeded)
    with transaction(seeded) as session:
        project = project_of(session)
        # A label changed after the release must not leak into its export.
        set_final_label(
            session=session, item=_item(session, "p0"), label="b", method="adjudicated"
        )
        release = get_release(session=session, project=project, release_id="r1")
        path = tmp_path / f"r1.{suffix}"
        pages = iter_release_rows(session=session, project=project, release=release)
        count = write_export(pages, project=project, path=path, format=fmt)
        expected = {e["external_id"]: e["label"] for e in release.labels}
    assert count == 50 and expected["p0"] == "a"
    with transaction(seeded) as session:
        copy = create_project(
            session=session, name="copy", labels=LABELS, fields=["x", "y"]
        )
        report = import_file(
            session=session, project=copy, path=path, role="pool", format=fmt
        )
        assert report.items == 50 and report.labels == 50
        rows = session.execute(
            select(Item.external_id, FinalLabel.label, Item.fields)
            .join(FinalLabel, FinalLabel.item_id == Item.id)
            .where(Item.project_id == copy.id)
        ).all()
    assert {e: label.strip('"') for e, label, _ in rows} == expected
    if fmt != "csv":  # CSV gives text back for numbers (docs/import-export.md)
        assert all(isinstance(fields["x"], float) for _, _, fields in rows)


def test_release_export_of_one_role(seeded, tmp_path):
    _release(seeded)
    with read_only(seeded) as session:
        project = project_of(session)
        release = get_release(session=session, project=project, release_id="r1")
        pages = iter_release_rows(
            session=session, project=project, release=release, role="validation"
        )
        rows = [row for page in pages for row in page]
    assert len(rows) == 20 and {row.role for row in rows} == {"validation"}


def test_labels_of_queue_rounds_carry_their_provenance(seeded):
    """A label from a round's batch records its round, reason and policy version."""
    from labelwise.service.loop import run_round

    with transaction(seeded) as session:
        project = project_of(session)
        summary = run_round(session=session, project=project, batch_size=10, seed=3)
        picked = session.execute(
            text("SELECT item_id, reason FROM selections ORDER BY rank LIMIT 1")
        ).one()
        item = session.get(Item, picked.item_id)
        session.execute(
            insert(Annotation).values(
                project_id=project.id,
                item_id=item.id,
                label='"a"',
                source="queue",
                round_id=summary.round_id,
                reason=picked.reason,
                guideline_version=1,
            )
        )
        set_final_label(session=session, item=item, label="a", method="single")
        manifest = create_release(session=session, project=project).manifest
    assert manifest["policy_versions"] == [summary.policy_version]
    assert manifest["model_versions"] == [summary.model_version]
    assert manifest["counts_by_reason"][picked.reason] == 1
    assert manifest["guideline_versions"] == [1]
