"""The public API's bodies, accepted exactly as the original's clients send them.

The original read these bodies into Java objects with Jackson, so its clients (Java ones
serialise the same model) send an unset field as `null`, a date as epoch milliseconds, and
the `deliveryId` field of the model too. Each field takes what the original's took; what the
original could do nothing with is refused with a 400 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from contracts.vocabulary import (
    STORABLE_TEXT,
    ClientDateTime,
    ConfirmationType,
    Deadline,
    PackageSize,
    ResourceId,
    Weight,
)


class NullMeans:
    """`null` is read as `default`, as the original's model read it (a primitive's zero, or
    no value), and the published schema says so."""

    def __init__(self, default: object) -> None:
        self.default = default

    def _replace(self, value: object) -> object:
        return self.default if value is None else value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self._replace, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"anyOf": [handler(schema), {"type": "null"}]}


Tag = Annotated[str, Field(max_length=256, pattern=STORABLE_TEXT), NullMeans("")]
# `deliveryId` is a field of the original's request models, so Java clients send it (null on
# a new request, the id on a reschedule). The original never read it; neither does this.
IGNORED_DELIVERY_ID: Any = Field(
    None, exclude=True, description="ignored (the id is the server's, or the path's)"
)


class PackageInfo(BaseModel):
    packageId: ResourceId
    size: PackageSize
    weight: Annotated[Weight, NullMeans(0.0)] = Field(0.0, description="pounds; 0 when not given")
    tag: Tag = ""


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

    deliveryId: Any = IGNORED_DELIVERY_ID
    ownerId: str = Field(min_length=1, max_length=128, pattern=STORABLE_TEXT)
    pickupLocation: str = Field(min_length=1, max_length=256, pattern=STORABLE_TEXT)
    dropOffLocation: str = Field(min_length=1, max_length=256, pattern=STORABLE_TEXT)
    pickupTime: ClientDateTime
    deadline: Annotated[Deadline, NullMeans("")] = Field(
        "", description="any text, kept as sent; an ISO-8601 date-time is also read as a time"
    )
    expedited: Annotated[StrictBool, NullMeans(False)] = False
    confirmationRequired: ConfirmationType = ConfirmationType.NONE
    packageInfo: PackageInfo


class AcceptedDeliveryRequest(DeliveryRequest):
    deliveryId: str


RESCHEDULABLE = ("pickupLocation", "dropOffLocation", "pickupTime", "deadline")


class RescheduleRequest(BaseModel):
    # The four fields the original took (and its model's deliveryId), at least one of the four.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"anyOf": [{"required": [name]} for name in RESCHEDULABLE]},
    )

    deliveryId: Any = IGNORED_DELIVERY_ID
    pickupLocation: str | None = Field(None, min_length=1, max_length=256, pattern=STORABLE_TEXT)
    dropOffLocation: str | None = Field(None, min_length=1, max_length=256, pattern=STORABLE_TEXT)
    pickupTime: ClientDateTime | None = None
    deadline: Deadline | None = None

    def changes(self) -> set[str]:
        """The fields given, null or not: what the reschedule is about."""
        return self.model_fields_set & set(RESCHEDULABLE)


class AcceptedReschedule(RescheduleRequest):
    deliveryId: str
