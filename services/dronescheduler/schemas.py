from __future__ import annotations

from pydantic import BaseModel

from contracts.calls import Departure, DroneDeliveryRequest, Location, PackageDetail
from contracts.vocabulary import IsoDateTime

__all__ = [
    "Departure",
    "DroneAssignment",
    "DroneDeliveryRequest",
    "DroneView",
    "Location",
    "PackageDetail",
    "Utilization",
]


class DroneAssignment(BaseModel):
    deliveryId: str
    droneId: str
    status: str
    ownerId: str | None
    departure: Departure
    pickupETA: IsoDateTime
    deliveryETA: IsoDateTime
    traveledMiles: float
    assignedHours: float
    request: DroneDeliveryRequest
    version: int | None = None


class Utilization(BaseModel):
    traveledMiles: float
    assignedHours: float


class DroneView(BaseModel):
    id: str
    home: Location
    lastLocation: Location
    schedule: list[dict[str, object]]
