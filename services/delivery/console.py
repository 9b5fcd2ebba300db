"""Deliveries as the operations console lists them (docs/console.md): read-only, admins only.

Each delivery's stage is worked out from its document and the clock (delivery/models.py),
so filtering by stage goes through the owner's deliveries (or all) and keeps the matching
ones: counts per stage, and the newest few in full. The documents are mirrored: a refresh
reads again only those that changed since the last one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from chassis.auth import OperatorDep, PermissionNames, auth_lifespan
from chassis.documents import JSON
from chassis.documents.mirror import DocumentMirror
from contracts.access import ACCESS
from delivery.dependencies import StoreDep
from delivery.models import Stage, status_of

router = APIRouter(
    prefix="/api/console", tags=["console"], lifespan=auth_lifespan(PermissionNames(**ACCESS))
)
# Each delivery parsed once per version, newest first at every read (chassis/documents/mirror.py).
_deliveries: DocumentMirror[tuple[str, JSON]] = DocumentMirror(
    lambda id, body: (_recency(body), body)
)


class DeliveryRow(BaseModel):
    id: str
    ownerId: str
    stage: Stage
    droneId: str
    pickupETA: datetime
    deliveryETA: datetime
    failureReason: str | None = None


class DeliveryBoard(BaseModel):
    now: datetime
    total: int  # the owner's (or everyone's) deliveries, every stage
    stages: dict[str, int]  # of those, per stage
    matching: int  # of those, in the stage asked for
    deliveries: list[DeliveryRow]  # the newest matching ones, at most `limit`


def _recency(body: dict[str, Any]) -> str:
    """When the delivery was last asked for or settled: ISO-8601 UTC texts sort as times."""
    departure = body.get("departure") or {}
    return str(
        body.get("requestedAt")
        or departure.get("time")
        or body.get("failedAt")
        or body.get("cancelledAt")
        or ""
    )


@router.get("/deliveries", response_model=DeliveryBoard)
async def deliveries(
    store: StoreDep,
    caller: OperatorDep,
    owner: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    stage: Stage | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    known = await _deliveries.read(store)
    docs = [
        (id, body)
        for id, (_, body) in sorted(known.items(), key=lambda item: item[1][0], reverse=True)
        if owner is None or body.get("ownerId") == owner
    ]
    stages = dict.fromkeys((s.value for s in Stage), 0)
    rows = []
    for id, body in docs:
        found = status_of(body, now)
        stages[found.stage.value] += 1
        if stage is not None and found.stage is not stage:
            continue
        rows.append(
            {
                "id": id,
                "ownerId": body.get("ownerId", ""),
                "stage": found.stage,
                "droneId": body.get("droneId", ""),
                "pickupETA": found.pickup_eta,
                "deliveryETA": found.delivery_eta,
                "failureReason": body.get("failureReason"),
            }
        )
    return {
        "now": now,
        "total": len(docs),
        "stages": stages,
        "matching": len(rows),
        "deliveries": rows[:limit],
    }
