"""Limits every service keeps whatever sits in front of it: a body size and a bound on the
requests in flight.

The entry point (a Gateway, an Ingress, the compose NGINX) may limit bodies and rates too,
but only where it is configured to; these hold on every port and every footing. A body
over MAX_BODY_BYTES is refused with 413 before the app reads it: at once when
Content-Length says so, otherwise as soon as a streamed body passes the limit. Beyond
MAX_IN_FLIGHT_REQUESTS requests being served, a request is answered 429 with Retry-After,
which callers (the chassis HTTP client included) honour, instead of queueing until every
caller times out.
Health and metrics are exempt: a busy pod must still answer its probes.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis.problems import problem

EXEMPT_PREFIXES = ("/health/", "/metrics")


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_in_flight: int,
        retry_after_seconds: int,
    ) -> None:
        self.app = app
        self._max_body = max_body_bytes
        self._max_in_flight = max_in_flight
        self._retry_after = retry_after_seconds
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        length = self._declared_length(scope)
        if length is not None and length > self._max_body:
            await self._too_large(scope, receive, send)
            return
        if self._in_flight >= self._max_in_flight:
            await self._overloaded(scope, receive, send)
            return
        self._in_flight += 1
        try:
            if length is not None:  # already checked, and the server holds it to it
                await self.app(scope, receive, send)
            else:
                await self._serve_streamed(scope, receive, send)
        finally:
            self._in_flight -= 1

    async def _serve_streamed(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A streamed (chunked) body: read it here, up to the limit, then hand it on. The app
        # never sees a body it would have to abandon half-read.
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self._max_body:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    def _declared_length(scope: Scope) -> int | None:
        """Content-Length, or None without one (a streamed body); one pass over the headers."""
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0  # the server refuses a malformed length itself
        return None

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            "Content Too Large",
            f"the request body is over the limit of {self._max_body} bytes",
            limit=self._max_body,
        )
        # Closing the connection: the rest of the body is not read.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)

    async def _overloaded(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            429,
            "Too Many Requests",
            f"this instance is serving its limit of {self._max_in_flight} requests; "
            f"retry after {self._retry_after} s",
            limit=self._max_in_flight,
        )
        response.headers["Retry-After"] = str(self._retry_after)
        await response(scope, receive, send)
