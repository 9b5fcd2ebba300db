"""Injected faults, for demos and chaos tests: added latency and an error rate, per service
(its settings) and per route (a regular expression over the path). Off unless configured.

An injected error is a 503 with Retry-After, the answer an overloaded service gives, so
callers exercise exactly the retry, breaker and redelivery paths a real outage would.

With FAULT_SWITCHES=true the faults can also be changed while the service runs, through
`/internal/faults` (GET, PUT, DELETE) on the internal port only: it is in no public route
table, so the public port answers 404 and no entry point routes it. When the service checks
tokens (AUTH_ENABLED) the route takes the admin role. `python -m chassis.faults` drives it;
`/metrics` shows the switches as gauges (chassis/metrics.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from dataclasses import asdict, dataclass

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from chassis.auth import AdminDep
from chassis.metrics import FAULT_ERROR_RATE, FAULT_LATENCY
from chassis.problems import problem

log = logging.getLogger(__name__)

_EXEMPT = re.compile(r"^/(health/|healthz$|metrics$|internal/faults$)")
PATH = "/internal/faults"


@dataclass(frozen=True)
class FaultSettings:
    error_rate: float = 0.0
    latency_ms: int = 0
    routes: str = ""  # regex over request paths; empty means all

    @property
    def active(self) -> bool:
        return bool(self.error_rate or self.latency_ms)


class Faults:
    """The switches a service's fault injection reads on every request."""

    def __init__(self, settings: FaultSettings) -> None:
        self.settings = FaultSettings()
        self._routes: re.Pattern[str] | None = None
        self.set(settings)

    def set(self, settings: FaultSettings) -> None:
        self._routes = re.compile(settings.routes) if settings.routes else None
        self.settings = settings
        FAULT_ERROR_RATE.set(settings.error_rate)
        FAULT_LATENCY.set(settings.latency_ms / 1000)
        if settings.active:
            log.warning(
                "fault injection is ON: error rate %.0f%%, latency %d ms, routes %r",
                settings.error_rate * 100,
                settings.latency_ms,
                settings.routes or "all",
                extra={"event": "faults", **asdict(settings)},
            )
        else:
            log.info("fault injection is off", extra={"event": "faults", **asdict(settings)})

    def applies_to(self, path: str) -> bool:
        return self.settings.active and (self._routes is None or bool(self._routes.search(path)))


class FaultInjection:
    def __init__(self, app: ASGIApp, *, faults: Faults) -> None:
        self.app = app
        self._faults = faults
        self._rng = random.Random()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or _EXEMPT.match(path) or not self._faults.applies_to(path):
            await self.app(scope, receive, send)
            return
        now = self._faults.settings  # one request sees one setting, even if switched meanwhile
        if now.latency_ms:
            await asyncio.sleep(now.latency_ms / 1000)
        if self._rng.random() < now.error_rate:
            response = problem(503, "Service Unavailable", "injected fault")
            response.headers["Retry-After"] = "0"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class FaultSwitches(BaseModel):
    """The switches as the route takes and shows them; a PUT changes only the fields given."""

    model_config = ConfigDict(extra="forbid")

    errorRate: float = Field(0.0, ge=0, le=1, description="share of requests answered 503")
    latencyMs: int = Field(0, ge=0, le=60_000, description="added before each request")
    routes: str = Field("", max_length=1000, description="regex over paths; empty means all")

    @field_validator("routes")
    @classmethod
    def _a_regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"not a regular expression: {e}") from e
        return v

    @classmethod
    def of(cls, settings: FaultSettings) -> FaultSwitches:
        return cls(
            errorRate=settings.error_rate, latencyMs=settings.latency_ms, routes=settings.routes
        )

    def settings(self) -> FaultSettings:
        return FaultSettings(self.errorRate, self.latencyMs, self.routes)


router = APIRouter(prefix=PATH, tags=["internal"], include_in_schema=False)


def _faults(request: Request) -> Faults:
    faults: Faults = request.app.state.faults
    return faults


@router.get("", response_model=FaultSwitches)
async def show_faults(request: Request, _: AdminDep) -> FaultSwitches:
    return FaultSwitches.of(_faults(request).settings)


@router.put("", response_model=FaultSwitches)
async def set_faults(request: Request, changes: FaultSwitches, _: AdminDep) -> FaultSwitches:
    faults = _faults(request)
    given = changes.model_dump(exclude_unset=True)
    merged = FaultSwitches.of(faults.settings).model_copy(update=given)
    faults.set(merged.settings())
    return merged


@router.delete("", response_model=FaultSwitches)
async def clear_faults(request: Request, _: AdminDep) -> FaultSwitches:
    faults = _faults(request)
    faults.set(FaultSettings())
    return FaultSwitches.of(faults.settings)
