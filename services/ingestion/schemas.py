"""The public API's bodies, accepted exactly as the original's clients send them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from contracts.vocabulary import (
    ConfirmationType,
    Deadline,
    IsoDateTime,
    PackageSize,
    ResourceId,
    Weight,
)


class PackageInfo(BaseModel):
    packageId: ResourceId
    size: PackageSize
    weight: Weight
    tag: str = Field("", max_length=256)


class DeliveryRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "confirmationRequired": "None",
                "deadline": "",
                "dropOffLocation": "drop off",
                "expedited": True,
                "ownerId": "myowner",
                "packageInfo": {
                    "packageId": "mypackage",
                    "size": "Small",
                    "tag": "mytag",
                    "weight": 10,
                },
                "pickupLocation": "my pickup",
                "pickupTime": "2019-05-08T20:00:00.000Z",
            }
        }
    )

    ownerId: str = Field(min_length=1, max_length=128)
    pickupLocation: str = Field(min_length=1, max_length=256)
    dropOffLocation: str = Field(min_length=1, max_length=256)
    pickupTime: IsoDateTime
    deadline: Deadline = Field("", description="empty, or an ISO-8601 date-time")
    expedited: StrictBool = False
    confirmationRequired: ConfirmationType = ConfirmationType.NONE
    packageInfo: PackageInfo


class AcceptedDeliveryRequest(DeliveryRequest):
    deliveryId: str


class RescheduleRequest(BaseModel):
    # Only the four fields the original took, and at least one of them.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    pickupLocation: str | None = Field(None, min_length=1, max_length=256)
    dropOffLocation: str | None = Field(None, min_length=1, max_length=256)
    pickupTime: IsoDateTime | None = None
    deadline: Deadline | None = None


class AcceptedReschedule(RescheduleRequest):
    deliveryId: str
