"""The public port: on it, a service answers only its routes in the public route table.

An ingress routes by path, not by method, so GET /api/deliveries/{id} (public) and
PUT /api/deliveries/{id} (workflow's, internal) reach the same service. The service tells
them apart by the port a request came in on: the ingress targets the public port.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from chassis.problems import problem

IsPublic = Callable[[str, str], bool]  # (method, path) -> routed from outside?


class PublicPortGuard:
    def __init__(self, app: ASGIApp, *, public_port: int, is_public: IsPublic) -> None:
        self.app = app
        self._port = public_port
        self._is_public = is_public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        on_public_port = scope["type"] == "http" and server is not None and server[1] == self._port
        if on_public_port and not self._is_public(scope["method"], scope["path"]):
            response = problem(404, "Not Found", f"no public API at {scope['path']}")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
