"""Calls to other services: a timeout on every attempt, bounded jittered retries on what is
transient (connection errors, timeouts, 429, 502, 503 and 504, honouring Retry-After), none
on the rest: a 4xx other than 429 is the caller's mistake, and a 500 is the service failing
on this request, which the same request is likely to meet again (the caller decides; it
does not count against the circuit either, as the service is up and answering).

Per downstream service also a circuit breaker (purgatory: after `threshold` failed attempts
in a row, calls fail at once for `recovery` seconds, then one trial call decides) and a
bulkhead (at most `max_concurrent` calls in flight; a call waits at most `max_wait` for a
place), so that one slow or failing service cannot take all of the caller's capacity.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from chassis import jsoncodec, telemetry
from chassis.metrics import DOWNSTREAM_RETRIES, BreakerState, set_breaker_state

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
# Shorter than the services' own keep-alive (30 s), so the client, not the server, closes an
# idle connection: a request never goes out on one the server is closing.
KEEPALIVE_SECONDS = 15.0


@dataclass(frozen=True)
class Reply:
    """A downstream service's answer, read whole (calls between services are small)."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsoncodec.loads(self.content)


# What a call can fail with on the way: no connection, a connection dropped, no answer in time.
TransportError = (aiohttp.ClientError, TimeoutError)


class DownstreamUnavailable(Exception):
    """Still failing transiently after every attempt: worth trying again later."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service} unavailable: {detail}")
        self.service = service


class DownstreamAnswered(Exception):
    """The service answered, but not as the caller needed."""

    verb = "answered"

    def __init__(self, service: str, response: Reply) -> None:
        super().__init__(
            f"{service} {self.verb} the request: {response.status_code} {response.text[:300]}"
        )
        self.service = service
        self.status_code = response.status_code
        self.response = response


class DownstreamRejected(DownstreamAnswered):
    """The service refused the request (4xx): retrying the same request will not help."""

    verb = "rejected"


class DownstreamFailed(DownstreamAnswered):
    """The service failed on the request (500, or another 5xx that is not "unavailable")."""

    verb = "failed on"


class ClientClosed(RuntimeError):
    """A call on a client after its aclose(): a shutdown-order bug, refused rather than
    answered on a new connection pool that nothing would ever close."""

    def __init__(self, service: str) -> None:
        super().__init__(f"the client for {service} is closed")
        self.service = service


class _RetryableStatus(Exception):
    def __init__(self, response: Reply) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, (*TransportError, _RetryableStatus))


def _retry_after(response: Reply, cap: float) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date, or nothing: fall back to our own backoff
    # "nan" and "inf" parse as floats; a server must not make us sleep forever.
    return min(max(seconds, 0.0), cap) if math.isfinite(seconds) else None


class _Wait:
    """Exponential backoff with jitter, unless the server said how long (Retry-After)."""

    def __init__(self, max_wait: float) -> None:
        self._backoff = wait_exponential_jitter(multiplier=0.05, max=max_wait, jitter=0.1)
        self._max_wait = max_wait

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus):
            told = _retry_after(exc.response, self._max_wait)
            if told is not None:
                return told
        return float(self._backoff(state))


@dataclass(frozen=True)
class Resilience:
    """How hard a caller protects itself from one downstream service."""

    breaker_threshold: int = 10
    breaker_recovery_seconds: float = 10.0
    bulkhead_max_concurrent: int = 64
    bulkhead_max_wait_seconds: float = 5.0


_BREAKER_STATES = {
    "closed": BreakerState.CLOSED,
    "half-opened": BreakerState.HALF_OPEN,
    "opened": BreakerState.OPEN,
}


class ServiceClient:
    """An HTTP client for one downstream service, with its pool and its protections.

    On aiohttp: the workflow makes several calls per delivery, and httpx took about ten
    times the CPU per call (measured: 4.8 ms against 0.35 ms per request to a trivial
    server), which made the workflow the system's bottleneck.
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        timeout_seconds: float,
        attempts: int,
        max_wait_seconds: float,
        max_connections: int = 100,
        resilience: Resilience | None = None,
    ) -> None:
        self.service = service
        self.resilience = resilience or Resilience()
        self._bulkhead = asyncio.Semaphore(self.resilience.bulkhead_max_concurrent)
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=self.resilience.breaker_threshold,
            default_ttl=self.resilience.breaker_recovery_seconds,
        )
        self._breakers.add_listener(self._breaker_changed)
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None  # made in the loop that uses it
        self._closed = False
        self._attempts = attempts
        self._wait = _Wait(max_wait_seconds)
        set_breaker_state(service, BreakerState.CLOSED)
        DOWNSTREAM_RETRIES.labels(service)  # a series at 0 from the start, so rate() sees it

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """The response, unless it failed transiently on every attempt: then
        DownstreamUnavailable. Non-retryable statuses (4xx) are returned for the caller to
        judge. ClientClosed after aclose()."""
        if self._closed:
            raise ClientClosed(self.service)
        if self._bulkhead.locked():  # full: wait a bounded time for a place
            try:
                await asyncio.wait_for(
                    self._bulkhead.acquire(), self.resilience.bulkhead_max_wait_seconds
                )
            except TimeoutError as e:
                raise DownstreamUnavailable(
                    self.service, "bulkhead full: too many calls in flight"
                ) from e
        else:  # a free place is taken at once (wait_for would start a task for nothing)
            await self._bulkhead.acquire()
        try:
            return await self._with_retries(method, path, json, params, headers)
        finally:
            self._bulkhead.release()

    async def _with_retries(
        self,
        method: str,
        path: str,
        json: Any,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> Reply:
        body = None if json is None else jsoncodec.dumps(json)
        breaker = await self._breakers.get_breaker(self.service)
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_transient),
                stop=stop_after_attempt(self._attempts),
                wait=self._wait,
                before_sleep=self._log_retry,
                reraise=True,
            ):
                with attempt:
                    async with breaker:  # an open breaker raises OpenedState: no retry
                        response = await self._attempt(method, path, body, params, headers)
                        if response.status_code in RETRYABLE_STATUS:
                            raise _RetryableStatus(response)
        except OpenedState as e:
            raise DownstreamUnavailable(self.service, "circuit open") from e
        except _RetryableStatus as e:
            raise DownstreamUnavailable(self.service, f"HTTP {e.response.status_code}") from e
        except TransportError as e:
            raise DownstreamUnavailable(self.service, f"{type(e).__name__}: {e}") from e
        return response

    async def _attempt(
        self,
        method: str,
        path: str,
        body: bytes | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> Reply:
        """One try, as a CLIENT span that carries the trace context to the service."""
        url = self._base_url + path
        sent = dict(headers or {})
        if body is not None:
            sent["Content-Type"] = "application/json"
        with telemetry.client_span(self.service, method, url, sent) as span:
            async with self._client().request(
                method, url, data=body, params=params, headers=sent, allow_redirects=False
            ) as r:
                reply = Reply(r.status, await r.read(), r.headers)
            telemetry.client_span_status(span, reply.status_code)
        return reply

    def _client(self) -> aiohttp.ClientSession:
        if self._closed:  # closed while this call waited for a place or a retry
            raise ClientClosed(self.service)
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections, keepalive_timeout=KEEPALIVE_SECONDS
                ),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    def _breaker_changed(self, name: str, event_type: str, event: Any) -> None:
        if event_type == "state_changed":
            set_breaker_state(self.service, _BREAKER_STATES.get(event.state, BreakerState.CLOSED))
            log.warning(
                "circuit to %s is %s", self.service, event.state, extra={"downstream": self.service}
            )

    def _log_retry(self, state: RetryCallState) -> None:
        DOWNSTREAM_RETRIES.labels(self.service).inc()
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "retrying call to %s after %s (attempt %d of %d)",
            self.service,
            exc,
            state.attempt_number,
            self._attempts,
            extra={"downstream": self.service},
        )

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None
