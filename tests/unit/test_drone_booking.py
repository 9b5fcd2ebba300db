"""Booking drones on the embedded stores: concurrent calls for one delivery book it once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chassis.documents import ConcurrencyConflict, DocumentStore, connect_document_store
from dronescheduler import service
from dronescheduler.models import Drone, Location
from dronescheduler.schemas import DroneDeliveryRequest

NOW = datetime.now(UTC)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[DocumentStore, DocumentStore]]:
    url = f"sqlite:///{tmp_path}/dronescheduler.db"
    drones = await connect_document_store(url, service.DRONES)
    assignments = await connect_document_store(url, service.ASSIGNMENTS)
    await service.ensure_fleet(drones=drones, size=8, base=Location(47.6, -122.3))
    yield drones, assignments
    await drones.close()
    await assignments.close()


def request(delivery_id: str) -> DroneDeliveryRequest:
    return DroneDeliveryRequest.model_validate(
        {
            "deliveryId": delivery_id,
            "ownerId": "owner",
            "pickup": {"latitude": 47.61, "longitude": -122.33},
            "dropoff": {"latitude": 47.65, "longitude": -122.30},
            "packageDetail": {"id": "p1", "size": "Small"},
            "requestedAt": NOW.isoformat(),
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


async def test_a_fresh_claim_is_in_progress_and_cancel_waits_for_it(
    stores: tuple[DocumentStore, DocumentStore],
) -> None:
    drones, assignments = stores
    await assignments.create("d3", {"status": service.BOOKING, "claimedAt": NOW.isoformat()})
    with pytest.raises(service.BookingInProgress):
        await service.assign(drones=drones, assignments=assignments, request=request("d3"))
    with pytest.raises(service.BookingInProgress):
        await service.cancel(drones=drones, assignments=assignments, delivery_id="d3")


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
