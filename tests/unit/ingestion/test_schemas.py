"""The public request bodies (ingestion's schemas), read as the original's clients write them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.messages import (
    DeliveryRequested,
)
from contracts.vocabulary import ConfirmationType, PackageSize
from ingestion.schemas import DeliveryRequest, RescheduleRequest
from tests.guide import GUIDE_BODY, REQUESTED_AT, guide_body, rejected_fields, with_package

# --- the public body -------------------------------------------------------------------


def test_the_guide_s_body_is_accepted_as_it_is() -> None:
    request = DeliveryRequest.model_validate(GUIDE_BODY)
    assert request.ownerId == "myowner"
    assert request.pickupTime == datetime(2019, 5, 8, 20, 0, tzinfo=UTC)
    assert request.deadline == ""
    assert request.expedited is True
    assert request.confirmationRequired is ConfirmationType.NONE
    assert request.packageInfo.size is PackageSize.SMALL
    assert request.packageInfo.weight == 10.0
    assert request.packageInfo.tag == "mytag"


def test_the_guide_s_body_is_the_documented_example() -> None:
    example = DeliveryRequest.model_json_schema()["example"]
    assert example == GUIDE_BODY


def test_optional_fields_have_the_original_defaults() -> None:
    body = guide_body()
    for optional in ("deadline", "expedited", "confirmationRequired"):
        del body[optional]
    del body["packageInfo"]["tag"]
    request = DeliveryRequest.model_validate(body)
    assert (request.deadline, request.expedited, request.confirmationRequired) == (
        "",
        False,
        ConfirmationType.NONE,
    )
    assert request.packageInfo.tag == ""


def test_a_deadline_may_be_a_date_time() -> None:
    request = DeliveryRequest.model_validate(guide_body(deadline="2019-05-09T20:00:00Z"))
    assert request.deadline == "2019-05-09T20:00:00Z"  # kept as the client wrote it


def test_a_deadline_may_be_any_text_as_in_the_original() -> None:
    # The original's own integration test (IngestionIT) sends this one.
    request = DeliveryRequest.model_validate(guide_body(deadline="LineOfDeadlyZombiatedPeople"))
    assert request.deadline == "LineOfDeadlyZombiatedPeople"


def test_a_time_without_an_offset_is_read_as_utc() -> None:
    # The drone scheduler compares times with an aware "now": a naive one must never get in.
    request = DeliveryRequest.model_validate(
        guide_body(pickupTime="2019-05-08T20:00:00", deadline="2019-05-09T20:00:00")
    )
    assert request.pickupTime == datetime(2019, 5, 8, 20, 0, tzinfo=UTC)
    assert request.deadline == "2019-05-09T20:00:00"  # text, kept as the client wrote it


def test_a_time_keeps_its_offset() -> None:
    request = DeliveryRequest.model_validate(guide_body(pickupTime="2019-05-08T13:00:00-07:00"))
    assert request.pickupTime == datetime(2019, 5, 8, 20, 0, tzinfo=UTC)
    assert request.pickupTime.utcoffset() == timedelta(hours=-7)


# What the original's IngestionIT posts: its model written by Jackson's ObjectMapper, nulls
# and all, the Date as epoch milliseconds.
JACKSON_BODY: dict[str, Any] = {
    "deliveryId": None,
    "ownerId": "c6b5e5a2-1f5e-4b7e-9d4a-3a7f0c2e9b11",
    "pickupLocation": "Texas",
    "dropOffLocation": "Austin",
    "pickupTime": 1557345600000,
    "deadline": "LineOfDeadlyZombiatedPeople",
    "expedited": False,
    "confirmationRequired": "FingerPrint",
    "packageInfo": {"packageId": "p-1", "size": "Large", "weight": 0.0, "tag": None},
}


def test_a_body_jackson_wrote_from_the_original_s_model_is_accepted() -> None:
    request = DeliveryRequest.model_validate(JACKSON_BODY)
    assert request.pickupTime == datetime(2019, 5, 8, 20, 0, tzinfo=UTC)
    assert request.deadline == "LineOfDeadlyZombiatedPeople"
    assert request.packageInfo.weight == 0.0
    assert request.packageInfo.tag == ""
    # Ignored, as the original ignored it: the id is the server's.
    assert "deliveryId" not in request.model_dump()


@pytest.mark.parametrize("field", ["deadline", "expedited"])
def test_a_null_optional_field_means_its_default(field: str) -> None:
    request = DeliveryRequest.model_validate({**JACKSON_BODY, field: None})
    assert (request.deadline, request.expedited) == (
        "" if field == "deadline" else JACKSON_BODY["deadline"],
        False,
    )


@pytest.mark.parametrize("weight", [None, "absent"])
def test_a_weight_not_given_is_zero_as_a_java_double_is(weight: Any) -> None:
    body = copy.deepcopy(JACKSON_BODY)
    if weight == "absent":
        del body["packageInfo"]["weight"]
    else:
        body["packageInfo"]["weight"] = weight
    assert DeliveryRequest.model_validate(body).packageInfo.weight == 0.0


@pytest.mark.parametrize("delivery_id", [None, "any", 42, {"x": 1}])
def test_any_delivery_id_in_a_new_request_is_ignored(delivery_id: Any) -> None:
    request = DeliveryRequest.model_validate({**JACKSON_BODY, "deliveryId": delivery_id})
    assert request.model_dump() == DeliveryRequest.model_validate(JACKSON_BODY).model_dump()


def test_a_jackson_body_makes_a_valid_message() -> None:
    request = DeliveryRequest.model_validate(JACKSON_BODY)
    message = DeliveryRequested(deliveryId="d-1", requestedAt=REQUESTED_AT, **request.model_dump())
    back = DeliveryRequested.model_validate_json(message.model_dump_json())
    assert back.pickupTime == datetime(2019, 5, 8, 20, 0, tzinfo=UTC)
    assert back.deadline == "LineOfDeadlyZombiatedPeople"
    assert (back.packageInfo.weight, back.packageInfo.tag) == (0.0, "")


NO_OWNER = {k: v for k, v in GUIDE_BODY.items() if k != "ownerId"}


# fmt: off
BAD_FIELDS = [
    pytest.param(NO_OWNER, ("ownerId",), id="missing ownerId"),
    pytest.param(guide_body(ownerId=""), ("ownerId",), id="empty ownerId"),
    pytest.param(guide_body(pickupLocation=""), ("pickupLocation",), id="empty pickupLocation"),
    pytest.param(with_package(size="Huge"), ("packageInfo", "size"), id="size Huge"),
    pytest.param(with_package(weight=-1), ("packageInfo", "weight"), id="weight -1"),
    pytest.param(with_package(weight=1001), ("packageInfo", "weight"), id="weight over 1000"),
    pytest.param(guide_body(pickupTime="yesterday"), ("pickupTime",), id="pickupTime yesterday"),
    pytest.param(guide_body(pickupTime=1557345600000.5), ("pickupTime",), id="pickupTime a fraction of a millisecond"),
    pytest.param(guide_body(pickupTime=""), ("pickupTime",), id="pickupTime empty"),
    pytest.param(guide_body(pickupTime=None), ("pickupTime",), id="pickupTime null"),
    pytest.param(guide_body(pickupTime=253402300800000), ("pickupTime",), id="pickupTime after 9999"),
    pytest.param(guide_body(deadline="x" * 257), ("deadline",), id="deadline too long"),
    pytest.param(with_package(tag="x" * 257), ("packageInfo", "tag"), id="tag too long"),
    pytest.param(guide_body(confirmationRequired=None), ("confirmationRequired",), id="confirmation null"),
    pytest.param(guide_body(pickupLocation=None), ("pickupLocation",), id="pickupLocation null"),
    pytest.param(with_package(packageId="my/package"), ("packageInfo", "packageId"), id="packageId with a slash"),
    pytest.param(with_package(packageId="x" * 129), ("packageInfo", "packageId"), id="packageId too long"),
    pytest.param(guide_body(confirmationRequired="Signature"), ("confirmationRequired",), id="unknown confirmation"),
    pytest.param(guide_body(expedited="yes"), ("expedited",), id="expedited yes"),
    pytest.param(guide_body(expedited=1), ("expedited",), id="expedited 1"),
]
# fmt: on


@pytest.mark.parametrize(("body", "field"), BAD_FIELDS)
def test_a_bad_field_is_rejected_by_name(body: dict[str, Any], field: tuple[str, ...]) -> None:
    assert rejected_fields(DeliveryRequest, body) == {field}


def test_every_bad_field_is_named_at_once() -> None:
    body = with_package(size="Huge", weight=-1)
    body.update(pickupTime="yesterday", deadline="x" * 257)
    del body["ownerId"]
    assert rejected_fields(DeliveryRequest, body) == {
        ("ownerId",),
        ("pickupTime",),
        ("deadline",),
        ("packageInfo", "size"),
        ("packageInfo", "weight"),
    }


@pytest.mark.parametrize("package_id", [".", ".."])
def test_a_package_id_that_is_a_dot_segment_is_rejected(package_id: str) -> None:
    assert rejected_fields(DeliveryRequest, with_package(packageId=package_id)) == {
        ("packageInfo", "packageId")
    }


def test_a_reschedule_may_change_only_some_of_its_fields() -> None:
    only_drop_off = RescheduleRequest.model_validate({"dropOffLocation": "new drop off"})
    assert only_drop_off.model_dump(exclude_unset=True) == {"dropOffLocation": "new drop off"}
    assert only_drop_off.pickupLocation is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"deadline": "x" * 257}, ("deadline",)),
        ({"pickupTime": "yesterday"}, ("pickupTime",)),
        ({"pickupLocation": ""}, ("pickupLocation",)),
        ({"pickupLocation": "here", "packageInfo": {}}, ("packageInfo",)),
    ],
)
def test_a_bad_reschedule_field_is_rejected_by_name(
    body: dict[str, Any], field: tuple[str, ...]
) -> None:
    assert rejected_fields(RescheduleRequest, body) == {field}


def test_a_reschedule_keeps_each_field_it_was_given() -> None:
    request = RescheduleRequest.model_validate(
        {
            "pickupLocation": "47.6,-122.3",
            "dropOffLocation": "new drop off",
            "pickupTime": "2019-05-09T08:00:00Z",
            "deadline": "",
        }
    )
    assert request.pickupLocation == "47.6,-122.3"
    assert request.dropOffLocation == "new drop off"
    assert request.pickupTime == datetime(2019, 5, 9, 8, 0, tzinfo=UTC)
    assert request.deadline == ""


def test_a_reschedule_body_jackson_wrote_is_accepted_and_its_delivery_id_ignored() -> None:
    # IngestionIT's ExternalRescheduledDelivery: deliveryId set, pickupTime left null.
    request = RescheduleRequest.model_validate(
        {
            "deliveryId": "another-id",
            "pickupLocation": "location",
            "dropOffLocation": "location",
            "deadline": "deadline",
            "pickupTime": None,
        }
    )
    assert request.changes() == {"pickupLocation", "dropOffLocation", "deadline", "pickupTime"}
    assert request.model_dump(exclude_unset=True) == {
        "pickupLocation": "location",
        "dropOffLocation": "location",
        "deadline": "deadline",
        "pickupTime": None,
    }


def test_a_reschedule_with_only_a_delivery_id_changes_nothing() -> None:
    assert RescheduleRequest.model_validate({"deliveryId": "d-1"}).changes() == set()


def test_a_reschedule_time_may_be_epoch_milliseconds() -> None:
    request = RescheduleRequest.model_validate({"pickupTime": "1557345600000"})
    assert request.pickupTime == datetime(2019, 5, 8, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (guide_body(ownerId="my\x00owner"), ("ownerId",)),
        (guide_body(pickupLocation="a\x00b"), ("pickupLocation",)),
        (guide_body(dropOffLocation="\x00"), ("dropOffLocation",)),
        (guide_body(deadline="soon\x00"), ("deadline",)),
        (with_package(tag="t\x00"), ("packageInfo", "tag")),
    ],
)
def test_text_a_store_cannot_keep_is_refused_by_name(
    body: dict[str, Any], field: tuple[str, ...]
) -> None:
    # JSON allows U+0000; PostgreSQL's jsonb does not: refused here, not failed on later.
    assert rejected_fields(DeliveryRequest, body) == {field}


def test_a_reschedule_refuses_text_a_store_cannot_keep() -> None:
    assert rejected_fields(RescheduleRequest, {"pickupLocation": "x\x00"}) == {("pickupLocation",)}
