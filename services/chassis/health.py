"""Liveness and readiness, as the architecture guide defines them.

Readiness means "send me traffic": false while starting and while draining after SIGTERM.
It does not follow other services: a downstream outage would otherwise take every caller
out of the load balancer too, and the failure would cascade. Liveness means "restart me":
it fails only when the process is wedged, which each service can define with a check.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse


class Phase(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"


class Health:
    def __init__(self) -> None:
        self.phase = Phase.STARTING
        self.started_at = time.monotonic()
        self._liveness: list[tuple[str, Callable[[], bool]]] = []

    def ready(self) -> None:
        if self.phase is Phase.STARTING:
            self.phase = Phase.READY

    def drain(self) -> None:
        self.phase = Phase.DRAINING

    def add_liveness_check(self, name: str, check: Callable[[], bool]) -> None:
        self._liveness.append((name, check))

    def failing_liveness_checks(self) -> list[str]:
        return [name for name, check in self._liveness if not check()]


async def get_health(request: Request) -> Health:  # async: no thread hop (chassis/stores.py)
    health: Health = request.app.state.health
    return health


HealthDep = Annotated[Health, Depends(get_health)]

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
async def live(health: HealthDep) -> JSONResponse:
    failing = health.failing_liveness_checks()
    if failing:
        return JSONResponse({"status": "failing", "failing": failing}, status_code=503)
    return JSONResponse({"status": "alive"})


@router.get("/ready")
async def ready(health: HealthDep) -> JSONResponse:
    status = 200 if health.phase is Phase.READY else 503
    return JSONResponse({"status": health.phase.value}, status_code=status)
