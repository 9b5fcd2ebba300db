from __future__ import annotations

from pydantic import BaseModel, Field, computed_field

from contracts.calls import (
    DeliveryCancellation,
    DeliveryFailure,
    DeliverySchedule,
    Departure,
    Location,
    UserAccount,
)
from contracts.vocabulary import ClientDateTime, ConfirmationType, IsoDateTime, deadline_time

__all__ = [
    "Confirmation",
    "Delivery",
    "DeliveryCancellation",
    "DeliveryFailure",
    "DeliveryReschedule",
    "DeliverySchedule",
    "DeliveryStatus",
    "DeliverySummary",
    "Departure",
    "Location",
    "NotifyMeRequest",
    "UserAccount",
]


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
