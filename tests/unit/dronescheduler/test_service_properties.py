"""Properties of the booking protocol, over random interleavings.

A hypothesis state machine over its service functions on a
real embedded store. Ingestion accepts a delivery's create, changes and cancel (versions 1,
2, 3...); the queue hands any of its messages, the latest or an older one again, to one of
two replicas; each call pauses before every write it makes, and the machine chooses which
call makes its next write, which one dies there (a crash: nothing more of it happens, its
message comes back), and when time passes beyond the claim timeout (so a claim may be taken
over while its booker is only paused). After every step: no delivery is on two drones, no
drone's windows overlap, and a delivery whose cancel has returned holds no window. At the
end every paused call resumes, the queue redelivers each message not yet done until all are
(as workflow would), and then each delivery is booked exactly once with its latest version's
request, or, cancelled, holds no window.

Sequences the machine found that break the protocol are kept below as plain tests that replay
them step by step (`replay`), so they fail every run, not only when the search meets them.

The delivery service's half is in tests/unit/delivery/test_service_properties.py.
"""

from __future__ import annotations

import asyncio
import contextvars
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chassis.documents import ConcurrencyConflict, Document, DocumentStore, connect_document_store
from contracts.messages import Operation
from dronescheduler import service
from dronescheduler.models import Drone, Location, Window
from dronescheduler.pages import PAGES, PagedDrones
from dronescheduler.schemas import DroneDeliveryRequest

DELIVERY_IDS = ("d1", "d2")
PLACES = ((47.61, -122.33), (47.65, -122.30), (47.58, -122.36), (47.70, -122.20))
FLEET = 3  # few drones: bookings compete for them
BACKLOG = 4  # windows booked ahead on each drone, with pages (PagedBookingProtocol)
STALE = service.CLAIM_STALE_AFTER + timedelta(seconds=1)
WAIT = 30.0  # seconds: a call that takes longer than this to reach its next write is stuck
SETTLING_ROUNDS = 5
SETTLING_WRITES = 100
TURN = "waiting for the turn"
# The stores' files in memory where there is a memory file system: a commit costs no disk sync.
_MEMORY = "/dev/shm" if Path("/dev/shm").is_dir() else None

# ------------------------------------------------ calls that pause before every write


class Call:
    """One service call, as one replica runs it: it stops before each write it makes and
    goes on only when told (or when `free`)."""

    def __init__(self, message: Message, turn: Turn, work: Callable[[Call], Awaitable[Any]]):
        self.message = message
        self.turn = turn
        self.free = False
        self.at = ""  # the write it is waiting to make
        self._arrived = asyncio.Event()
        self._go = asyncio.Event()
        self.task = asyncio.create_task(self._run(work))

    async def _run(self, work: Callable[[Call], Awaitable[Any]]) -> Any:
        _current.set(self)
        return await work(self)

    async def gate(self, what: str) -> None:
        if self.free:
            await asyncio.sleep(0)  # let the others go on too (one may hold the turn)
            return
        self.at = what
        self._arrived.set()
        await self._go.wait()
        self._go.clear()

    async def until_paused(self) -> None:
        arrived = asyncio.create_task(self._arrived.wait())
        done, _ = await asyncio.wait(
            {self.task, arrived}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED
        )
        arrived.cancel()
        assert done, f"{self} is stuck"

    async def write(self) -> None:
        """Make the write it waits at, and go on to the next one (or to its end)."""
        self._arrived.clear()
        self._go.set()
        await self.until_paused()

    async def crash(self) -> None:
        self.task.cancel()
        await asyncio.wait({self.task}, timeout=WAIT)
        assert self.task.done(), f"{self} would not stop"

    def __repr__(self) -> str:
        return f"<call for {self.message} before {self.at or 'its first write'}>"


_current: contextvars.ContextVar[Call] = contextvars.ContextVar("call")


class Turn:
    """A replica's one-booking-at-a-time (service._booking_turn), where waiting for the turn
    is a point a call pauses at like a write: a paused holder keeps its replica waiting."""

    def __init__(self) -> None:
        self.holder: Call | None = None

    async def __aenter__(self) -> None:
        call = _current.get()
        while self.holder is not None:
            await call.gate(TURN)
        self.holder = call

    async def __aexit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.holder = None


def _replica_turn() -> Turn:
    return _current.get().turn


class Gated:
    """A store whose every write waits for the call's go-ahead."""

    def __init__(self, store: DocumentStore, call: Call, name: str) -> None:
        self._store = store
        self._call = call
        self._name = name

    async def get(self, id: str) -> Document | None:
        return await self._store.get(id)

    async def create(self, id: str, body: dict[str, Any]) -> Document:
        await self._call.gate(f"create {self._name}/{id} {body.get('status', '')}")
        return await self._store.create(id, body)

    async def replace(self, id: str, body: dict[str, Any], *, etag: str) -> Document:
        await self._call.gate(f"write {self._name}/{id} {body.get('status', '')}")
        return await self._store.replace(id, body, etag=etag)

    async def upsert(self, id: str, body: dict[str, Any]) -> Document:
        await self._call.gate(f"upsert {self._name}/{id}")
        return await self._store.upsert(id, body)

    async def delete(self, id: str, *, etag: str | None = None) -> bool:
        await self._call.gate(f"delete {self._name}/{id}")
        return await self._store.delete(id, etag=etag)

    async def find(self, **where: str | int | bool) -> list[Document]:
        return await self._store.find(**where)

    async def versions(self) -> dict[str, str]:
        return await self._store.versions()

    async def ping(self) -> None:
        await self._store.ping()

    async def close(self) -> None:
        pass  # the machine closes the store


# ------------------------------------------------ the drone scheduler's state machine


@dataclass
class Message:
    """One acknowledged operation on the queue: the whole request at its version."""

    operation: Operation
    request: DroneDeliveryRequest
    done: bool = False  # workflow completed it (else the queue hands it out again)

    @property
    def version(self) -> int:
        return self.request.version or 0

    def __repr__(self) -> str:
        return f"{self.operation.value} {self.request.deliveryId} v{self.version}"


def _request(
    delivery_id: str, version: int, pickup: int, dropoff: int, hour: int, t0: datetime
) -> DroneDeliveryRequest:
    (plat, plon), (dlat, dlon) = PLACES[pickup], PLACES[dropoff]
    return DroneDeliveryRequest.model_validate(
        {
            "deliveryId": delivery_id,
            "ownerId": "owner",
            "pickup": {"latitude": plat, "longitude": plon},
            "dropoff": {"latitude": dlat, "longitude": dlon},
            "packageDetail": {"id": f"p-{delivery_id}", "size": "Small"},
            # Hours ahead: no window ends while the machine's clock moves on (minutes).
            "pickupTime": (t0 + timedelta(hours=2 + hour)).isoformat(),
            "requestedAt": (t0 + timedelta(seconds=version)).isoformat(),
            "version": version,
        }
    )


class BookingProtocol(RuleBasedStateMachine):
    PAGE: int | None = None  # drones kept whole; PagedBookingProtocol: in pages (pages.py)

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = tempfile.mkdtemp(prefix="booking-properties-", dir=_MEMORY)
        # Cancels read the real clock, so the machine's starts there and only moves ahead.
        self.t0 = datetime.now(UTC).replace(microsecond=0)
        self.clock = self.t0
        self.history: dict[str, list[Message]] = {d: [] for d in DELIVERY_IDS}
        self.calls: list[Call] = []
        self.cancelled: set[str] = set()  # a cancel call for it has returned
        self.turns = (Turn(), Turn())  # two replicas
        self._booking_turn = service._booking_turn
        service._booking_turn = _replica_turn  # type: ignore[assignment]
        service.forget_fleets()  # what another example's drones were
        service._rng.seed(0)  # a failing example runs the same way again
        self.drones, self.assignments = self.run(self._open())

    async def _open(self) -> tuple[DocumentStore, DocumentStore]:
        url = f"sqlite:///{Path(self.folder) / 'dronescheduler.db'}"
        drones: DocumentStore = await connect_document_store(url, service.DRONES)
        if self.PAGE is not None:
            self.heads = drones
            self.pages = await connect_document_store(url, PAGES)
            drones = PagedDrones(self.heads, self.pages, page=self.PAGE)
        assignments = await connect_document_store(url, service.ASSIGNMENTS)
        await service.ensure_fleet(drones=drones, size=FLEET, base=Location(47.6, -122.3))
        if self.PAGE is not None:
            await self._book_backlog(drones)
        return drones, assignments

    async def _book_backlog(self, drones: DocumentStore) -> None:
        """BACKLOG windows on each drone, hours after any the machine books: its bookings
        go in before them, into the first page, and its cancels come out of it."""
        for doc in await drones.find():
            drone = Drone.from_json(doc.body)
            for k in range(BACKLOG):
                departure = self.t0 + timedelta(hours=6 + k)
                window = Window(
                    delivery_id=f"backlog-{drone.id}-{k}",
                    requested_at=self.t0,
                    departure=departure,
                    departure_location=drone.home,
                    pickup_eta=departure + timedelta(minutes=5),
                    delivery_eta=departure + timedelta(minutes=30),
                    dropoff=drone.home,
                    miles=2.0,
                )
                drone = drone.with_window(window, self.t0)
            await drones.replace(drone.id, drone.to_json(), etag=doc.etag)

    def run(self, work: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(work)

    # -------------------------------- what happens

    @rule(
        delivery=st.sampled_from(DELIVERY_IDS),
        cancel=st.booleans(),
        pickup=st.integers(0, len(PLACES) - 1),
        dropoff=st.integers(0, len(PLACES) - 1),
        hour=st.integers(0, 2),
    )
    def accept(self, delivery: str, cancel: bool, pickup: int, dropoff: int, hour: int) -> None:
        """Ingestion accepts the delivery's next operation: its create, a change of places
        and time (a reschedule), or its cancel; nothing after a cancel (a 409)."""
        history = self.history[delivery]
        if history and history[-1].operation is Operation.CANCEL:
            return
        version = len(history) + 1
        operation = (
            Operation.DELIVERY
            if not history
            else (Operation.CANCEL if cancel else Operation.RESCHEDULE)
        )
        request = _request(delivery, version, pickup, dropoff, hour, self.t0)
        history.append(Message(operation, request))

    @precondition(lambda self: any(self.history.values()))
    @rule(
        delivery=st.sampled_from(DELIVERY_IDS),
        older=st.integers(0, 3),
        replica=st.integers(0, 1),
        late=st.booleans(),
        writes=st.integers(0, 6),
    )
    def deliver(self, delivery: str, older: int, replica: int, late: bool, writes: int) -> None:
        """The queue hands one of the delivery's messages to a replica: the latest (older=0),
        or an older one (redelivered, or late); `late`, after the claim timeout (it may take
        over a claim whose booker is dead, or only paused). The call makes `writes` writes
        and pauses before its next one."""
        history = self.history[delivery]
        if not history:
            return
        if late:
            self.clock += STALE
        message = history[max(len(history) - 1 - older, 0)]
        self.run(self._start(message, replica, writes=writes))

    @precondition(lambda self: self.calls)
    @rule(call=st.integers(0, 7), writes=st.integers(1, 6))
    def write(self, call: int, writes: int) -> None:
        """A paused call makes its next `writes` writes (fewer if it ends, or waits for its
        replica's turn)."""
        self.run(self._write(self.calls[call % len(self.calls)], writes))

    @precondition(lambda self: self.calls)
    @rule(call=st.integers(0, 7))
    def crash(self, call: int) -> None:
        """A call's process dies before its next write; its message will come back."""
        self.run(self.calls.pop(call % len(self.calls)).crash())

    # -------------------------------- what must hold

    @invariant()
    def one_drone_per_delivery_and_no_overlaps(self) -> None:
        windows = self.run(self._windows())
        for delivery, where in windows.items():
            assert len(where) <= 1, f"{delivery} is on {[d for d, _ in where]}"

    @invariant()
    def a_cancel_that_returned_leaves_no_window(self) -> None:
        windows = self.run(self._windows())
        for delivery in self.cancelled:
            assert not windows.get(delivery), f"cancelled {delivery} is on {windows[delivery]}"

    def teardown(self) -> None:
        try:
            self.run(self._settle())
            self.run(self._check_final())
        finally:
            self.run(self._close())
            self.loop.close()
            service._booking_turn = self._booking_turn
            shutil.rmtree(self.folder, ignore_errors=True)

    # -------------------------------- how

    async def _start(
        self, message: Message, replica: int, *, writes: int = 0, free: bool = False
    ) -> Call:
        now = self.clock

        async def work(call: Call) -> Any:
            drones: DocumentStore = Gated(self.drones, call, "drones")
            if self.PAGE is not None:
                # Each head write gated; the pages before it are seen by no one until then.
                gated = Gated(self.heads, call, "drones")
                drones = PagedDrones(gated, self.pages, page=self.PAGE)  # type: ignore[arg-type]
            assignments = Gated(self.assignments, call, "assignments")
            if message.operation is Operation.CANCEL:
                return await service.cancel(
                    drones=drones,
                    assignments=assignments,
                    delivery_id=message.request.deliveryId,
                    version=message.version,
                )
            return await service.assign(
                drones=drones, assignments=assignments, request=message.request, now=now
            )

        call = Call(message, self.turns[replica], work)
        call.free = free
        self.calls.append(call)
        await call.until_paused()
        await self._write(call, writes)
        return call

    async def _write(self, call: Call, writes: int) -> None:
        for _ in range(writes):
            if call.task.done():
                break
            waiting = call.at == TURN
            await call.write()
            if waiting and call.at == TURN:
                break  # the turn's holder is paused
        self._if_done(call)

    def _if_done(self, call: Call) -> None:
        """A call that has ended: its message done, as workflow would complete it, or left
        for the queue to hand out again (an answer 'in progress': a 503)."""
        if not call.task.done():
            return
        self.calls.remove(call)
        if call.task.cancelled():
            return
        message, error = call.message, call.task.exception()
        if isinstance(error, service.BookingInProgress | ConcurrencyConflict):
            return
        if error is not None and not isinstance(
            error, service.AssignmentCancelled | service.Superseded
        ):
            raise error
        message.done = True
        if message.operation is Operation.CANCEL:
            self.cancelled.add(message.request.deliveryId)

    async def _settle(self) -> None:
        """Every paused call resumes; then, past the claim timeout, the queue hands out every
        message not done (newest first) until all are."""
        for _ in range(SETTLING_WRITES):  # one write at a time, in turn: the same every run
            if not self.calls:
                break
            for call in list(self.calls):
                await self._write(call, 1)
        assert not self.calls, f"{self.calls} never finished"
        for _ in range(SETTLING_ROUNDS):
            pending = [m for h in self.history.values() for m in reversed(h) if not m.done]
            if not pending:
                return
            self.clock += STALE
            for message in pending:
                call = await self._start(message, 0, free=True)
                assert call.task.done(), f"{call} is stuck"
        raise AssertionError(f"never settled: {pending}")

    async def _check_final(self) -> None:
        windows = await self._windows()
        for delivery, history in self.history.items():
            doc = await self.assignments.get(delivery)
            where = windows.get(delivery, [])
            if not history:
                assert doc is None and not where
                continue
            assert doc is not None, f"{delivery}: acknowledged, never seen"
            latest = history[-1]
            if latest.operation is Operation.CANCEL:
                assert doc.body["status"] == service.CANCELLED, (delivery, doc.body)
                assert not where, f"cancelled {delivery} is on {where}"
                continue
            assert doc.body["status"] == service.ASSIGNED, (delivery, doc.body)
            assert doc.body["version"] == latest.version, (delivery, doc.body)
            assert doc.body["request"] == latest.request.model_dump(mode="json"), delivery
            assert len(where) == 1, f"{delivery} is on {where}"
            [(drone, window)] = where
            assert drone == doc.body["droneId"], (delivery, drone, doc.body)
            assert doc.body["window"] == window.to_json(), delivery
            asked = latest.request.dropoff
            assert (window.dropoff.latitude, window.dropoff.longitude) == (
                asked.latitude,
                asked.longitude,
            ), delivery

    async def _windows(self) -> dict[str, list[tuple[str, Window]]]:
        """Each delivery's windows, with their drones; checks that no drone's overlap."""
        where: dict[str, list[tuple[str, Window]]] = defaultdict(list)
        for doc in await self.drones.find():
            drone = Drone.from_json(doc.body)
            for before, after in zip(drone.schedule, drone.schedule[1:], strict=False):
                assert before.delivery_eta <= after.departure, f"{drone.id} double-booked"
            for window in drone.schedule:
                where[window.delivery_id].append((drone.id, window))
        return where

    async def _close(self) -> None:
        for call in list(self.calls):
            await call.crash()
        await self.drones.close()
        await self.assignments.close()


TestBookingProtocol = BookingProtocol.TestCase
TestBookingProtocol.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class PagedBookingProtocol(BookingProtocol):
    """The same, with drones kept in pages of one window, each with a backlog of windows
    the machine's bookings go before: nearly every write makes a page and drops one. No
    write may lose a window of the backlog."""

    PAGE = 1

    @invariant()
    def the_backlog_stays(self) -> None:
        windows = self.run(self._windows())
        backlog = [d for d in windows if d.startswith("backlog-")]
        assert len(backlog) == FLEET * BACKLOG, f"backlog windows left: {sorted(backlog)}"


TestPagedBookingProtocol = PagedBookingProtocol.TestCase
TestPagedBookingProtocol.settings = TestBookingProtocol.settings


Step = tuple[str, dict[str, Any]]


def replay(*steps: Step) -> None:
    """Run the machine through the given rules, checking its invariants after each, as
    hypothesis would: a sequence it found, kept as a plain test. Delivery d1 throughout."""
    machine = BookingProtocol()
    try:
        for name, arguments in steps:
            getattr(machine, name)(**arguments)
            machine.one_drone_per_delivery_and_no_overlaps()
            machine.a_cancel_that_returned_leaves_no_window()
    finally:
        machine.teardown()


def accept(*, cancel: bool = False) -> Step:
    return "accept", {"delivery": "d1", "cancel": cancel, "pickup": 0, "dropoff": 1, "hour": 0}


def deliver(writes: int, *, late: bool = False, replica: int = 0) -> Step:
    """d1's latest message, to a replica, for `writes` writes."""
    return "deliver", {
        "delivery": "d1",
        "older": 0,
        "replica": replica,
        "late": late,
        "writes": writes,
    }


def crash(call: int) -> Step:
    return "crash", {"call": call}


def write(call: int) -> Step:
    """The call runs on to its end."""
    return "write", {"call": call, "writes": 6}


def test_a_takeover_that_dies_before_clearing_leaves_the_drone_written_known() -> None:
    replay(
        accept(),
        deliver(2),  # its claim naming drone X, its window on X; dies before its outcome
        crash(0),
        deliver(2, late=True, replica=1),  # takes the claim over, dies before it fences X
        crash(0),
        deliver(6, late=True),  # later still: takes that claim over and books (on Y)
    )


def test_a_cancel_repeated_after_a_crash_still_fences_a_paused_booker() -> None:
    replay(
        accept(),
        deliver(1),  # its claim naming drone X; paused before its window on X
        accept(cancel=True),
        deliver(1, replica=1),  # marks the assignment cancelled; dies before it fences X
        crash(1),
        deliver(6, replica=1),  # redelivered, the cancel runs to its end
        write(0),  # the paused booker resumes, and must book nothing
    )


def test_a_taker_overtaken_itself_clears_nothing_when_it_resumes() -> None:
    replay(
        accept(),
        deliver(1),  # its claim naming drone X; it dies
        crash(0),
        deliver(2, late=True, replica=1),  # takes the claim over; paused before it fences X
        deliver(6, late=True),  # takes that claim over, fences X and books on X
        # The first taker resumes: it must not clear the booking made after it (the end
        # checks that the delivery is on the drone its assignment names).
        write(0),
    )
