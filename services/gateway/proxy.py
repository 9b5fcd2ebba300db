"""The embedded entry point: a reverse proxy that serves the route table and nothing else.

It plays the part NGINX plays in compose and the ingress plays on Kubernetes: public paths
(also under the version prefix) go to their service; internal APIs are not reachable.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute

from chassis.health import Health, Phase
from chassis.problems import problem
from gateway.config import Settings
from gateway.routes import VERSION_PREFIX, path_is_public, route_for, strip_version

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
# Set again by our own server on the way out.
UPSTREAM_ONLY = HOP_BY_HOP | {"date", "server"}


def create_gateway(settings: Settings) -> Starlette:
    upstreams = {"ingestion": settings.ingestion_url, "delivery": settings.delivery_url}
    clients: dict[str, httpx.AsyncClient] = {}
    health = Health()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        limits = httpx.Limits(
            max_connections=settings.upstream_connections,
            max_keepalive_connections=settings.upstream_connections,
        )
        for name, url in upstreams.items():
            clients[name] = httpx.AsyncClient(
                base_url=url, timeout=settings.upstream_timeout_seconds, limits=limits
            )
        health.ready()
        yield
        for client in clients.values():
            await client.aclose()

    async def forward(request: Request) -> Response:
        path = request.url.path
        route = route_for(request.method, path)
        if route is None:
            if path_is_public(path):
                return problem(
                    405, "Method Not Allowed", f"{request.method} is not served on {path}"
                )
            return problem(404, "Not Found", f"no public API at {path}")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers.setdefault("x-request-id", uuid.uuid4().hex)
        client_host = request.client.host if request.client else ""
        headers["x-forwarded-for"] = ", ".join(
            filter(None, [headers.get("x-forwarded-for"), client_host])
        )
        headers["x-forwarded-host"] = request.headers.get("host", "")
        headers["x-forwarded-proto"] = request.url.scheme
        try:
            upstream = await clients[route.service].request(
                request.method,
                strip_version(path),
                params=request.url.query,
                content=await request.body(),
                headers=headers,
            )
        except httpx.TimeoutException:
            return problem(504, "Gateway Timeout", f"{route.service} did not answer in time")
        except httpx.TransportError:
            return problem(502, "Bad Gateway", f"{route.service} is unreachable")
        out = {k: v for k, v in upstream.headers.items() if k.lower() not in UPSTREAM_ONLY}
        location = out.get("location")
        if location and path.startswith(VERSION_PREFIX + "/") and location.startswith("/api/"):
            out["location"] = VERSION_PREFIX + location  # keep the client on its version
        out["x-request-id"] = headers["x-request-id"]
        return Response(upstream.content, status_code=upstream.status_code, headers=out)

    async def healthz(request: Request) -> Response:
        """The gateway's own trivial endpoint: the baseline for benchmarks."""
        return Response(b"ok", media_type="text/plain")

    async def ready(request: Request) -> Response:
        ok = health.phase is Phase.READY
        return JSONResponse({"status": health.phase.value}, status_code=200 if ok else 503)

    async def live(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    app = Starlette(
        routes=[
            StarletteRoute("/healthz", healthz, methods=["GET"]),
            StarletteRoute("/health/ready", ready, methods=["GET"]),
            StarletteRoute("/health/live", live, methods=["GET"]),
            StarletteRoute("/{path:path}", forward, methods=methods),
        ],
        lifespan=lifespan,
    )
    app.state.health = health
    return app
