"""Drones with long schedules, stored in pages: what a booking writes, what a reader sees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chassis.documents import ConcurrencyConflict, DocumentStore, connect_document_store
from dronescheduler import service
from dronescheduler.models import Drone, Location, Window
from dronescheduler.pages import PAGES, PagedDrones

NOW = datetime.now(UTC)  # a cancel prunes by the clock: the windows are ahead of it
HOME = Location(47.6, -122.3)
PAGE = 4


def window(k: int) -> Window:
    departure = NOW + timedelta(hours=k)
    return Window(
        delivery_id=f"d{k}",
        requested_at=NOW,
        departure=departure,
        departure_location=HOME,
        pickup_eta=departure + timedelta(minutes=5),
        delivery_eta=departure + timedelta(minutes=20),
        dropoff=Location(47.61, -122.31),
        miles=3.0,
    )


def drone(windows: int) -> Drone:
    return Drone("drone-001", HOME, HOME, tuple(window(2 * k) for k in range(windows)))


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[PagedDrones, DocumentStore]]:
    url = f"sqlite:///{tmp_path}/drones.db"
    heads = await connect_document_store(url, service.DRONES)
    pages = await connect_document_store(url, PAGES)
    drones = PagedDrones(heads, pages, page=PAGE)
    yield drones, pages
    await drones.close()


async def settled(drones: PagedDrones) -> None:
    """Until the pages a write dropped are deleted (they go after the write returns)."""
    for _ in range(100):
        if not drones._deleting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("pages still being deleted")


async def paged(drones: PagedDrones) -> tuple[Drone, str]:
    """A drone of 30 windows, two hours apart, written through `drones`: as read, its ETag."""
    written = await drones.create("drone-001", drone(30).to_json())
    return Drone.from_json(written.body), written.etag


async def test_a_long_schedule_is_kept_in_pages_and_read_back_whole(
    stores: tuple[PagedDrones, DocumentStore],
) -> None:
    drones, pages = stores
    long = drone(30)
    written = await drones.create(long.id, long.to_json())

    head = await drones.heads.get(long.id)
    assert head is not None
    assert "schedule" not in head.body  # a replica before pages fails on it, never plans on part
    assert len(head.body["tail"]) == PAGE
    stored = await pages.find()
    assert sum(len(p.body["windows"]) for p in stored) == 30 - PAGE
    assert all(PAGE <= len(p.body["windows"]) < 2 * PAGE for p in stored)

    read = await drones.get(long.id)
    assert read is not None and read.etag == written.etag
    again = Drone.from_json(read.body)
    assert again.schedule == long.schedule
    assert [p.id for p in again.pages] == [p.id for p in long.stored_as(written.body).pages]
    with pytest.raises(ValueError, match="pages"):
        Drone.from_json(head.body)  # the head alone is not the drone


async def test_a_booking_inside_the_schedule_writes_one_page_and_the_head(
    stores: tuple[PagedDrones, DocumentStore],
) -> None:
    drones, pages = stores
    kept, etag = await paged(drones)
    before = await pages.versions()

    booked = kept.with_window(window(1), NOW)  # between the first two: in the first page
    after = await drones.replace(booked.id, booked.to_json(), etag=etag)
    await settled(drones)

    now_stored = await pages.versions()
    assert len(set(now_stored) - set(before)) == 1  # the first page, anew
    assert len(set(before) - set(now_stored)) == 1  # and the one it replaced, gone
    read = await drones.get("drone-001")
    assert read is not None and read.etag == after.etag
    assert Drone.from_json(read.body).schedule == booked.schedule

    # At the end: the head only.
    latest = Drone.from_json(read.body)
    last = latest.with_window(window(100), NOW)
    await drones.replace(last.id, last.to_json(), etag=read.etag)
    await settled(drones)
    assert await pages.versions() == now_stored


async def test_a_write_on_an_old_etag_leaves_no_page_behind(
    stores: tuple[PagedDrones, DocumentStore],
) -> None:
    drones, pages = stores
    kept, etag = await paged(drones)
    first = kept.with_window(window(1), NOW)
    await drones.replace(first.id, first.to_json(), etag=etag)
    await settled(drones)
    stored = await pages.versions()

    late = kept.with_window(window(3), NOW)  # planned on what the first write replaced
    with pytest.raises(ConcurrencyConflict):
        await drones.replace(late.id, late.to_json(), etag=etag)
    assert await pages.versions() == stored


async def test_cancels_and_time_passing_keep_the_pages_in_step(
    stores: tuple[PagedDrones, DocumentStore],
) -> None:
    drones, _ = stores
    kept, etag = await paged(drones)
    # Cancels all over the schedule, bookings into the gaps they leave, time passing.
    for step, k in enumerate([3, 10, 11, 25, 0, 58]):
        now = NOW + timedelta(hours=step * 3)
        changed = kept.without(f"d{k}", now).with_window(window(2 * step + 1), now)
        written = await drones.replace(changed.id, changed.to_json(), etag=etag)
        kept, etag = changed.stored_as(written.body), written.etag
        read = await drones.get(changed.id)
        assert read is not None
        assert Drone.from_json(read.body).schedule == kept.schedule
        assert sum(p.count for p in kept.pages) <= len(kept.schedule)


async def test_a_reader_whose_pages_were_replaced_meanwhile_reads_again(
    stores: tuple[PagedDrones, DocumentStore],
) -> None:
    drones, pages = stores
    kept, etag = await paged(drones)
    stale_head = await drones.heads.get("drone-001")
    booked = kept.with_window(window(1), NOW)
    await drones.replace(booked.id, booked.to_json(), etag=etag)
    await settled(drones)

    class Stale:
        """The heads as a reader saw them just before the write above."""

        async def find(self, **where: object) -> list[object]:
            return [stale_head]

        async def get(self, id: str) -> object:
            return await drones.heads.get(id)

    reader = PagedDrones(Stale(), pages, page=PAGE)  # type: ignore[arg-type]
    [read] = await reader.find()
    assert Drone.from_json(read.body).schedule == booked.schedule


async def test_with_no_pages_a_paged_drone_is_written_whole_again(
    stores: tuple[PagedDrones, DocumentStore],
) -> None:
    drones, pages = stores
    await paged(drones)
    whole = PagedDrones(drones.heads, pages, page=0)  # turned off after a roll back
    read = await whole.get("drone-001")
    assert read is not None
    booked = Drone.from_json(read.body).with_window(window(1), NOW)
    await whole.replace(booked.id, booked.to_json(), etag=read.etag)
    await settled(whole)

    head = await drones.heads.get("drone-001")
    assert head is not None
    assert Drone.from_json(head.body).schedule == booked.schedule  # as older releases read it
    assert await pages.versions() == {}


async def test_documents_written_before_pages_are_read_as_they_are(
    stores: tuple[PagedDrones, DocumentStore],
) -> None:
    drones, _ = stores
    old = drone(3)
    await drones.heads.create(old.id, old.to_json())
    read = await drones.get(old.id)
    assert read is not None
    assert Drone.from_json(read.body).schedule == old.schedule


async def test_bookings_on_a_paged_fleet_are_those_on_a_whole_one(tmp_path: Path) -> None:
    # The same requests, on the same fleet, kept whole and in pages of two windows: the
    # pages change how drones are stored, not where anything is booked.
    schedules = []
    for page in (0, 2):
        url = f"sqlite:///{tmp_path}/fleet-{page}.db"
        drones = PagedDrones(
            await connect_document_store(url, service.DRONES),
            await connect_document_store(url, PAGES),
            page=page,
        )
        assignments = await connect_document_store(url, service.ASSIGNMENTS)
        service.forget_fleets()
        service._rng.seed(3)
        try:
            await service.ensure_fleet(drones=drones, size=3, base=HOME)
            for k in range(40):
                body = {
                    "deliveryId": f"d{k}",
                    "ownerId": "owner",
                    "pickup": {"latitude": 47.6 + k % 5 / 100, "longitude": -122.3},
                    "dropoff": {"latitude": 47.62, "longitude": -122.3 - k % 3 / 100},
                    "pickupTime": (NOW + timedelta(hours=k * 7 % 30)).isoformat(),
                    "packageDetail": {"id": "p", "size": "Small"},
                }
                await service.assign(
                    drones=drones,
                    assignments=assignments,
                    request=service.DroneDeliveryRequest.model_validate(body),
                    now=NOW,
                )
                if k % 4 == 3:
                    await service.cancel(
                        drones=drones, assignments=assignments, delivery_id=f"d{k - 2}"
                    )
            fleet = [Drone.from_json(d.body) for d in await drones.find()]
            schedules.append({d.id: [w.delivery_id for w in d.schedule] for d in fleet})
            assert sum(len(d.schedule) for d in fleet) == 30  # 40 booked, 10 cancelled
            if page:
                assert any(d.pages for d in fleet)
        finally:
            await drones.close()
            await assignments.close()
    assert schedules[0] == schedules[1]


async def test_a_fleet_is_listed_whole_with_its_pages_read_a_few_at_a_time(
    stores: tuple[PagedDrones, DocumentStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    drones, _ = stores
    monkeypatch.setattr("dronescheduler.pages.READ_PAGES_AT_ONCE", 3)
    fleet = [replace(drone(10 + k), id=f"drone-{k:03d}") for k in range(4)]
    for d in fleet:
        await drones.create(d.id, d.to_json())
    listed = {doc.id: Drone.from_json(doc.body).schedule for doc in await drones.find()}
    assert listed == {d.id: d.schedule for d in fleet}
