"""The embedded entry point: a reverse proxy that serves the route table and nothing else.

It plays the part NGINX plays in compose and the ingress plays on Kubernetes: public paths
(also under the version prefix) go to their service; internal APIs are not reachable.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

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
from contracts.routes import (
    ASSET,
    ID,
    ROUTES,
    VERSION_PREFIX,
    Route,
    methods_for,
    route_for,
    strip_version,
)
from gateway.config import Settings
from gateway.openapi import public_openapi

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


_NO_ROUTE = object()


def _route(scope: Scope) -> Route | None:
    """The public route of the request, matched once (the metrics, the span and the
    forwarding all ask)."""
    match = scope.get("gateway.match", _NO_ROUTE)
    if match is _NO_ROUTE:
        match = scope["gateway.match"] = route_for(scope["method"], scope["path"])
    return cast(Route | None, match)


def route_label(scope: Scope) -> str:
    """The public route a request is for, as a template (ids would explode cardinality)."""
    route = _route(scope)
    if route is not None:
        return _TEMPLATES[route]
    return scope["path"] if scope["path"] in _OWN_PATHS else UNMATCHED


def _header_text(value: bytes) -> str:
    """A header value as aiohttp takes it. aiohttp writes header text as UTF-8, so a UTF-8
    value goes out byte for byte; any other bytes are read as Latin-1 (HTTP's historical
    charset) and so reach the service re-encoded. The services read only ASCII headers."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _refusal(method: str, path: str) -> Response:
    """A path the entry point does not route: 405 with Allow where other methods are, 404
    otherwise."""
    allowed = methods_for(path)
    if not allowed:
        return problem(404, "Not Found", f"no public API at {path}")
    response = problem(405, "Method Not Allowed", f"{method} is not served on {path}")
    response.headers["Allow"] = ", ".join(allowed)
    return response


def _upstream_headers(request: Request) -> tuple[dict[str, str], str]:
    """The client's headers as they go to the service, with the forwarding headers, and
    the request id (the client's, or a new one)."""
    # Header values kept as bytes until here, for the service to judge (a non-ASCII one
    # must not fail the gateway); see _header_text for how they go out.
    headers: dict[str, bytes] = {}
    host = b""
    for raw_name, value in request.headers.raw:
        name = raw_name.decode("latin-1")
        if name == "host" and not host:
            host = value
        if name not in HOP_BY_HOP:
            headers[name] = value
    request_id = headers.get("x-request-id")
    if request_id is None:  # a new one only where the client sent none
        request_id = headers["x-request-id"] = uuid.uuid4().hex.encode()
    client_host = request.client.host if request.client else ""
    forwarded_for = headers.get("x-forwarded-for", b"").decode("latin-1")
    headers["x-forwarded-for"] = ", ".join(filter(None, [forwarded_for, client_host])).encode(
        "latin-1"
    )
    headers["x-forwarded-host"] = host
    # From the scope: request.url would build (and parse) the whole URL for its scheme.
    headers["x-forwarded-proto"] = request.scope.get("scheme", "http").encode()
    return {k: _header_text(v) for k, v in headers.items()}, request_id.decode("latin-1")


def _upstream_url(base: str, scope: Scope) -> URL:
    """The service's URL for the request: the path as the client encoded it (the scope's
    `path` is decoded), without the version prefix, and its query."""
    raw_path = scope.get("raw_path") or scope["path"].encode()
    target = strip_version(raw_path.decode("latin-1"))
    query = scope.get("query_string", b"").decode("latin-1")
    return URL(base + target + (f"?{query}" if query else ""), encoded=True)


def _client_headers(upstream: aiohttp.ClientResponse, path: str, request_id: str) -> dict[str, str]:
    """The service's answer headers as the client gets them."""
    out = {k.lower(): v for k, v in upstream.headers.items() if k.lower() not in UPSTREAM_ONLY}
    location = out.get("location")
    if location and path.startswith(VERSION_PREFIX + "/") and location.startswith("/api/"):
        out["location"] = VERSION_PREFIX + location  # keep the client on its version
    out["x-request-id"] = request_id
    return out


def _upstream_pool(settings: Settings) -> aiohttp.ClientSession:
    # aiohttp, not httpx: a tenth of the CPU per proxied request (see chassis/http.py).
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=settings.upstream_timeout_seconds),
        connector=aiohttp.TCPConnector(
            limit=settings.upstream_connections, keepalive_timeout=KEEPALIVE_SECONDS
        ),
        # A proxy passes the client's headers and bodies as they are: no headers of its
        # own (an Accept-Encoding the client never sent would get it a compressed body),
        # no decompressing, no following redirects.
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        auto_decompress=False,
    )


class Proxy:
    """The public routes, forwarded to their service over a kept-alive pool each."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._upstreams = {
            "ingestion": settings.ingestion_url.rstrip("/"),
            "delivery": settings.delivery_url.rstrip("/"),
            "dronescheduler": settings.dronescheduler_url.rstrip("/"),
            "workflow": settings.workflow_url.rstrip("/"),
        }
        self._clients: dict[str, aiohttp.ClientSession] = {}
        self.health = Health()

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        for name in self._upstreams:
            self._clients[name] = _upstream_pool(self._settings)
        self.health.ready()
        yield
        for client in self._clients.values():
            await client.close()

    async def forward(self, request: Request) -> Response:
        route = _route(request.scope)
        if route is None:
            return _refusal(request.method, request.url.path)
        sent, request_id = _upstream_headers(request)
        url = _upstream_url(self._upstreams[route.service], request.scope)
        try:
            with telemetry.client_span(route.service, request.method, str(url), sent) as span:
                async with self._clients[route.service].request(
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
        return Response(
            content,
            status_code=upstream.status,
            # The scope's path, not request.url's: the same prefix, without building a URL.
            headers=_client_headers(upstream, request.scope["path"], request_id),
        )

    async def openapi(self, request: Request) -> Response:
        """The public API document, gathered from the services behind the entry point."""
        documents = {}
        for name, client in self._clients.items():
            try:
                async with client.get(
                    self._upstreams[name] + "/openapi.json", raise_for_status=True
                ) as r:
                    documents[name] = await r.json()
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return problem(503, "Service Unavailable", f"{name} did not give its API document")
        return JSONResponse(public_openapi(documents))

    async def ready(self, request: Request) -> Response:
        ok = self.health.phase is Phase.READY
        return JSONResponse({"status": self.health.phase.value}, status_code=200 if ok else 503)


async def healthz(request: Request) -> Response:
    """The gateway's own trivial endpoint (answered without a service)."""
    return Response(b"ok", media_type="text/plain")


async def live(request: Request) -> Response:
    return JSONResponse({"status": "alive"})


METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def create_gateway(settings: Settings) -> Starlette:
    proxy = Proxy(settings)
    app = Starlette(
        routes=[
            StarletteRoute("/healthz", healthz, methods=["GET"]),
            StarletteRoute("/openapi.json", proxy.openapi, methods=["GET"]),
            StarletteRoute("/health/ready", proxy.ready, methods=["GET"]),
            StarletteRoute("/health/live", live, methods=["GET"]),
            StarletteRoute("/metrics", metrics_endpoint, methods=["GET"]),
            StarletteRoute("/{path:path}", proxy.forward, methods=METHODS),
        ],
        lifespan=proxy.lifespan,
    )
    app.state.health = proxy.health
    app.add_middleware(HttpMetrics, route_of=route_label)
    telemetry.instrument_starlette(
        app, lambda scope: telemetry.route_span_details(scope["method"], route_label(scope))
    )
    return app
