"""Label quality for leads and reviewers: agreement, annotators, rules, disputes.

- ``GET /projects/{project}/agreement``: agreement figures of the stored queue
  answers, overall and per reason, label, week and guideline version (leads);
- ``GET /projects/{project}/annotators/quality``: each annotator's gold
  accuracy, agreement with final labels, time per item and flags (leads only:
  annotators and reviewers get 403);
- ``GET|PATCH /projects/{project}/quality-settings``: dispute rules and the
  aggregation method (leads); a change re-decides every item at once;
- ``GET /projects/{project}/disputes``, ``POST …/disputes/{item_id}/resolve``:
  the reviewer queue and a reviewer's decision (final label ``adjudicated``,
  raw votes kept).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from labelwise.service.api.deps import (
    CurrentMember,
    LeadProject,
    SessionDep,
    project_for,
)
from labelwise.service.api.errors import error_responses
from labelwise.service.quality import (
    QualitySettings,
    annotator_quality,
    project_agreement,
    reaggregate,
    update_quality_settings,
)
from labelwise.service.store.review import disputed_items, resolve_item
from labelwise.service.store.schema import Project

__all__ = ["DisputeResolve", "QualitySettingsUpdate", "router"]

router = APIRouter(tags=["quality"], responses=error_responses(401, 403, 404))

#: The ``{project}``, if the caller may review its disputes.
ReviewProject = Annotated[Project, Depends(project_for("admin", "lead", "reviewer"))]
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class DisputeRulesUpdate(BaseModel):
    """Dispute rules to turn on or off (missing ones keep their value)."""

    model_config = ConfigDict(extra="forbid")
    disagreement: bool | None = None
    gold_failure: bool | None = None
    flag: bool | None = None


class QualitySettingsUpdate(BaseModel):
    """A partial change of a project's quality settings."""

    model_config = ConfigDict(extra="forbid")
    dispute_rules: DisputeRulesUpdate | None = None
    aggregation: Literal["majority", "dawid_skene"] | None = None
    tie: Literal["first", "random"] | None = None


class DisputeResolve(BaseModel):
    """A reviewer's decision on a disputed item."""

    model_config = ConfigDict(extra="forbid")
    label: str | list[str]
    note: str | None = Field(default=None, max_length=2000)


@router.get("/projects/{project}/agreement")
def read_agreement(session: SessionDep, project: LeadProject) -> dict[str, Any]:
    """Agreement of the queue answers: n_items, n_annotators, percent_agreement,
    fleiss_kappa, krippendorff_alpha, mean_pairwise_cohen_kappa, and the same per
    reason, final label, week and guideline version (admin, the project's leads)."""
    return project_agreement(session=session, project=project)


@router.get("/projects/{project}/annotators/quality")
def read_annotator_quality(
    session: SessionDep, project: LeadProject
) -> list[dict[str, Any]]:
    """Per annotator: gold accuracy, agreement with final labels, seconds per item,
    flags (admin, the project's leads; never shown to annotators)."""
    return annotator_quality(session=session, project=project)


@router.get("/projects/{project}/quality-settings")
def read_quality_settings(project: LeadProject) -> dict[str, Any]:
    """The project's dispute rules, aggregation method and tie rule."""
    return QualitySettings.of(project).to_dict()


@router.patch("/projects/{project}/quality-settings", responses=error_responses(400))
def change_quality_settings(
    body: QualitySettingsUpdate, session: SessionDep, project: LeadProject
) -> dict[str, Any]:
    """Change the dispute rules or the aggregation; every item is re-decided."""
    changes = body.model_dump(exclude_none=True)
    settings = update_quality_settings(
        session=session, project=project, changes=changes
    )
    return settings.to_dict()


@router.post("/projects/{project}/aggregate")
def aggregate(session: SessionDep, project: LeadProject) -> dict[str, Any]:
    """Re-decide every item now (Dawid–Skene is refitted over all votes)."""
    return reaggregate(session=session, project=project).to_dict()


def _dispute(dispute: Any) -> dict[str, Any]:
    data = dataclasses.asdict(dispute)
    data.pop("given", None)
    for answer in data["answers"]:
        moment = answer.get("created_at")
        answer["created_at"] = None if moment is None else moment.isoformat()
    data["reasons"] = list(data["reasons"])
    data["labels_given"] = list(data["labels_given"])
    return data


@router.get("/projects/{project}/disputes", responses=error_responses(400))
def list_disputes(
    session: SessionDep,
    project: ReviewProject,
    cursor: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The reviewer queue: disputed items with every answer side by side."""
    disputes, following = disputed_items(
        session=session, project=project, limit=limit, cursor=cursor
    )
    return {"items": [_dispute(d) for d in disputes], "next": following}


@router.post(
    "/projects/{project}/disputes/{item_id}/resolve",
    responses=error_responses(400, 422),
)
def resolve_dispute(
    body: DisputeResolve,
    item_id: ItemId,
    session: SessionDep,
    member: CurrentMember,
    project: ReviewProject,
) -> dict[str, Any]:
    """Settle an item: the label becomes final (``adjudicated``); votes are kept."""
    final = resolve_item(
        session=session,
        project=project,
        item_id=item_id,
        label=body.label,
        reviewer=member,
        note=body.note,
    )
    return {
        "item_id": final.item_id,
        "label": body.label,
        "method": final.method,
        "confidence": final.confidence,
        "n_annotations": final.n_annotations,
    }
