"""One APIRouter per resource; ``create_app`` mounts them all under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from labelwise.service.api.routes import (
    auth,
    calibration,
    health,
    items,
    labels,
    leases,
    members,
    projects,
    quality,
    queue,
    releases,
    report,
    rounds,
    scores,
    training,
)

__all__ = ["routers"]


def routers() -> list[APIRouter]:
    """Every router of the API, in the order the docs list them."""
    return [
        health.router,
        auth.router,
        projects.router,
        members.router,
        items.router,
        rounds.router,
        queue.router,
        leases.router,
        labels.router,
        quality.router,
        calibration.router,
        training.router,
        releases.router,
        report.router,
        scores.router,
    ]
