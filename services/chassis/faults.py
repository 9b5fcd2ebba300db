"""Injected faults, for demos and chaos tests: added latency and an error rate, per service
(its settings) and per route (a regular expression over the path). Off unless configured.

An injected error is a 503 with Retry-After, the answer an overloaded service gives, so
callers exercise exactly the retry, breaker and redelivery paths a real outage would.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re

from starlette.types import ASGIApp, Receive, Scope, Send

from chassis.problems import problem

log = logging.getLogger(__name__)

_EXEMPT = re.compile(r"^/(health/|healthz$|metrics$)")


class FaultInjection:
    def __init__(
        self, app: ASGIApp, *, error_rate: float, latency_ms: int, routes: str = ""
    ) -> None:
        self.app = app
        self._error_rate = error_rate
        self._latency = latency_ms / 1000
        self._routes = re.compile(routes) if routes else None
        self._rng = random.Random()
        log.warning(
            "fault injection is ON: error rate %.0f%%, latency %d ms, routes %r",
            error_rate * 100,
            latency_ms,
            routes or "all",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or _EXEMPT.match(path):
            await self.app(scope, receive, send)
            return
        if self._routes is not None and not self._routes.search(path):
            await self.app(scope, receive, send)
            return
        if self._latency:
            await asyncio.sleep(self._latency)
        if self._rng.random() < self._error_rate:
            response = problem(503, "Service Unavailable", "injected fault")
            response.headers["Retry-After"] = "0"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
