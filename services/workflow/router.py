"""Workflow has no business API; operators read its progress here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(prefix="/api/workflow", tags=["workflow"])


@router.get("/progress")
async def progress(request: Request) -> dict[str, Any]:
    consumer = request.app.state.consumer
    return {
        "processed": consumer.processed,
        "secondsSinceProgress": round(consumer.stalled_for(), 3),
    }
