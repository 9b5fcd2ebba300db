from __future__ import annotations

from pydantic import BaseModel, Field

from contracts.vocabulary import IsoDateTime, PackageSize, ResourceId, Version


class Location(BaseModel):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    altitude: float = Field(0.0, ge=-500, le=10_000)


class PackageDetail(BaseModel):
    id: ResourceId
    size: PackageSize


class DroneDeliveryRequest(BaseModel):
    """The original's body, plus optional fields this scheduler uses when given."""

    deliveryId: ResourceId
    pickup: Location
    dropoff: Location
    packageDetail: PackageDetail
    expedited: bool = False
    ownerId: str | None = Field(None, max_length=128)
    pickupTime: IsoDateTime | None = None
    requestedAt: IsoDateTime | None = None
    # The request's version (see contracts/messages.py): only a newer one is re-planned.
    version: Version | None = None


class Departure(BaseModel):
    time: IsoDateTime
    location: Location


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
