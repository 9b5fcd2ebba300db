"""Group commit: concurrent callers' items written together, each caller answered alone.

A caller submits one item and waits for its own outcome. While no write is in flight the
item goes at once, as a batch of one (nothing waits when the service is idle); while one
is in flight, items gather and go together as soon as it ends, at most `max_batch` at a
time. So a batch is as large as the load makes it, and under load each round trip to a
store or a queue carries many requests instead of one.

Batches go one at a time, in the order submitted: what one caller submitted before another
is written no later than it. `write` answers one outcome per item, in order (an exception
stands for that item's failure); if it raises, every item of the batch fails with that.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        write: Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]],
        *,
        max_batch: int = 64,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Write `item` with whatever else is waiting; its outcome, or raise its failure."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flushing is None:
            # A context of its own: the writes are every caller's, not the first one's (its
            # log fields and trace would otherwise go on them all).
            self._flushing = asyncio.create_task(self._flush(), context=contextvars.Context())
        # Shielded: a caller that gives up (client gone, timeout) must not cancel the write
        # of the others; its own item is still written, as a single write would be.
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._write_batch(batch)
        finally:
            self._flushing = None

    async def _write_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self._write([item for item, _ in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{len(outcomes)} outcomes for a batch of {len(batch)}")
        except asyncio.CancelledError:  # shut down mid-write: not known to be written
            for _, future in batch:
                future.cancel()
            raise
        except Exception as e:  # every item of the batch fails with it
            for _, future in batch:
                if not future.done():
                    future.set_exception(e)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def close(self) -> None:
        """Wait for what was submitted to be written."""
        while self._flushing is not None:
            await asyncio.shield(self._flushing)
