"""The one way a service's FastAPI app is put together: health, problem details, start-up,
traces (a server span per route), metrics (/metrics) and request limits."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from chassis import health as health_routes
from chassis import telemetry
from chassis.faults import FaultInjection, Faults, FaultSettings
from chassis.faults import router as faults_router
from chassis.health import Health
from chassis.limits import RequestLimits
from chassis.metrics import HttpMetrics, fastapi_route, metrics_endpoint
from chassis.problems import document_problems, install_problem_handlers
from chassis.public import IsPublic, PublicPortGuard
from chassis.settings import ServiceSettings

log = logging.getLogger(__name__)

Resources = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_service_app(
    *,
    name: str,
    summary: str,
    routers: Sequence[APIRouter],
    resources: Resources | None = None,
    settings: ServiceSettings | None = None,
    is_public: IsPublic | None = None,
) -> FastAPI:
    """An app that is ready once `resources` (stores, queues, clients) are open.

    `resources` is an async context manager: it opens what the service needs (with bounded
    retries while servers come up), puts it on `app.state`, and closes it on shutdown.
    """
    health = Health()
    router_lifespans: list[Any] = []  # of the routers whose routes were added flat

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for router_lifespan in router_lifespans:  # authentication settled, say
                await stack.enter_async_context(router_lifespan(app))
            if resources is None:
                health.ready()
                yield
                return
            async with resources(app):
                health.ready()
                log.info(
                    "%s ready in %.2f s",
                    name,
                    time.monotonic() - health.started_at,
                    extra={"event": "ready"},
                )
                yield
                health.drain()  # already draining after SIGTERM; also when stopped otherwise

    # FastAPI's own telemetry off: the chassis instruments every app itself (telemetry.py),
    # and FastAPI's would otherwise look for that instrumentation again on every request.
    app = FastAPI(
        title=name,
        summary=summary,
        version="0.1.0",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.health = health
    install_problem_handlers(app)
    document_problems(app)
    # FastAPI's own (/openapi.json, /docs, /redoc) go last: a request is tried against the
    # routes in order, and these are asked for least. The service's routes come first; all
    # are under paths of their own (/api/..., /console), so the order changes no match.
    documentation = list(app.router.routes)
    app.router.routes.clear()
    for router in routers:
        _add_routes(app, router, router_lifespans)
    _add_routes(app, health_routes.router, router_lifespans)
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    if settings is not None:
        faults = FaultSettings(
            settings.fault_error_rate, settings.fault_latency_ms, settings.fault_routes
        )
        if faults.active or settings.fault_switches:
            app.state.faults = Faults(faults)
            # Inside the metrics middleware: injected errors are counted like real ones.
            app.add_middleware(FaultInjection, faults=app.state.faults)
        if settings.fault_switches:
            _add_routes(app, faults_router, router_lifespans)
    app.router.routes.extend(documentation)
    if settings is not None and settings.public_port:
        app.add_middleware(
            PublicPortGuard,
            public_port=settings.public_port,
            is_public=is_public or (lambda method, path: False),
        )
    limits = settings or ServiceSettings()
    # Inside the metrics middleware: refused requests are counted; outside the public port
    # guard: the limits hold on both ports.
    app.add_middleware(
        RequestLimits,
        max_body_bytes=limits.max_body_bytes,
        max_in_flight=limits.max_in_flight_requests,
        retry_after_seconds=limits.overload_retry_after_seconds,
    )
    app.add_middleware(HttpMetrics, route_of=fastapi_route)
    telemetry.instrument_app(app)
    return app


def _add_routes(app: FastAPI, router: APIRouter, lifespans: list[Any]) -> None:
    """The router's routes, added to the app's own list, its lifespan to the app's.

    include_router would keep the router as a branch of its own: every request would then
    be matched through each branch (twice in the one that has its route), at a cost per
    request of about a fifth of a plain FastAPI app's. A router's routes already carry its
    prefix, tags and dependencies; one that nests routers of its own is included as it is.
    The routes are the router's own, so `app.dependency_overrides` does not reach them
    (nothing here uses it: tests put their fakes on app.state, where the routes look).
    """
    routes: list[BaseRoute] = list(router.routes)
    if not all(isinstance(route, APIRoute) for route in routes):
        app.include_router(router)
        return
    app.router.routes.extend(routes)
    lifespans.append(router.lifespan_context)
