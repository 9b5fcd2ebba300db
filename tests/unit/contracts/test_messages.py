"""The queue messages (contracts/messages.py): the whole request at a version, made once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.messages import (
    MESSAGE_TYPES,
    QUEUE,
    CancelRequested,
    DeliveryRequested,
    Operation,
    RescheduleRequested,
)
from ingestion.config import Settings as IngestionSettings
from ingestion.schemas import DeliveryRequest
from tests.guide import GUIDE_BODY, REQUESTED_AT, rejected_fields
from workflow.config import Settings as WorkflowSettings


def test_a_delivery_message_is_the_public_body_plus_its_id_and_time() -> None:
    request = DeliveryRequest.model_validate(GUIDE_BODY)
    message = DeliveryRequested(deliveryId="d-1", requestedAt=REQUESTED_AT, **request.model_dump())
    back = DeliveryRequested.model_validate_json(message.model_dump_json())
    assert back == message
    assert back.packageInfo.packageId == "mypackage"
    assert back.pickupTime == datetime(2019, 5, 8, 20, 0, tzinfo=UTC)
    assert back.requestedAt == REQUESTED_AT


def test_a_delivery_message_needs_its_id_and_time() -> None:
    body = {**GUIDE_BODY, "deliveryId": "d/1"}
    assert rejected_fields(DeliveryRequested, body) == {("deliveryId",), ("requestedAt",)}


def message_body(**changes: Any) -> dict[str, Any]:
    return {**GUIDE_BODY, "deliveryId": "d-1", "requestedAt": REQUESTED_AT.isoformat(), **changes}


def test_every_message_is_the_whole_request_at_a_version() -> None:
    # A reschedule or cancel never needs an earlier message: it says all there is.
    for kind in (RescheduleRequested, CancelRequested):
        back = kind.model_validate_json(
            kind.model_validate(message_body(version=3)).model_dump_json()
        )
        assert back.version == 3
        assert back.packageInfo.packageId == "mypackage"
        assert back.pickupLocation == "my pickup"


def test_a_message_without_a_version_is_the_first_one() -> None:
    assert DeliveryRequested.model_validate(message_body()).version == 1


@pytest.mark.parametrize("version", [0, -1, 2**31 + 1, "two", 1.5])
def test_a_version_is_a_positive_whole_number(version: object) -> None:
    assert rejected_fields(RescheduleRequested, message_body(version=version)) == {("version",)}


def test_a_reschedule_message_refuses_an_empty_location() -> None:
    assert rejected_fields(RescheduleRequested, message_body(dropOffLocation="")) == {
        ("dropOffLocation",)
    }


def test_a_cancel_message_names_its_delivery_and_time() -> None:
    message = CancelRequested.model_validate(message_body(requestedAt="2024-05-08T12:00:00Z"))
    assert message.requestedAt == REQUESTED_AT
    body = {k: v for k, v in message_body().items() if k != "requestedAt"}
    assert rejected_fields(CancelRequested, body) == {("requestedAt",)}


def test_unknown_fields_from_a_newer_sender_are_ignored() -> None:
    message = CancelRequested.model_validate(message_body(reason="changed mind"))
    assert "reason" not in message.model_dump()


def test_messages_cannot_be_changed_once_made() -> None:
    message = CancelRequested.model_validate(message_body())
    with pytest.raises(ValidationError):
        message.deliveryId = "d-2"  # type: ignore[misc]


def test_each_operation_has_its_message_type() -> None:
    assert [op.value for op in Operation] == ["delivery", "reschedule", "cancel"]
    assert dict(MESSAGE_TYPES) == {
        Operation.DELIVERY: DeliveryRequested,
        Operation.RESCHEDULE: RescheduleRequested,
        Operation.CANCEL: CancelRequested,
    }


@pytest.mark.parametrize("settings", [IngestionSettings, WorkflowSettings])
def test_both_ends_of_the_queue_default_to_the_one_queue(settings: type[Any]) -> None:
    assert settings().queue_url.endswith(f"?queue={QUEUE}")
    assert settings(queue_url="amqp://u:p@rabbit/%2F").queue_url == (
        f"amqp://u:p@rabbit/%2F?queue={QUEUE}"
    )
    assert settings(queue_url="amqp://u:p@rabbit/%2F?queue=q").queue_url.endswith("?queue=q")
