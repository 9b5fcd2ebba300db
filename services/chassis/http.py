"""Calls to other services: a timeout on every attempt, bounded jittered retries on what is
transient (connection errors, timeouts, 429 and 5xx, honouring Retry-After), none on the
rest (a 4xx other than 429 is the caller's mistake and will not change by retrying)."""

from __future__ import annotations

import logging
import math
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from chassis import telemetry
from chassis.metrics import DOWNSTREAM_RETRIES, BreakerState, set_breaker_state

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class DownstreamUnavailable(Exception):
    """Still failing transiently after every attempt: worth trying again later."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service} unavailable: {detail}")
        self.service = service


class DownstreamRejected(Exception):
    """The service refused the request (4xx): retrying the same request will not help."""

    def __init__(self, service: str, response: httpx.Response) -> None:
        super().__init__(
            f"{service} rejected the request: {response.status_code} {response.text[:300]}"
        )
        self.service = service
        self.status_code = response.status_code
        self.response = response


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, (httpx.TransportError, _RetryableStatus))


def _retry_after(response: httpx.Response, cap: float) -> float | None:
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
        self._backoff = wait_exponential_jitter(exp_base=2, max=max_wait, jitter=0.1)
        self._max_wait = max_wait

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus):
            told = _retry_after(exc.response, self._max_wait)
            if told is not None:
                return told
        return float(self._backoff(state))


class ServiceClient:
    """An HTTP client for one downstream service, with its pool and retry policy."""

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        timeout_seconds: float,
        attempts: int,
        max_wait_seconds: float,
        max_connections: int = 100,
    ) -> None:
        self.service = service
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )
        telemetry.instrument_client(self._client, service)  # a CLIENT span per attempt
        self._attempts = attempts
        self._wait = _Wait(max_wait_seconds)
        set_breaker_state(service, BreakerState.CLOSED)  # no breaker yet: always closed
        DOWNSTREAM_RETRIES.labels(service)  # a series at 0 from the start, so rate() sees it

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response (2xx, or a 404/409 the caller wants to see); raises otherwise."""
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_transient),
                stop=stop_after_attempt(self._attempts),
                wait=self._wait,
                before_sleep=self._log_retry,
                reraise=True,
            ):
                with attempt:
                    response = await self._client.request(method, path, **kwargs)
                    if response.status_code in RETRYABLE_STATUS:
                        raise _RetryableStatus(response)
        except _RetryableStatus as e:
            raise DownstreamUnavailable(self.service, f"HTTP {e.response.status_code}") from e
        except httpx.TransportError as e:
            raise DownstreamUnavailable(self.service, f"{type(e).__name__}: {e}") from e
        return response

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
        await self._client.aclose()
