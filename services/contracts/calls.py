"""What workflow sends package, drone scheduler and delivery on their internal routes, and
what their batch routes answer: one model for both ends of each call.

The receiver validates (its 4xx names the field, and workflow records that as the reason a
delivery failed); the sender builds with `model_construct` and does not, so a bad value
still reaches the service that judges it, as it did when the bodies were plain dicts.

A batch route (chassis/batches.py) takes a list of these bodies and answers each as its
single call would have.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contracts.vocabulary import (
    ConfirmationType,
    IsoDateTime,
    PackageSize,
    ResourceId,
    Version,
    Weight,
)


class Location(BaseModel):
    altitude: float = Field(0.0, ge=-500, le=10_000)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


# -- package: PUT /api/packages/{packageId}, POST /api/packages/batch


class PackageUpsert(BaseModel):
    size: PackageSize
    weight: Weight
    tag: str = Field("", max_length=256)
    ownerId: str | None = Field(None, min_length=1, max_length=128)
    # When ingestion accepted the request that sent it: an older write changes nothing.
    requestedAt: IsoDateTime | None = None


class PackageWrite(PackageUpsert):
    """A batch item: the upsert, and the package it is for (the single call's path)."""

    packageId: ResourceId


# -- drone scheduler: PUT /api/dronedeliveries/{deliveryId}, POST /api/dronedeliveries/batch


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


# -- delivery: PUT /api/deliveries/{id}[/failure|/cancellation], POST /api/deliveries/batch


class UserAccount(BaseModel):
    userId: str = Field(min_length=1, max_length=128)
    accountId: str = Field(min_length=1, max_length=128)


class Departure(BaseModel):
    time: IsoDateTime
    location: Location


class DronePlan(BaseModel):
    """What workflow reads of the drone scheduler's answer (its DroneAssignment)."""

    model_config = ConfigDict(extra="ignore")

    droneId: str
    departure: Departure
    pickupETA: IsoDateTime
    deliveryETA: IsoDateTime
    version: int | None = None


class DeliverySchedule(BaseModel):
    """What workflow writes: the delivery with its drone and timetable."""

    id: ResourceId
    owner: UserAccount
    pickup: Location
    dropoff: Location
    deadline: str = ""
    expedited: bool = False
    confirmationRequired: ConfirmationType = ConfirmationType.NONE
    droneId: str = Field(min_length=1, max_length=128)
    packageId: str | None = None
    departure: Departure
    pickupETA: IsoDateTime
    deliveryETA: IsoDateTime
    requestedAt: IsoDateTime | None = None
    # The request's version (see contracts/messages.py): an older one never undoes a newer.
    version: Version | None = None
    rescheduled: bool = False


class DeliveryCancellation(BaseModel):
    """What workflow writes when a delivery is cancelled: enough of the request to answer for
    the delivery if it was cancelled before it was ever scheduled."""

    ownerId: str = Field(min_length=1, max_length=128)
    pickup: Location
    dropoff: Location
    deadline: str = ""
    expedited: bool = False
    confirmationRequired: ConfirmationType = ConfirmationType.NONE
    requestedAt: IsoDateTime | None = None
    version: Version | None = None


class DeliveryFailure(DeliveryCancellation):
    """What workflow writes when a delivery can never be scheduled: why, and as much of the
    request as for a cancellation."""

    reason: str = Field(min_length=1, max_length=1000)
