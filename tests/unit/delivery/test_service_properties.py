"""Properties of the delivery service's per-delivery state, over random orders of its writes.

One delivery's versioned writes (schedules, failures, a cancel), applied in random
orders with repeats: the document ends as applying them once each, in
version order, leaves it.

The drone scheduler's half, the booking protocol, is in
tests/unit/dronescheduler/test_service_properties.py.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, note, settings
from hypothesis import strategies as st

from chassis.documents import DocumentStore, connect_document_store
from delivery import service as deliveries
from delivery.schemas import DeliveryCancellation, DeliveryFailure, DeliverySchedule

PLACES = ((47.61, -122.33), (47.65, -122.30), (47.58, -122.36), (47.70, -122.20))
# The stores' files in memory where there is a memory file system: a commit costs no disk sync.
_MEMORY = "/dev/shm" if Path("/dev/shm").is_dir() else None
IGNORED = {"failedAt", "cancelledAt"}  # when the write was applied: the wall clock's


@dataclass(frozen=True)
class Write:
    """What workflow writes to the delivery service for one version of a delivery."""

    version: int
    kind: str  # "schedule", "fail" or "cancel"
    pickup: int
    dropoff: int
    drone: int
    minutes: int  # departure, from the start
    skew: int  # seconds: ingestion replicas' clocks disagree; versions, not clocks, decide


@st.composite
def delivery_writes(draw: st.DrawFn) -> list[Write]:
    """One delivery's versions 1..n, each scheduled or failed, and perhaps a cancel after
    them (a cancel is final: ingestion accepts nothing after it)."""
    count = draw(st.integers(1, 4))
    writes = []
    for version in range(1, count + 1):
        writes.append(
            Write(
                version,
                draw(st.sampled_from(["schedule", "fail"])),
                draw(st.integers(0, len(PLACES) - 1)),
                draw(st.integers(0, len(PLACES) - 1)),
                draw(st.integers(1, 3)),
                draw(st.integers(0, 60)),
                draw(st.integers(-600, 600)),
            )
        )
    if draw(st.booleans()):
        last = writes[-1]
        writes.append(Write(count + 1, "cancel", last.pickup, last.dropoff, 0, 0, 0))
    return writes


def _point(place: int) -> dict[str, float]:
    latitude, longitude = PLACES[place]
    return {"latitude": latitude, "longitude": longitude, "altitude": 0.0}


async def _apply(store: DocumentStore, delivery_id: str, write: Write, t0: datetime) -> None:
    """The write, as the delivery service's routes apply it; a refusal (409) is an answer."""
    common: dict[str, Any] = {
        "pickup": _point(write.pickup),
        "dropoff": _point(write.dropoff),
        "requestedAt": (t0 + timedelta(seconds=write.skew)).isoformat(),
        "version": write.version,
    }
    try:
        if write.kind == "schedule":
            departure = t0 + timedelta(hours=1, minutes=write.minutes)
            await deliveries.schedule(
                store=store,
                data=DeliverySchedule.model_validate(
                    {
                        **common,
                        "id": delivery_id,
                        "owner": {"userId": "owner", "accountId": "owner"},
                        "droneId": f"drone-{write.drone:03d}",
                        "packageId": "p1",
                        "departure": {"time": departure.isoformat(), "location": _point(0)},
                        "pickupETA": (departure + timedelta(minutes=5)).isoformat(),
                        "deliveryETA": (departure + timedelta(minutes=9)).isoformat(),
                        "rescheduled": write.version > 1,
                    }
                ),
            )
        elif write.kind == "fail":
            await deliveries.fail(
                store=store,
                delivery_id=delivery_id,
                data=DeliveryFailure.model_validate(
                    {**common, "ownerId": "owner", "reason": f"version {write.version} failed"}
                ),
            )
        else:
            await deliveries.record_cancellation(
                store=store,
                delivery_id=delivery_id,
                data=DeliveryCancellation.model_validate({**common, "ownerId": "owner"}),
            )
    except (deliveries.DeliveryCancelled, deliveries.DeliveryFailed):
        pass


async def _final_documents(
    writes: list[Write], order: list[Write]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The document after `order`, and after `writes` once each in version order."""
    folder = tempfile.mkdtemp(prefix="delivery-properties-", dir=_MEMORY)
    store = await connect_document_store(
        f"sqlite:///{Path(folder) / 'delivery.db'}", deliveries.DELIVERIES
    )
    try:
        t0 = datetime.now(UTC).replace(microsecond=0)
        for write in order:
            await _apply(store, "shuffled", write, t0)
        for write in sorted(writes, key=lambda w: w.version):
            await _apply(store, "in-order", write, t0)
        shuffled, in_order = await store.get("shuffled"), await store.get("in-order")
        assert shuffled is not None and in_order is not None
        return shuffled.body, in_order.body
    finally:
        await store.close()
        shutil.rmtree(folder, ignore_errors=True)


def _without_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in IGNORED and k != "id"}


def _highest_versions_values(body: dict[str, Any], writes: list[Write]) -> None:
    """The document says what the highest version says: cancelled; failed, with its reason
    and places; or scheduled as it asked, on its drone."""
    last = max(writes, key=lambda w: w.version)
    assert body["version"] == last.version, body
    if last.kind == "cancel":
        assert body.get("cancelled") is True, body
        return
    assert not body.get("cancelled"), body
    assert (body["pickup"], body["dropoff"]) == (_point(last.pickup), _point(last.dropoff)), body
    if last.kind == "fail":
        assert body.get("failureReason") == f"version {last.version} failed", body
        return
    assert "failureReason" not in body, body
    assert body["droneId"] == f"drone-{last.drone:03d}", body


@st.composite
def shuffled_writes(draw: st.DrawFn) -> tuple[list[Write], list[Write]]:
    """A delivery's writes, and the same in any order, some more than once (redelivered)."""
    writes = draw(delivery_writes())
    repeats = draw(st.lists(st.sampled_from(writes), max_size=4))
    order = draw(st.permutations([*writes, *repeats]))
    note(f"writes in version order: {writes}")
    note(f"applied in the order: {[f'{w.kind} v{w.version}' for w in order]}")
    return writes, order


delivery_settings = settings(max_examples=100, deadline=None, database=None)


@delivery_settings
@given(case=shuffled_writes())
def test_a_deliverys_writes_in_any_order_end_at_the_highest_versions_values(
    case: tuple[list[Write], list[Write]],
) -> None:
    writes, order = case
    shuffled, in_order = asyncio.run(_final_documents(writes, order))
    _highest_versions_values(in_order, writes)
    _highest_versions_values(shuffled, writes)


@delivery_settings
@given(case=shuffled_writes())
def test_a_deliverys_writes_in_any_order_end_as_in_version_order(
    case: tuple[list[Write], list[Write]],
) -> None:
    shuffled, in_order = asyncio.run(_final_documents(*case))
    if in_order.get("cancelled"):
        # A cancel processed before a schedule leaves that schedule unapplied: the delivery
        # never had that drone (the scheduler kept the cancel and booked nothing), which is
        # what happened; the timetable is the only part that may differ.
        shuffled, in_order = _without_timetable(shuffled), _without_timetable(in_order)
    assert _without_id(shuffled) == _without_id(in_order)


def _without_timetable(body: dict[str, Any]) -> dict[str, Any]:
    timetable = {"droneId", *deliveries.TIMETABLE}
    return {k: v for k, v in body.items() if k not in timetable}
