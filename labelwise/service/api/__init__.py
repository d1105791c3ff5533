"""The REST API under ``/api/v1``: ``create_app(settings) -> FastAPI``."""

from __future__ import annotations

from labelwise.service.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
