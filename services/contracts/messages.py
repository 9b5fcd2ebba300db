"""What ingestion puts on the queue and workflow takes off it.

The `operation` application property says which message it is, as in the original:
`delivery`, `reschedule`, `cancel`. Every message carries the whole delivery request as it
stands after that operation, and its `version`: ingestion numbers a delivery's accepted
operations 1, 2, 3... in its own store (one writer per delivery, through the document's
ETag), so no clock decides their order. Each service keeps the version it last applied and
ignores an older one: messages may arrive in any order, twice, or after a newer one, and
every service still ends at the latest acknowledged state. Because a message is the whole
request, a reschedule or cancel never needs an earlier message to have been processed.
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
    Version,
    Weight,
)

# The queue ingestion sends to and workflow receives from, when the queue URL names none.
QUEUE = "deliveryrequests"

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
    requestedAt: IsoDateTime  # when ingestion accepted this operation (for people, not order)
    version: Version = 1


class RescheduleRequested(DeliveryRequested):
    """The delivery request with the reschedule's changes merged in."""


class CancelRequested(DeliveryRequested):
    """The delivery request as it stood when it was cancelled."""


MESSAGE_TYPES: dict[Operation, type[DeliveryRequested]] = {
    Operation.DELIVERY: DeliveryRequested,
    Operation.RESCHEDULE: RescheduleRequested,
    Operation.CANCEL: CancelRequested,
}
