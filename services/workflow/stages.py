"""The calls a batch of messages shares: each stage (package, drone scheduler, delivery) is
one request to the service's batch route for every message that reaches it.

Each message still runs its own steps (workflow/service.py), in its own task, and awaits
its own answer at each stage as if it had made the single call. A stage is sent once every
message of the batch that may still reach it has either asked or finished without it, so a
message that ends early (a 409, a failure) never holds the others; one that is slower to
get there (its earlier stage answered later) only delays the stage, never splits it.

An item's transient answer (429, 502, 503, 504) is that item's DownstreamUnavailable, as
the single call's would be once its retries ran out; the whole request failing is every
waiting item's failure. A service that has no batch route yet (404 or 405: an older
release, mid-rollout) is sent the single calls instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chassis import jsoncodec
from chassis.batches import BatchResults
from chassis.http import (
    RETRYABLE_STATUS,
    DownstreamFailed,
    DownstreamRejected,
    DownstreamUnavailable,
    Reply,
    ServiceClient,
)

Body = dict[str, Any]
# The single call for one item: its method's path and body.
Single = Callable[[Body], tuple[str, Body]]
NO_BATCH_ROUTE = frozenset({404, 405})


@dataclass(frozen=True)
class Route:
    """A service's batch route, and the single call each of its items stands for."""

    client: ServiceClient
    batch_path: str
    single: Single

    async def send(self, bodies: Sequence[Body]) -> list[Reply]:
        """One reply per body; raises what the whole request met (DownstreamUnavailable
        after its retries, DownstreamFailed, DownstreamRejected)."""
        reply = await self.client.request("POST", self.batch_path, json={"items": list(bodies)})
        if reply.status_code in NO_BATCH_ROUTE:
            return list(await asyncio.gather(*(self._one(body) for body in bodies)))
        if reply.status_code >= 500:
            raise DownstreamFailed(self.client.service, reply)
        if reply.status_code != 200:
            raise DownstreamRejected(self.client.service, reply)
        results = BatchResults.model_validate_json(reply.content).results
        if len(results) != len(bodies):
            raise DownstreamFailed(self.client.service, reply)  # not an answer to this batch
        return [
            Reply(r.status, b"" if r.body is None else jsoncodec.dumps(r.body), {}) for r in results
        ]

    async def _one(self, body: Body) -> Reply:
        path, sent = self.single(body)
        return await self.client.request("PUT", path, json=sent)


class Stage:
    """One batched call for the messages of a batch (see the module's note)."""

    def __init__(self, route: Route) -> None:
        self._route = route
        self._expected = 0  # members that may still ask
        self._asked: list[tuple[Body, asyncio.Future[Reply]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    def join(self) -> None:
        self._expected += 1

    async def call(self, body: Body) -> Reply:
        answer: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._asked.append((body, answer))
        self.leave()
        return await answer

    def leave(self) -> None:
        self._expected -= 1
        if self._expected == 0 and self._asked:
            asked, self._asked = self._asked, []
            task = asyncio.create_task(self._send(asked))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, asked: list[tuple[Body, asyncio.Future[Reply]]]) -> None:
        try:
            replies = await self._route.send([body for body, _ in asked])
        except Exception as e:  # the whole request: every item's answer
            for _, answer in asked:
                if not answer.done():
                    answer.set_exception(e)
            return
        service = self._route.client.service
        for (_, answer), reply in zip(asked, replies, strict=True):
            if answer.done():  # its message was cancelled meanwhile (shutdown)
                continue
            if reply.status_code in RETRYABLE_STATUS:
                answer.set_exception(DownstreamUnavailable(service, f"HTTP {reply.status_code}"))
            else:
                answer.set_result(reply)


class Member:
    """One message's place in its batch: each stage asked at most once, and every stage it
    will not ask left when it is done, so that the others' calls go."""

    def __init__(self, stages: dict[str, Stage]) -> None:
        self._left = dict(stages)
        for stage in stages.values():
            stage.join()

    async def call(self, stage: str, body: Body) -> Reply:
        return await self._left.pop(stage).call(body)

    def done(self) -> None:
        left, self._left = self._left, {}
        for stage in left.values():
            stage.leave()


class Batch:
    """The stages of one batch; each of its messages joins as a Member."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self._stages = {name: Stage(route) for name, route in routes.items()}

    def join(self) -> Member:
        return Member(self._stages)


# What a consumer's handler does with one message, given its place in a batch.
BatchHandler = Callable[[Any, Member], Awaitable[Any]]


class Gatherer:
    """Puts the messages handled at about the same time into one batch: up to `max_size`,
    those that come within `gather_seconds` of its first. Under load the consumer hands
    over many at once and a batch fills without waiting; alone, a message waits only the
    window. Each message is still handled (and settled by the consumer) on its own."""

    def __init__(
        self,
        new_batch: Callable[[], Batch],
        handler: BatchHandler,
        *,
        max_size: int,
        gather_seconds: float,
    ) -> None:
        self._new_batch = new_batch
        self._handler = handler
        self._max_size = max_size
        self._gather_seconds = gather_seconds
        self._open: tuple[Batch, asyncio.Event] | None = None
        self._joined = 0

    async def handle(self, message: Any) -> Any:
        batch, sealed = self._join()
        member = batch.join()
        try:
            self._joined += 1
            if self._joined >= self._max_size:
                self._seal(sealed)
            await sealed.wait()
            return await self._handler(message, member)
        finally:
            member.done()

    def _join(self) -> tuple[Batch, asyncio.Event]:
        if self._open is None:
            sealed = asyncio.Event()
            self._open = (self._new_batch(), sealed)
            self._joined = 0
            asyncio.get_running_loop().call_later(self._gather_seconds, self._seal, sealed)
        return self._open

    def _seal(self, sealed: asyncio.Event) -> None:
        if self._open is not None and self._open[1] is sealed:
            self._open = None
        sealed.set()
