"""The fleet as the operations console shows it (docs/console.md): read-only, admins only.

Each drone's position now, and the route it is flying (departure, pickup, drop-off, each
with its time), so that the page moves it between two reads without asking again; and its
booked windows ahead, for the timeline. Worked out when asked: nothing runs while nobody
watches.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from chassis.auth import OperatorDep, PermissionNames, auth_lifespan
from chassis.documents.mirror import DocumentMirror
from contracts.access import ACCESS
from dronescheduler.dependencies import AssignmentsDep, DronesDep
from dronescheduler.models import Drone, Location, Window

router = APIRouter(
    prefix="/api/console", tags=["console"], lifespan=auth_lifespan(PermissionNames(**ACCESS))
)

# Windows shown per drone: the timeline's width in practice, and a bound on the answer.
MAX_WINDOWS = 60
# Each drone parsed once per version (a schedule of many windows is most of the work).
_fleet: DocumentMirror[Drone] = DocumentMirror(lambda id, body: Drone.from_json(body))


class ConsolePoint(BaseModel):
    latitude: float
    longitude: float


class Waypoint(ConsolePoint):
    at: datetime


class BookedWindow(BaseModel):
    deliveryId: str
    departure: datetime
    pickupETA: datetime
    deliveryETA: datetime


class DroneOnMap(BaseModel):
    id: str
    home: ConsolePoint
    position: ConsolePoint
    flying: str | None  # the delivery it is flying now
    route: list[Waypoint]  # empty while idle
    windows: list[BookedWindow]  # from the one in flight on, within the horizon
    booked: int  # every window still ahead, shown or not


class FleetView(BaseModel):
    now: datetime
    horizonHours: float
    drones: list[DroneOnMap]


def _point(location: Location) -> dict[str, float]:
    return {"latitude": location.latitude, "longitude": location.longitude}


def _between(a: Location, b: Location, start: datetime, end: datetime, now: datetime) -> Location:
    span = (end - start).total_seconds()
    f = 1.0 if span <= 0 else min(max((now - start).total_seconds() / span, 0.0), 1.0)
    return Location(
        a.latitude + (b.latitude - a.latitude) * f, a.longitude + (b.longitude - a.longitude) * f
    )


def in_flight(drone: Drone, now: datetime) -> Window | None:
    return next((w for w in drone.schedule if w.departure <= now < w.delivery_eta), None)


def drone_on_map(
    drone: Drone, pickup: Location | None, now: datetime, horizon: timedelta
) -> dict[str, Any]:
    """Where the drone is at `now`, as the delivery service tells a delivery's position:
    straight from its departure point to the pickup, then to the drop-off."""
    current = in_flight(drone, now)
    ahead = [w for w in drone.schedule if w.delivery_eta > now]
    route: list[dict[str, Any]] = []
    if current is not None and pickup is not None:
        route = [
            {**_point(current.departure_location), "at": current.departure},
            {**_point(pickup), "at": current.pickup_eta},
            {**_point(current.dropoff), "at": current.delivery_eta},
        ]
        if now < current.pickup_eta:
            where = _between(
                current.departure_location, pickup, current.departure, current.pickup_eta, now
            )
        else:
            where = _between(pickup, current.dropoff, current.pickup_eta, current.delivery_eta, now)
    else:
        done = [w for w in drone.schedule if w.delivery_eta <= now]
        where = done[-1].dropoff if done else drone.last_location
    return {
        "id": drone.id,
        "home": _point(drone.home),
        "position": _point(where),
        "flying": current.delivery_id if current is not None else None,
        "route": route,
        "windows": [
            {
                "deliveryId": w.delivery_id,
                "departure": w.departure,
                "pickupETA": w.pickup_eta,
                "deliveryETA": w.delivery_eta,
            }
            for w in ahead
            if w.departure < now + horizon
        ][:MAX_WINDOWS],
        "booked": len(ahead),
    }


@router.get("/fleet", response_model=FleetView)
async def fleet(
    drones: DronesDep,
    assignments: AssignmentsDep,
    caller: OperatorDep,
    hours: Annotated[float, Query(gt=0, le=48, description="timeline horizon")] = 6.0,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    fleet = sorted((await _fleet.read(drones)).values(), key=lambda d: d.id)
    horizon = timedelta(hours=hours)
    shown = []
    for drone in fleet:
        pickup = None
        current = in_flight(drone, now)
        if current is not None:  # a window keeps no pickup; its assignment does
            doc = await assignments.get(current.delivery_id)
            asked = (doc.body.get("request") or {}).get("pickup") if doc is not None else None
            pickup = Location.from_json(asked) if asked else None
        shown.append(drone_on_map(drone, pickup, now, horizon))
    return {"now": now, "horizonHours": hours, "drones": shown}
