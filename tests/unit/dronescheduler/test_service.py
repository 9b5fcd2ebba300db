"""Booking drones on the embedded stores: concurrent calls for one delivery book it once."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chassis.documents import ConcurrencyConflict, DocumentStore, connect_document_store
from dronescheduler import service
from dronescheduler.models import Drone, Location
from dronescheduler.pages import PAGES, PagedDrones
from dronescheduler.schemas import DroneDeliveryRequest

NOW = datetime.now(UTC)


# Each test on drones kept whole, and with pages of two windows (pages.py), the smallest
# that still pages: nearly every booking and cancel then writes pages.
@pytest.fixture(params=[None, 2], ids=["whole", "paged"])
async def stores(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[DocumentStore, DocumentStore]]:
    url = f"sqlite:///{tmp_path}/dronescheduler.db"
    drones = await connect_document_store(url, service.DRONES)
    if request.param is not None:
        pages = await connect_document_store(url, PAGES)
        drones = PagedDrones(drones, pages, page=request.param)
    assignments = await connect_document_store(url, service.ASSIGNMENTS)
    await service.ensure_fleet(drones=drones, size=8, base=Location(47.6, -122.3))
    yield drones, assignments
    await drones.close()
    await assignments.close()


def request(delivery_id: str, **changes: object) -> DroneDeliveryRequest:
    return DroneDeliveryRequest.model_validate(
        {
            "deliveryId": delivery_id,
            "ownerId": "owner",
            "pickup": {"latitude": 47.61, "longitude": -122.33},
            "dropoff": {"latitude": 47.65, "longitude": -122.30},
            "packageDetail": {"id": "p1", "size": "Small"},
            "requestedAt": NOW.isoformat(),
            **changes,
        }
    )


async def windows_of(drones: DocumentStore, delivery_id: str) -> list[str]:
    fleet = [Drone.from_json(d.body) for d in await drones.find()]
    return [d.id for d in fleet for w in d.schedule if w.delivery_id == delivery_id]


async def test_concurrent_calls_for_one_delivery_book_one_drone_once(
    stores: tuple[DocumentStore, DocumentStore],
) -> None:
    drones, assignments = stores
    outcomes = await asyncio.gather(
        *(
            service.assign(drones=drones, assignments=assignments, request=request("d1"))
            for _ in range(5)
        ),
        return_exceptions=True,
    )
    booked = [o for o in outcomes if isinstance(o, dict)]
    busy = [o for o in outcomes if isinstance(o, service.BookingInProgress)]
    assert booked and len(booked) + len(busy) == 5, outcomes
    assert {b["droneId"] for b in booked} == {booked[0]["droneId"]}
    assert await windows_of(drones, "d1") == [booked[0]["droneId"]]
    # Asked again afterwards: the same drone, still one window.
    again = await service.assign(drones=drones, assignments=assignments, request=request("d1"))
    assert again["droneId"] == booked[0]["droneId"]
    assert await windows_of(drones, "d1") == [booked[0]["droneId"]]


async def test_a_claim_left_by_a_booker_that_died_is_taken_over(
    stores: tuple[DocumentStore, DocumentStore],
) -> None:
    drones, assignments = stores
    stale = (NOW - service.CLAIM_STALE_AFTER - timedelta(seconds=1)).isoformat()
    await assignments.create("d2", {"status": service.BOOKING, "claimedAt": stale})
    booked = await service.assign(drones=drones, assignments=assignments, request=request("d2"))
    assert booked["status"] == service.ASSIGNED
    assert await windows_of(drones, "d2") == [booked["droneId"]]


async def test_a_fresh_claim_is_in_progress_but_a_cancel_does_not_wait_for_it(
    stores: tuple[DocumentStore, DocumentStore],
) -> None:
    drones, assignments = stores
    await assignments.create("d3", {"status": service.BOOKING, "claimedAt": NOW.isoformat()})
    with pytest.raises(service.BookingInProgress):  # fresh by the clock it was claimed on
        await service.assign(drones=drones, assignments=assignments, request=request("d3"), now=NOW)
    await service.cancel(drones=drones, assignments=assignments, delivery_id="d3")
    with pytest.raises(service.AssignmentCancelled):
        await service.assign(drones=drones, assignments=assignments, request=request("d3"))


class CountingConflicts:
    """The drone store, counting the writes refused on a stale ETag."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store
        self.conflicts = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def replace(self, id: str, body: dict[str, object], *, etag: str) -> object:
        try:
            return await self._store.replace(id, body, etag=etag)
        except ConcurrencyConflict:
            self.conflicts += 1
            raise


async def test_bookings_in_one_process_take_turns_and_never_conflict(
    stores: tuple[DocumentStore, DocumentStore],
) -> None:
    drones, assignments = stores
    counting = CountingConflicts(drones)
    await asyncio.gather(
        *(
            service.assign(drones=counting, assignments=assignments, request=request(f"t{i}"))  # type: ignore[arg-type]
            for i in range(30)
        )
    )
    assert counting.conflicts == 0


@pytest.mark.parametrize("replicas", ["one process", "a replica per booking"])
async def test_many_deliveries_at_once_never_double_book_a_drone(
    stores: tuple[DocumentStore, DocumentStore], replicas: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    drones, assignments = stores
    if replicas == "a replica per booking":
        # No turns between bookings, as between replicas: only the drones' ETags keep them
        # from booking the same time twice.
        monkeypatch.setattr(service, "_booking_turn", asyncio.Lock)
    await asyncio.gather(
        *(
            service.assign(drones=drones, assignments=assignments, request=request(f"m{i}"))
            for i in range(30)
        )
    )
    for doc in await drones.find():
        drone = Drone.from_json(doc.body)
        for before, after in zip(drone.schedule, drone.schedule[1:], strict=False):
            assert before.delivery_eta <= after.departure, drone.id
    booked = [d for d in await assignments.find() if d.body["status"] == service.ASSIGNED]
    assert len(booked) == 30
    for doc in booked:
        assert await windows_of(drones, doc.id) == [doc.body["droneId"]]


# ------------------------------------------------ the order of a booking's writes


class Recording:
    """A store that logs each write it is asked to make, in one log shared by both stores:
    which store, the document, and what the write names (drone writes: refused or not)."""

    def __init__(self, store: DocumentStore, name: str, log: list[tuple[str, ...]]) -> None:
        self._store = store
        self._name = name
        self.log = log

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def _logged(self, op: str, id: str, body: dict[str, object]) -> None:
        if self._name == "assignments":
            self.log.append((self._name, op, str(body.get("status")), str(body.get("intent"))))
        else:
            self.log.append((self._name, op, id))

    async def create(self, id: str, body: dict[str, object]) -> object:
        self._logged("create", id, body)
        return await self._store.create(id, body)

    async def replace(self, id: str, body: dict[str, object], *, etag: str) -> object:
        self._logged("replace", id, body)
        try:
            return await self._store.replace(id, body, etag=etag)
        except ConcurrencyConflict:
            self.log.append((self._name, "refused", id))
            raise


def recorded(
    drones: DocumentStore, assignments: DocumentStore
) -> tuple[DocumentStore, DocumentStore, list[tuple[str, ...]]]:
    log: list[tuple[str, ...]] = []
    return Recording(drones, "drones", log), Recording(assignments, "assignments", log), log  # type: ignore[return-value]


async def test_a_first_booking_writes_its_assignment_twice_naming_the_drone_first(
    stores: tuple[DocumentStore, DocumentStore],
) -> None:
    drones, assignments, log = recorded(*stores)
    booked = await service.assign(drones=drones, assignments=assignments, request=request("o1"))
    drone = booked["droneId"]
    assert log == [
        ("assignments", "create", service.BOOKING, drone),  # the claim names its drone
        ("drones", "replace", drone),
        ("assignments", "replace", service.ASSIGNED, "None"),
    ]


async def test_a_drone_that_refuses_the_window_is_not_booked_before_the_other_is_named(
    stores: tuple[DocumentStore, DocumentStore],
) -> None:
    drones, assignments, log = recorded(*stores)
    raw_drones, _ = stores

    class TakenMeanwhile(Recording):
        """The drone planned on is booked by another replica, for hours, just before this
        booking's window reaches it."""

        async def replace(self, id: str, body: dict[str, object], *, etag: str) -> object:
            if not any(entry[0] == "drones" for entry in self.log):
                doc = await raw_drones.get(id)
                assert doc is not None
                mine = Drone.from_json(body).window_for("o2")
                assert mine is not None
                theirs = dataclasses.replace(
                    mine, delivery_id="other", delivery_eta=mine.departure + timedelta(hours=12)
                )
                busy = Drone.from_json(doc.body).with_window(theirs, NOW)
                await raw_drones.replace(id, busy.to_json(), etag=doc.etag)
            return await super().replace(id, body, etag=etag)

    drones = TakenMeanwhile(raw_drones, "drones", log)  # type: ignore[assignment]
    booked = await service.assign(drones=drones, assignments=assignments, request=request("o2"))
    planned, other = log[0][3], booked["droneId"]
    assert planned != other
    assert log == [
        ("assignments", "create", service.BOOKING, planned),
        ("drones", "replace", planned),
        ("drones", "refused", planned),
        ("assignments", "replace", service.BOOKING, other),  # named before it is written
        ("drones", "replace", other),
        ("assignments", "replace", service.ASSIGNED, "None"),
    ]
    assert await windows_of(raw_drones, "o2") == [other]


async def test_a_re_plan_onto_the_drone_it_was_booked_on_names_it_without_a_write(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/dronescheduler.db"
    raw = (
        await connect_document_store(url, service.DRONES),
        await connect_document_store(url, service.ASSIGNMENTS),
    )
    try:
        await service.ensure_fleet(drones=raw[0], size=1, base=Location(47.6, -122.3))
        drones, assignments, log = recorded(*raw)
        first = await service.assign(
            drones=drones, assignments=assignments, request=request("o3", version=1)
        )
        del log[:]
        far = {"latitude": 47.70, "longitude": -122.20}
        moved = await service.assign(
            drones=drones, assignments=assignments, request=request("o3", version=2, dropoff=far)
        )
        drone = first["droneId"]
        assert moved["droneId"] == drone  # the only one
        assert log == [
            ("assignments", "replace", service.BOOKING, "None"),  # names it as booked on
            ("drones", "replace", drone),  # the earlier window cleared
            ("drones", "replace", drone),  # the new one
            ("assignments", "replace", service.ASSIGNED, "None"),
        ]
        assert await windows_of(raw[0], "o3") == [drone]
    finally:
        for store in raw:
            await store.close()


# ------------------------------------------------ a booker that was only paused


class Paused:
    """A store whose next matching write waits until released: a booker frozen (SIGSTOP, a
    long pause) at that point of its booking."""

    def __init__(self, store: DocumentStore, pause_on: str) -> None:
        self._store = store
        self._pause_on = pause_on  # "drone" (the window's write) or "outcome"
        self.reached = asyncio.Event()
        self.resume = asyncio.Event()
        self._armed = True

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def replace(self, id: str, body: dict[str, object], *, etag: str) -> object:
        matches = (self._pause_on == "drone" and "schedule" in body) or (
            self._pause_on == "outcome" and body.get("status") == service.ASSIGNED
        )
        if self._armed and matches:
            self._armed = False
            self.reached.set()
            await self.resume.wait()
        return await self._store.replace(id, body, etag=etag)


def later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


@pytest.mark.parametrize("paused_before", ["drone", "outcome"])
@pytest.mark.parametrize("overtaken_by", ["a takeover", "a cancel"])
async def test_a_booker_paused_past_its_claim_never_books_a_second_drone(
    stores: tuple[DocumentStore, DocumentStore],
    monkeypatch: pytest.MonkeyPatch,
    paused_before: str,
    overtaken_by: str,
) -> None:
    drones, assignments = stores
    monkeypatch.setattr(service, "_booking_turn", asyncio.Lock)  # two replicas: no turns
    stale = service.CLAIM_STALE_AFTER.total_seconds() + 1
    if paused_before == "drone":
        frozen_drones: DocumentStore = Paused(drones, "drone")  # type: ignore[assignment]
        frozen_assignments, gate = assignments, frozen_drones
    else:
        frozen_assignments = Paused(assignments, "outcome")  # type: ignore[assignment]
        frozen_drones, gate = drones, frozen_assignments
    frozen = asyncio.create_task(
        service.assign(
            drones=frozen_drones, assignments=frozen_assignments, request=request("p1"), now=NOW
        )
    )
    await asyncio.wait_for(gate.reached.wait(), 10)  # type: ignore[attr-defined]
    if overtaken_by == "a takeover":
        taken = await service.assign(
            drones=drones, assignments=assignments, request=request("p1"), now=later(stale)
        )
        assert taken["status"] == service.ASSIGNED
    else:
        await service.cancel(drones=drones, assignments=assignments, delivery_id="p1")
    gate.resume.set()  # type: ignore[attr-defined]
    # It may answer "in progress" or the taker's outcome; what it must not do is book.
    with contextlib.suppress(service.BookingInProgress):
        await asyncio.wait_for(frozen, 10)

    doc = await assignments.get("p1")
    assert doc is not None
    if overtaken_by == "a takeover":
        assert doc.body["status"] == service.ASSIGNED
        assert await windows_of(drones, "p1") == [doc.body["droneId"]]
    else:
        assert doc.body["status"] == service.CANCELLED
        assert await windows_of(drones, "p1") == []


# ------------------------------------------------ versions and cancels


async def test_only_a_newer_version_is_planned_again(
    stores: tuple[DocumentStore, DocumentStore],
) -> None:
    drones, assignments = stores
    far = {"latitude": 47.70, "longitude": -122.20}
    first = await service.assign(
        drones=drones, assignments=assignments, request=request("v1", version=1)
    )
    moved = await service.assign(
        drones=drones, assignments=assignments, request=request("v1", version=2, dropoff=far)
    )
    assert moved["version"] == 2 and moved["request"]["dropoff"]["latitude"] == 47.70
    late = await service.assign(
        drones=drones, assignments=assignments, request=request("v1", version=1)
    )
    assert late == moved  # the older request, delivered late, changes nothing
    assert first["request"]["dropoff"]["latitude"] == 47.65
    assert await windows_of(drones, "v1") == [moved["droneId"]]


async def test_a_cancel_that_comes_first_keeps_the_delivery_from_being_booked(
    stores: tuple[DocumentStore, DocumentStore],
) -> None:
    drones, assignments = stores
    await service.cancel(drones=drones, assignments=assignments, delivery_id="c1", version=2)
    with pytest.raises(service.AssignmentCancelled):
        await service.assign(
            drones=drones, assignments=assignments, request=request("c1", version=1)
        )
    assert await windows_of(drones, "c1") == []


async def test_a_cancel_repeated_after_a_crash_still_frees_the_drone(
    stores: tuple[DocumentStore, DocumentStore],
) -> None:
    drones, assignments = stores
    booked = await service.assign(drones=drones, assignments=assignments, request=request("c2"))
    doc = await assignments.get("c2")
    assert doc is not None
    # Crashed after marking it cancelled, before freeing the drone.
    await assignments.replace("c2", {**doc.body, "status": service.CANCELLED}, etag=doc.etag)
    assert await windows_of(drones, "c2") == [booked["droneId"]]
    await service.cancel(drones=drones, assignments=assignments, delivery_id="c2")
    assert await windows_of(drones, "c2") == []


@pytest.mark.parametrize("pickup_time", ["2030-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
async def test_a_pickup_beyond_the_planning_horizon_is_unplannable(
    stores: tuple[DocumentStore, DocumentStore], pickup_time: str
) -> None:
    drones, assignments = stores
    with pytest.raises(service.Unplannable) as refused:
        await service.assign(
            drones=drones,
            assignments=assignments,
            request=request("u1", pickupTime=pickup_time),
            now=datetime(2026, 12, 3, tzinfo=UTC),
        )
    assert refused.value.field == "pickupTime"
    assert await assignments.get("u1") is None  # refused before anything was claimed


async def test_a_pickup_long_past_is_planned_from_now(
    stores: tuple[DocumentStore, DocumentStore],
) -> None:
    drones, assignments = stores
    booked = await service.assign(
        drones=drones,
        assignments=assignments,
        request=request("u2", pickupTime="0001-01-01T00:00:00Z"),
        now=NOW,
    )
    assert datetime.fromisoformat(booked["window"]["departure"]) >= NOW


async def test_a_drone_freed_because_its_delivery_failed_can_be_booked_by_a_newer_request(
    stores: tuple[DocumentStore, DocumentStore],
) -> None:
    drones, assignments = stores
    # Failed before any booking (refused as unplannable, say): freed all the same.
    await service.cancel(
        drones=drones, assignments=assignments, delivery_id="f1", version=1, final=False
    )
    assert await windows_of(drones, "f1") == []
    with pytest.raises(service.Superseded):  # the request that failed, again
        await service.assign(
            drones=drones, assignments=assignments, request=request("f1", version=1)
        )
    again = await service.assign(
        drones=drones, assignments=assignments, request=request("f1", version=2)
    )
    assert again["status"] == service.ASSIGNED and again["version"] == 2
    assert service.view(again)["ownerId"] == "owner"
    assert await windows_of(drones, "f1") == [again["droneId"]]


async def test_freeing_an_older_version_leaves_a_newer_booking_alone(
    stores: tuple[DocumentStore, DocumentStore],
) -> None:
    drones, assignments = stores
    newer = await service.assign(
        drones=drones, assignments=assignments, request=request("f2", version=3)
    )
    await service.cancel(
        drones=drones, assignments=assignments, delivery_id="f2", version=2, final=False
    )
    assert await windows_of(drones, "f2") == [newer["droneId"]]
    await service.cancel(drones=drones, assignments=assignments, delivery_id="f2", version=4)
    assert await windows_of(drones, "f2") == []


# ------------------------------------------------ replicas, and what the last release wrote


async def test_replicas_booking_on_what_they_knew_never_double_book(tmp_path: Path) -> None:
    # Two replicas: each its own connections and its own knowledge of the fleet, which the
    # other's bookings put behind the store. Only the drones' ETags stand between them.
    url = f"sqlite:///{tmp_path}/replicas.db"
    replicas = []
    for _ in range(2):
        replica = (
            await connect_document_store(url, service.DRONES),
            await connect_document_store(url, service.ASSIGNMENTS),
        )
        replicas.append(replica)
    drones, _ = replicas[0]
    await service.ensure_fleet(drones=drones, size=3, base=Location(47.6, -122.3))
    try:
        for one in replicas:  # each reads the fleet once, before the other books
            await service.assign(drones=one[0], assignments=one[1], request=request(f"w{id(one)}"))
        await asyncio.gather(
            *(
                service.assign(
                    drones=replicas[i % 2][0],
                    assignments=replicas[i % 2][1],
                    request=request(f"r{i}"),
                )
                for i in range(24)
            )
        )
        for doc in await drones.find():
            drone = Drone.from_json(doc.body)
            for before, after in zip(drone.schedule, drone.schedule[1:], strict=False):
                assert before.delivery_eta <= after.departure, drone.id
        for i in range(24):
            doc = await replicas[0][1].get(f"r{i}")
            assert doc is not None and doc.body["status"] == service.ASSIGNED
            assert await windows_of(drones, f"r{i}") == [doc.body["droneId"]]
    finally:
        for d, a in replicas:
            await d.close()
            await a.close()


async def test_documents_the_last_release_wrote_are_read_and_updated(tmp_path: Path) -> None:
    # The release before this one kept each drone whole (its schedule as rows, or as
    # objects before that, and its fences); a side-by-side upgrade books on what it wrote,
    # and takes over a claim its booker left.
    url = f"sqlite:///{tmp_path}/upgrade.db"
    drones = await connect_document_store(url, service.DRONES)
    assignments = await connect_document_store(url, service.ASSIGNMENTS)
    home = {"latitude": 47.61, "longitude": -122.33, "altitude": 0.0}
    soon = NOW + timedelta(minutes=20)
    left = {
        "deliveryId": "left",
        "requestedAt": NOW.isoformat(),
        "departure": soon.isoformat(),
        "departureLocation": home,
        "pickupETA": (soon + timedelta(minutes=1)).isoformat(),
        "deliveryETA": (soon + timedelta(minutes=9)).isoformat(),
        "dropoff": {"latitude": 47.65, "longitude": -122.30, "altitude": 0.0},
        "miles": 3.1,
    }
    kept = dict(left, deliveryId="kept")
    for key, at in (("departure", 40), ("pickupETA", 41), ("deliveryETA", 49)):
        kept[key] = (NOW + timedelta(minutes=at)).isoformat()
    old_fence = ["gone", 4, (NOW - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)]
    await drones.create(
        "drone-001",
        {"id": "drone-001", "home": home, "lastLocation": home, "schedule": [left, kept]},
    )
    rows = Drone.from_json({"id": "drone-002", "home": home, "lastLocation": home, "schedule": []})
    await drones.create("drone-002", {**rows.to_json(), "fences": [old_fence]})
    stale = (NOW - service.CLAIM_STALE_AFTER - timedelta(seconds=1)).isoformat()
    claim = {
        "deliveryId": "left",
        "ownerId": "owner",
        "status": service.BOOKING,
        "claimedAt": stale,
        "token": 1,
        "intent": "drone-001",
        "dirty": [],
        "version": 1,
        "request": request("left", version=1).model_dump(mode="json"),
    }
    await assignments.create("left", claim)
    try:
        booked = await service.assign(
            drones=drones, assignments=assignments, request=request("left", version=2), now=NOW
        )
        assert booked["status"] == service.ASSIGNED and booked["token"] == 2
        assert await windows_of(drones, "left") == [booked["droneId"]]
        assert await windows_of(drones, "kept") == ["drone-001"]
        for i in range(6):  # and more bookings on both, each written whole again
            await service.assign(
                drones=drones, assignments=assignments, request=request(f"n{i}"), now=NOW
            )
        for doc in await drones.find():
            drone = Drone.from_json(doc.body)
            assert all(isinstance(w, list) for w in doc.body["schedule"])  # rows now
            for before, after in zip(drone.schedule, drone.schedule[1:], strict=False):
                assert before.delivery_eta <= after.departure, drone.id
        two = await drones.get("drone-002")
        assert two is not None and two.body["fences"] == [old_fence]  # kept as it was
    finally:
        await drones.close()
        await assignments.close()


async def test_a_cancel_that_clears_a_drone_while_a_booking_plans_on_it_is_not_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One drone, so the booking of "b" plans on the drone that holds "a"; "a"'s cancel
    # clears that drone after "b" planned and before "b" writes. Written on the ETag the
    # clear left, "b"'s plan (made on the drone with "a" still on it) would put "a" back.
    url = f"sqlite:///{tmp_path}/dronescheduler.db"
    drones = await connect_document_store(url, service.DRONES)
    assignments = await connect_document_store(url, service.ASSIGNMENTS)
    try:
        await service.ensure_fleet(drones=drones, size=1, base=Location(47.6, -122.3))
        await service.assign(drones=drones, assignments=assignments, request=request("a"), now=NOW)
        assert await windows_of(drones, "a") != []
        intend = service._Claim.intend
        cancels: list[str] = []

        async def cancel_a_first(claim: service._Claim, drone: str) -> None:
            if claim.id == "b" and not cancels:
                cancels.append("a")
                await service.cancel(drones=drones, assignments=assignments, delivery_id="a")
            await intend(claim, drone)

        monkeypatch.setattr(service._Claim, "intend", cancel_a_first)
        await service.assign(drones=drones, assignments=assignments, request=request("b"), now=NOW)

        assert cancels == ["a"]
        assert await windows_of(drones, "a") == []
        assert len(await windows_of(drones, "b")) == 1
    finally:
        await drones.close()
        await assignments.close()
