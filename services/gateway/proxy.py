"""The embedded entry point: a reverse proxy that serves the route table and nothing else.

It plays the part NGINX plays in compose and the ingress plays on Kubernetes: public paths
(also under the version prefix) go to their service; internal APIs are not reachable.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute
from starlette.types import Scope
from yarl import URL

from chassis import telemetry
from chassis.health import Health, Phase
from chassis.http import KEEPALIVE_SECONDS
from chassis.metrics import UNMATCHED, HttpMetrics, metrics_endpoint
from chassis.problems import problem
from gateway.config import Settings
from gateway.openapi import public_openapi
from gateway.routes import (
    ASSET,
    ID,
    ROUTES,
    VERSION_PREFIX,
    Route,
    methods_for,
    route_for,
    strip_version,
)

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


def _template(route: Route) -> str:
    """`/api/deliveries/(?!summary$)<ID>` -> `/api/deliveries/{id}`: ids first, then what
    is left of the lookaheads."""
    pattern = route.pattern.replace(ID, "{id}").replace(ASSET, "{asset}")
    return re.sub(r"\(\?[!=][^()]*\)", "", pattern)


_TEMPLATES = {route: _template(route) for route in ROUTES}
_OWN_PATHS = frozenset({"/openapi.json"})


def route_label(scope: Scope) -> str:
    """The public route a request is for, as a template (ids would explode cardinality);
    asked for by the span and by the metrics, so kept in the scope."""
    label: str | None = scope.get("gateway.route")
    if label is None:
        route = route_for(scope["method"], scope["path"])
        if route is not None:
            label = _TEMPLATES[route]
        else:
            label = scope["path"] if scope["path"] in _OWN_PATHS else UNMATCHED
        scope["gateway.route"] = label
    return label


def _header_text(value: bytes) -> str:
    """A header value as aiohttp takes it. aiohttp writes header text as UTF-8, so a UTF-8
    value goes out byte for byte; any other bytes are read as Latin-1 (HTTP's historical
    charset) and so reach the service re-encoded. The services read only ASCII headers."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def create_gateway(settings: Settings) -> Starlette:
    upstreams = {
        "ingestion": settings.ingestion_url.rstrip("/"),
        "delivery": settings.delivery_url.rstrip("/"),
        "dronescheduler": settings.dronescheduler_url.rstrip("/"),
        "workflow": settings.workflow_url.rstrip("/"),
    }
    clients: dict[str, aiohttp.ClientSession] = {}
    health = Health()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # aiohttp, not httpx: a tenth of the CPU per proxied request (see chassis/http.py).
        for name in upstreams:
            clients[name] = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=settings.upstream_timeout_seconds),
                connector=aiohttp.TCPConnector(
                    limit=settings.upstream_connections, keepalive_timeout=KEEPALIVE_SECONDS
                ),
                # A proxy passes the client's headers and bodies as they are: no headers
                # of its own (an Accept-Encoding the client never sent would get it a
                # compressed body), no decompressing, no following redirects.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                auto_decompress=False,
            )
        health.ready()
        yield
        for client in clients.values():
            await client.close()

    async def forward(request: Request) -> Response:
        path = request.url.path
        route = route_for(request.method, path)
        if route is None:
            allowed = methods_for(path)
            if allowed:
                response = problem(
                    405, "Method Not Allowed", f"{request.method} is not served on {path}"
                )
                response.headers["Allow"] = ", ".join(allowed)
                return response
            return problem(404, "Not Found", f"no public API at {path}")
        # Header values kept as bytes here, for the service to judge (a non-ASCII one must not
        # fail the gateway); see _header_text for how they go out.
        headers = {
            k.decode("latin-1"): v
            for k, v in request.headers.raw
            if k.decode("latin-1") not in HOP_BY_HOP
        }
        request_id = headers.setdefault("x-request-id", uuid.uuid4().hex.encode())
        client_host = request.client.host if request.client else ""
        forwarded_for = headers.get("x-forwarded-for", b"").decode("latin-1")
        headers["x-forwarded-for"] = ", ".join(filter(None, [forwarded_for, client_host])).encode(
            "latin-1"
        )
        headers["x-forwarded-host"] = next((v for k, v in request.headers.raw if k == b"host"), b"")
        headers["x-forwarded-proto"] = request.url.scheme.encode()
        # The path as the client encoded it (the scope's `path` is decoded), and its query.
        raw_path = request.scope.get("raw_path") or path.encode()
        target = strip_version(raw_path.decode("latin-1"))
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = URL(upstreams[route.service] + target + (f"?{query}" if query else ""), encoded=True)
        sent = {k: _header_text(v) for k, v in headers.items()}
        try:
            with telemetry.client_span(route.service, request.method, str(url), sent) as span:
                async with clients[route.service].request(
                    request.method,
                    url,
                    data=await request.body() or None,
                    headers=sent,
                    allow_redirects=False,
                ) as upstream:
                    content = await upstream.read()
                telemetry.client_span_status(span, upstream.status)
        except TimeoutError:
            return problem(504, "Gateway Timeout", f"{route.service} did not answer in time")
        except aiohttp.ClientError:
            return problem(502, "Bad Gateway", f"{route.service} is unreachable")
        out = {k.lower(): v for k, v in upstream.headers.items() if k.lower() not in UPSTREAM_ONLY}
        location = out.get("location")
        if location and path.startswith(VERSION_PREFIX + "/") and location.startswith("/api/"):
            out["location"] = VERSION_PREFIX + location  # keep the client on its version
        out["x-request-id"] = request_id.decode("latin-1")
        return Response(content, status_code=upstream.status, headers=out)

    async def openapi(request: Request) -> Response:
        """The public API document, gathered from the services behind the entry point."""
        documents = {}
        for name, client in clients.items():
            try:
                async with client.get(
                    upstreams[name] + "/openapi.json", raise_for_status=True
                ) as r:
                    documents[name] = await r.json()
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return problem(503, "Service Unavailable", f"{name} did not give its API document")
        return JSONResponse(public_openapi(documents))

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
            StarletteRoute("/openapi.json", openapi, methods=["GET"]),
            StarletteRoute("/health/ready", ready, methods=["GET"]),
            StarletteRoute("/health/live", live, methods=["GET"]),
            StarletteRoute("/metrics", metrics_endpoint, methods=["GET"]),
            StarletteRoute("/{path:path}", forward, methods=methods),
        ],
        lifespan=lifespan,
    )
    app.state.health = health
    app.add_middleware(HttpMetrics, route_of=route_label)
    telemetry.instrument_starlette(
        app, lambda scope: telemetry.route_span_details(scope["method"], route_label(scope))
    )
    return app
