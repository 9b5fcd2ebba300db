from __future__ import annotations

from fastapi import Request

from ingestion.intake import Intake


def intake_of(request: Request) -> Intake:
    """The app's intake, read by the routes themselves rather than resolved as a FastAPI
    dependency per request (the accept is the hot path; one way for every route)."""
    intake: Intake = request.app.state.intake
    return intake
