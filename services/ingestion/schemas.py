"""The public API's bodies, accepted exactly as the original's clients send them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.vocabulary import ConfirmationType, IsoDateTime, PackageSize, ResourceId, Weight


def _empty_or_datetime(value: str | None) -> str | None:
    if value:
        datetime.fromisoformat(value.replace("Z", "+00:00"))  # raises ValueError -> 400
    return value


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
    deadline: str = Field("", max_length=64, description="empty, or an ISO-8601 date-time")
    expedited: bool = False
    confirmationRequired: ConfirmationType = ConfirmationType.NONE
    packageInfo: PackageInfo

    _deadline = field_validator("deadline")(_empty_or_datetime)


class AcceptedDeliveryRequest(DeliveryRequest):
    deliveryId: str


class RescheduleRequest(BaseModel):
    pickupLocation: str | None = Field(None, min_length=1, max_length=256)
    dropOffLocation: str | None = Field(None, min_length=1, max_length=256)
    pickupTime: IsoDateTime | None = None
    deadline: str | None = Field(None, max_length=64)

    _deadline = field_validator("deadline")(_empty_or_datetime)


class AcceptedReschedule(RescheduleRequest):
    deliveryId: str
