"""Workflow has no business API; operators read its progress here."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(prefix="/api/workflow", tags=["workflow"])


@router.get("/progress")
async def progress(request: Request) -> dict[str, Any]:
    consumer = request.app.state.consumer
    downstreams = request.app.state.downstreams
    return {
        "processed": consumer.processed,
        "secondsSinceProgress": round(consumer.stalled_for(), 3),
        "holdSeconds": consumer.hold_seconds,
        # The protections in force, as the code has them (not as the settings say).
        "downstreams": {
            client.service: asdict(client.resilience)
            for client in (downstreams.package, downstreams.dronescheduler, downstreams.delivery)
        },
    }
