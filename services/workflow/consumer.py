"""The queue consumer: a bounded number of messages in flight, each settled exactly once.

It stops taking messages as soon as the service drains; messages still in flight at the
end of the grace period are abandoned so that another consumer takes them at once.

Each message is processed in a CONSUMER span that is the child of the span ingestion sent
it in (its `traceparent` property), so a delivery is one trace: see chassis/telemetry.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from opentelemetry.trace import Span

from chassis import telemetry
from chassis.queue import MessageLockLost, MessageQueue, ReceivedMessage
from chassis.telemetry import MessagingTarget
from workflow.metrics import (
    DEAD_LETTERS,
    MESSAGES_PROCESSED,
    PROCESSING_SECONDS,
    QUEUE_LAG,
    operation_label,
)
from workflow.service import Complete, DeadLetter, Outcome, RetryLater

log = logging.getLogger(__name__)

Handler = Callable[[ReceivedMessage], Awaitable[Outcome]]

# Pauses between tries of a held message grow from the handler's delay up to this.
MAX_HOLD_PAUSE_SECONDS = 15.0

_RESULT = {Complete: "completed", RetryLater: "retried", DeadLetter: "dead_lettered"}


class Consumer:
    def __init__(
        self,
        queue: MessageQueue,
        handler: Handler,
        *,
        concurrency: int,
        lock_seconds: float,
        hold_seconds: float = 0.0,
        accepting: Callable[[], bool] = lambda: True,
        target: MessagingTarget | None = None,
    ) -> None:
        self._accepting = accepting
        self._target = target or MessagingTarget("unknown", "unknown")
        self._queue = queue
        self._handler = handler
        self._concurrency = concurrency
        self._lock_seconds = lock_seconds
        self._hold_seconds = hold_seconds
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None  # the task in run(), once started
        self.last_progress = time.monotonic()
        self.processed = 0

    @property
    def hold_seconds(self) -> float:
        return self._hold_seconds

    def stalled_for(self) -> float:
        return time.monotonic() - self.last_progress

    async def run(self) -> None:
        self._runner = asyncio.current_task()
        while not self._stopping.is_set():
            if not self._accepting():  # draining: take nothing new, finish what we have
                await self._pause(0.1)
                continue
            if len(self._in_flight) >= self._concurrency:
                await self._wait_for_a_place()
                continue
            try:
                messages = await self._queue.receive(
                    max_messages=self._concurrency - len(self._in_flight), wait_seconds=1.0
                )
            except Exception:
                log.exception("receiving from the queue failed; trying again")
                await self._pause(1.0)
                continue
            self.last_progress = time.monotonic()
            # Even when stop() came during the receive: these are locked to us now, and stop
            # waits for this loop to end before it waits on (or abandons) what is in flight.
            for message in messages:
                task = asyncio.create_task(self._process(message))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)

    async def stop(self, grace_seconds: float) -> None:
        """Take no more messages; give those in flight `grace_seconds`, abandon the rest.

        In-flight work is known only once the run loop has ended: a receive under way when
        stop is called can still start tasks, which would otherwise outlive the stop (and the
        clients that the caller closes next)."""
        self._stopping.set()
        deadline = asyncio.get_running_loop().time() + grace_seconds
        runner = self._runner
        if runner is not None and not runner.done():
            _, still = await asyncio.wait({runner}, timeout=grace_seconds)
            if still:  # a receive that outlasts the grace: nothing it returns is started
                runner.cancel()
                await asyncio.wait(still)
        if self._in_flight:
            remaining = max(deadline - asyncio.get_running_loop().time(), 0.0)
            _, pending = await asyncio.wait(self._in_flight, timeout=remaining)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _wait_for_a_place(self) -> None:
        """Until a message in flight finishes, or stopping."""
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({*self._in_flight, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()

    async def _process(self, message: ReceivedMessage) -> None:
        context = {"messageId": message.message_id, "deliveryCount": message.delivery_count}
        operation = operation_label(message.properties)
        QUEUE_LAG.observe(max(time.time() - message.enqueued_at, 0.0))
        started = time.perf_counter()
        result = "abandoned"  # unless the handler gets to an outcome before shutdown
        try:
            with telemetry.consumer_span(
                self._target,
                message_id=message.message_id,
                properties=message.properties,
                delivery_count=message.delivery_count,
                body_size=len(message.body),
            ) as span:
                result = await self._handle_and_settle(message, span, context)
        finally:
            MESSAGES_PROCESSED.labels(operation, result).inc()
            PROCESSING_SECONDS.labels(operation).observe(time.perf_counter() - started)
        self.processed += 1
        self.last_progress = time.monotonic()

    async def _handle_and_settle(
        self, message: ReceivedMessage, span: Span, context: dict[str, object]
    ) -> str:
        renewer = asyncio.create_task(self._keep_locked(message))
        try:
            outcome = await self._outcome(message, span, context)
        except asyncio.CancelledError:
            renewer.cancel()
            with contextlib.suppress(Exception):
                await asyncio.shield(self._queue.abandon(message))
            log.info("abandoned unfinished message at shutdown", extra=context)
            raise
        finally:
            renewer.cancel()
        if isinstance(outcome, RetryLater):
            telemetry.mark_failed(span, f"will retry: {outcome.reason}")
        elif isinstance(outcome, DeadLetter):
            telemetry.mark_failed(span, f"dead-lettered: {outcome.reason}")
        try:
            await self._settle(message, outcome, context)
        except MessageLockLost:
            log.warning("lock lost before settling; the message will come again", extra=context)
            return "unsettled"
        except Exception:
            log.exception("settling failed; the message will come again", extra=context)
            return "unsettled"
        return _RESULT[type(outcome)]

    async def _outcome(
        self, message: ReceivedMessage, span: Span, context: dict[str, object]
    ) -> Outcome:
        """The handler's outcome, trying again in place (the message held, its lock renewed)
        while a downstream is out, for up to `hold_seconds`. Each abandon counts as a
        delivery, so abandoning at once would let a short outage use up a message's
        deliveries and dead-letter it; holding also stops taking new messages meanwhile."""
        held, attempt = 0.0, 0
        while True:
            try:
                outcome = await self._handler(message)
            except Exception as e:  # a bug, not an outcome: let the queue bring it back
                log.exception("message handler failed", extra=context)
                span.record_exception(e)
                return RetryLater(f"{type(e).__name__}: {e}", 5.0, hold=False)
            if not isinstance(outcome, RetryLater) or not outcome.hold:
                return outcome
            pause = min(outcome.delay_seconds * 2**attempt, MAX_HOLD_PAUSE_SECONDS)
            if held + pause > self._hold_seconds or self._stopping.is_set():
                return outcome
            if not self._accepting():  # draining: hand it back now rather than wait
                return outcome
            log.info("holding the message: %s", outcome.reason, extra=context)
            await asyncio.sleep(pause)
            held += pause
            attempt += 1

    async def _settle(
        self, message: ReceivedMessage, outcome: Outcome, context: dict[str, object]
    ) -> None:
        if isinstance(outcome, Complete):
            await self._queue.complete(message)
        elif isinstance(outcome, RetryLater):
            log.warning("will retry: %s", outcome.reason, extra=context)
            await self._queue.abandon(message, delay_seconds=outcome.delay_seconds)
        elif isinstance(outcome, DeadLetter):
            log.error("dead-lettering: %s: %s", outcome.reason, outcome.description, extra=context)
            await self._queue.dead_letter(
                message, reason=outcome.reason, description=outcome.description
            )
            DEAD_LETTERS.labels(outcome.reason).inc()

    async def _keep_locked(self, message: ReceivedMessage) -> None:
        """Long work keeps its lock: renew it well before it expires."""
        while True:
            await asyncio.sleep(self._lock_seconds / 2)
            try:
                await self._queue.renew_lock(message)
            except Exception:
                log.warning("could not renew the lock", extra={"messageId": message.message_id})
                return
