from __future__ import annotations

from pydantic import BaseModel, Field, computed_field

from contracts.vocabulary import (
    ClientDateTime,
    ConfirmationType,
    IsoDateTime,
    ResourceId,
    Version,
    deadline_time,
)


class Location(BaseModel):
    altitude: float = Field(0.0, ge=-500, le=10_000)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class UserAccount(BaseModel):
    userId: str = Field(min_length=1, max_length=128)
    accountId: str = Field(min_length=1, max_length=128)


class Departure(BaseModel):
    time: IsoDateTime
    location: Location


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


class DeliveryReschedule(BaseModel):
    pickup: Location | None = None
    dropoff: Location | None = None
    deadline: str | None = None
    droneId: str | None = Field(None, min_length=1, max_length=128)
    departure: Departure | None = None
    pickupETA: IsoDateTime | None = None
    deliveryETA: IsoDateTime | None = None
    requestedAt: IsoDateTime | None = None


class Delivery(BaseModel):
    """The public view, as the original's clients read it."""

    id: str
    owner: UserAccount
    pickup: Location
    dropoff: Location
    deadline: str
    expedited: bool
    confirmationRequired: ConfirmationType
    droneId: str
    # Not in the original: set when the delivery can never be scheduled.
    failureReason: str | None = None

    # Not in the original, which kept the deadline as text only: the same deadline as a
    # time, when the text is an ISO-8601 date-time; null for free text.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def deadlineTime(self) -> ClientDateTime | None:
        return deadline_time(self.deadline)


class DeliveryStatus(BaseModel):
    stage: str
    lastKnownLocation: Location
    pickupETA: IsoDateTime
    deliveryETA: IsoDateTime


class NotifyMeRequest(BaseModel):
    # An explicit class, not \s: "whitespace" differs between the JSON Schema (ECMA-262),
    # Python and Rust regex engines, and the published schema must mean what the server checks.
    emailAddress: str = Field(
        min_length=3, max_length=254, pattern=r"^[^@\x00-\x20\x7f-\xa0]+@[^@\x00-\x20\x7f-\xa0]+$"
    )
    sms: str = Field("", max_length=32)


class Confirmation(BaseModel):
    dateTime: IsoDateTime
    geoCoordinates: Location
    confirmationType: ConfirmationType
    confirmationBlob: str = Field("", max_length=1_000_000)


class DeliverySummary(BaseModel):
    count: int
