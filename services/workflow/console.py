"""The pipeline as the operations console shows it (docs/console.md): read-only, admins only.

Queue depth from the queue itself; messages settled, retries, circuit breakers and dead
letters from this process's own metrics (the counters /metrics exports, since it started),
so one replica's view. The page works out the processing rate from two reads. Nothing is
computed until asked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client.metrics import MetricWrapperBase
from pydantic import BaseModel

from chassis.auth import OperatorDep, PermissionNames, auth_lifespan
from chassis.metrics import BREAKER_STATE, DOWNSTREAM_RETRIES, BreakerState
from chassis.queue import CountsMessages, QueueError
from contracts.access import ACCESS
from workflow.metrics import DEAD_LETTERS, MESSAGES_PROCESSED

router = APIRouter(
    prefix="/api/console", tags=["console"], lifespan=auth_lifespan(PermissionNames(**ACCESS))
)


class ServiceAreaView(BaseModel):
    latitude: float
    longitude: float
    radiusMiles: float


class PipelineView(BaseModel):
    now: datetime
    serviceArea: ServiceAreaView  # where deliveries are placed (workflow/locations.py)
    queueDepth: int | None  # None: this queue cannot tell cheaply
    deadLetterDepth: int | None
    processed: dict[str, float]  # by outcome: completed, retried, dead_lettered, abandoned
    retries: dict[str, float]  # by service called
    circuits: dict[str, str]  # by service called: closed, half-open, open
    deadLettered: dict[str, float]  # by reason, since this replica started
    secondsSinceProgress: float


def _totals(metric: MetricWrapperBase, label: str) -> dict[str, float]:
    """A counter's current values summed by one label."""
    totals: dict[str, float] = {}
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = sample.labels[label]
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def _circuits() -> dict[str, str]:
    states = {
        BreakerState.CLOSED: "closed",
        BreakerState.HALF_OPEN: "half-open",
        BreakerState.OPEN: "open",
    }
    return {
        s.labels["downstream"]: states.get(BreakerState(int(s.value)), "closed")
        for family in BREAKER_STATE.collect()
        for s in family.samples
    }


@router.get("/pipeline", response_model=PipelineView)
async def pipeline(request: Request, caller: OperatorDep) -> dict[str, Any]:
    consumer = request.app.state.consumer
    queue = request.app.state.queue
    depth = None
    if isinstance(queue, CountsMessages):
        try:
            depth = await queue.depth()
        except (QueueError, OSError):
            depth = None  # the broker is away: the rest still tells something
    area = request.app.state.service_area
    return {
        "now": datetime.now(UTC),
        "serviceArea": {
            "latitude": area.latitude,
            "longitude": area.longitude,
            "radiusMiles": area.radius_miles,
        },
        "queueDepth": None if depth is None else depth.waiting,
        "deadLetterDepth": None if depth is None else depth.dead_letters,
        "processed": _totals(MESSAGES_PROCESSED, "outcome"),
        "retries": _totals(DOWNSTREAM_RETRIES, "downstream"),
        "circuits": _circuits(),
        "deadLettered": _totals(DEAD_LETTERS, "reason"),
        "secondsSinceProgress": round(consumer.stalled_for(), 3),
    }
