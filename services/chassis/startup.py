"""Waiting for a server at start-up: bounded, with a log line per retry.

Each adapter says which of its errors mean "not ready yet" (retried) as opposed to "wrong"
(a bad password, say: raised at once), and connects inside `connect_retrying`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)


def connect_retrying(
    what: str,
    *,
    retry_on: tuple[type[BaseException], ...] | Callable[[BaseException], bool],
    within: float = 60.0,
) -> AsyncRetrying:
    """`async for attempt in connect_retrying(...): with attempt: await connect()`.

    `retry_on`: the error types that mean "not ready yet", or a predicate saying so."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s not ready (attempt %d: %r); retrying in %.1f s",
            what,
            state.attempt_number,
            error,
            delay,
        )

    return AsyncRetrying(
        stop=stop_after_delay(within),
        wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
        retry=retry_if_exception(retry_on)
        if callable(retry_on) and not isinstance(retry_on, tuple)
        else retry_if_exception_type(retry_on),
        before_sleep=before_sleep,
        reraise=True,
    )
