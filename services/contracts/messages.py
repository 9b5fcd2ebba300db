"""What ingestion puts on the queue and workflow takes off it.

The `operation` application property says which message it is, as in the original:
`delivery`, `reschedule`, `cancel`. `requestedAt` orders a delivery's requests, so that a
late redelivery of an older request never undoes a newer one.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from contracts.vocabulary import (
    ConfirmationType,
    Deadline,
    IsoDateTime,
    PackageSize,
    ResourceId,
    Weight,
)

Location = str  # free text or "latitude,longitude[,altitude]", as clients sent it


class Operation(enum.StrEnum):
    DELIVERY = "delivery"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PackageInfo(_Message):
    packageId: ResourceId
    size: PackageSize
    weight: Weight
    tag: str = Field("", max_length=256)


class DeliveryRequested(_Message):
    deliveryId: ResourceId
    ownerId: str = Field(min_length=1, max_length=128)
    pickupLocation: Location = Field(min_length=1, max_length=256)
    dropOffLocation: Location = Field(min_length=1, max_length=256)
    pickupTime: IsoDateTime
    deadline: Deadline = ""
    expedited: StrictBool = False
    confirmationRequired: ConfirmationType = ConfirmationType.NONE
    packageInfo: PackageInfo
    requestedAt: IsoDateTime


class RescheduleRequested(_Message):
    deliveryId: ResourceId
    pickupLocation: Location | None = Field(None, min_length=1, max_length=256)
    dropOffLocation: Location | None = Field(None, min_length=1, max_length=256)
    pickupTime: IsoDateTime | None = None
    deadline: Deadline | None = None
    requestedAt: IsoDateTime


class CancelRequested(_Message):
    deliveryId: ResourceId
    requestedAt: IsoDateTime


MESSAGE_TYPES: dict[Operation, type[_Message]] = {
    Operation.DELIVERY: DeliveryRequested,
    Operation.RESCHEDULE: RescheduleRequested,
    Operation.CANCEL: CancelRequested,
}
