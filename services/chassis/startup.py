"""Waiting for a server at start-up: bounded, with a log line per retry."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, stop_after_delay, wait_exponential_jitter

log = logging.getLogger(__name__)
T = TypeVar("T")


async def wait_for(what: str, connect: Callable[[], Awaitable[T]], *, within: float = 60.0) -> T:
    """`connect()` until it succeeds, for at most `within` seconds, then let the error out."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("waiting for %s (attempt %d): %s", what, state.attempt_number, exc)

    async for attempt in AsyncRetrying(
        stop=stop_after_delay(within),
        wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
        before_sleep=before_sleep,
        reraise=True,
    ):
        with attempt:
            return await connect()
    raise AssertionError("unreachable")  # tenacity either returns or re-raises
