"""Where a delivery stands, computed from its schedule and the clock (no I/O).

Stages: Created (or Rescheduled) until the drone departs, HeadedToPickup until the pickup,
HeadedToDropoff until the drop-off, then Completed; Cancelled at any point; Failed when it
can never be scheduled (workflow records why).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class Stage(enum.StrEnum):
    CREATED = "Created"
    RESCHEDULED = "Rescheduled"
    HEADED_TO_PICKUP = "HeadedToPickup"
    HEADED_TO_DROPOFF = "HeadedToDropoff"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"
    FAILED = "Failed"


Point = dict[str, float]


def _between(a: Point, b: Point, fraction: float) -> Point:
    f = min(max(fraction, 0.0), 1.0)
    return {k: round(a[k] + (b[k] - a[k]) * f, 6) for k in ("altitude", "latitude", "longitude")}


def _fraction(start: datetime, end: datetime, now: datetime) -> float:
    span = (end - start).total_seconds()
    return 1.0 if span <= 0 else (now - start).total_seconds() / span


@dataclass(frozen=True)
class Status:
    stage: Stage
    last_known_location: Point
    pickup_eta: datetime
    delivery_eta: datetime


def status_of(delivery: dict[str, Any], now: datetime) -> Status:
    if delivery.get("failureReason") or "departure" not in delivery:
        return _unscheduled(delivery)
    departure = datetime.fromisoformat(delivery["departure"]["time"])
    pickup_eta = datetime.fromisoformat(delivery["pickupETA"])
    delivery_eta = datetime.fromisoformat(delivery["deliveryETA"])
    start: Point = delivery["departure"]["location"]
    pickup: Point = delivery["pickup"]
    dropoff: Point = delivery["dropoff"]

    def status(stage: Stage, where: Point) -> Status:
        return Status(stage, where, pickup_eta, delivery_eta)

    if delivery.get("cancelled"):
        return status(Stage.CANCELLED, _where_at(delivery, min(now, _cancel_time(delivery, now))))
    if delivery.get("confirmation") or now >= delivery_eta:
        return status(Stage.COMPLETED, dropoff)
    if now >= pickup_eta:
        return status(
            Stage.HEADED_TO_DROPOFF,
            _between(pickup, dropoff, _fraction(pickup_eta, delivery_eta, now)),
        )
    if now >= departure:
        return status(
            Stage.HEADED_TO_PICKUP, _between(start, pickup, _fraction(departure, pickup_eta, now))
        )
    return status(Stage.RESCHEDULED if delivery.get("rescheduled") else Stage.CREATED, start)


def _unscheduled(delivery: dict[str, Any]) -> Status:
    # Failed, or cancelled before it was scheduled: no drone will carry it, and the package
    # stays at the pickup. Without a schedule there are no ETAs, and the answer keeps its
    # non-null shape with the time it ended.
    ended_at = datetime.fromisoformat(delivery.get("failedAt") or delivery["cancelledAt"])
    pickup_eta, delivery_eta = (
        datetime.fromisoformat(delivery[k]) if delivery.get(k) else ended_at
        for k in ("pickupETA", "deliveryETA")
    )
    # A customer's cancel after the failure is the last word, as it is on any delivery.
    stage = Stage.CANCELLED if delivery.get("cancelled") else Stage.FAILED
    return Status(stage, delivery["pickup"], pickup_eta, delivery_eta)


def _cancel_time(delivery: dict[str, Any], now: datetime) -> datetime:
    at = delivery.get("cancelledAt")
    return datetime.fromisoformat(at) if at else now


def _where_at(delivery: dict[str, Any], when: datetime) -> Point:
    """Where the drone was at `when` on its planned route (for a cancelled delivery)."""
    live = {k: v for k, v in delivery.items() if k != "cancelled"}
    return status_of(live, when).last_known_location
