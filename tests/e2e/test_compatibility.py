"""Clients of the original, unchanged: request bodies in the shapes the original's clients
send (see original_clients.py), replayed against the running system and checked against the
original's contract.

Each answer is checked field by field (202 with the body as the original's model read it and
a new `deliveryId`; 200 with the reschedule; 204 for a cancel), and each request is followed
to its end through the public API: the delivery shows the caller's values and reaches a
scheduled stage. docs/api.md, "Clients of the original", says what differs on purpose; the last
tests here pin those differences. What the original accepted and no drone can fly is in
test_unplannable_requests.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import System, eventually
from tests.e2e.original_clients import (
    assert_processed_with_the_callers_values,
    delivery_of,
    epoch_ms,
    guide_request,
    hours_from_now,
    ingestion_it_delivery,
    post,
    stage_becomes,
    status_of,
    the_time,
    with_changes,
)


def _jackson_model_nothing_optional_set() -> dict[str, Any]:
    # A client that set only what it had to: the rest is null, or 0.0 for the double.
    return with_changes(
        ingestion_it_delivery(hours_from_now(1)),
        deadline=None,
        expedited=None,
        packageInfo={"tag": None, "weight": 0.0},
    )


# fmt: off
ORIGINAL_CLIENTS_BODIES = [
    pytest.param(guide_request, id="the deployment guide's curl"),
    pytest.param(ingestion_it_delivery, id="IngestionIT's ExternalDelivery, Jackson-written"),
    pytest.param(_jackson_model_nothing_optional_set, id="Jackson model, optional fields null"),
    pytest.param(lambda: with_changes(ingestion_it_delivery(), pickupTime="2019-05-08T20:00:00.000+0000"), id="pickupTime +0000 with millis"),
    pytest.param(lambda: with_changes(ingestion_it_delivery(), pickupTime="2019-05-08T20:00:00+00:00"), id="pickupTime +00:00 without millis"),
    pytest.param(lambda: with_changes(ingestion_it_delivery(), pickupTime="2019-05-08T20:00:00Z"), id="pickupTime Z without millis"),
    pytest.param(lambda: with_changes(ingestion_it_delivery(), pickupTime=str(epoch_ms(hours_from_now(2)))), id="pickupTime epoch ms as text"),
    pytest.param(lambda: with_changes(guide_request(), packageInfo={"weight": ...}), id="weight absent"),
    pytest.param(lambda: with_changes(guide_request(), packageInfo={"weight": 0}), id="weight 0"),
    pytest.param(lambda: with_changes(ingestion_it_delivery(), deliveryId="chosen-by-the-client"), id="a deliveryId on create, ignored"),
    pytest.param(lambda: with_changes(ingestion_it_delivery(), deadline="2030-01-01T00:00:00.000+0000"), id="an ISO deadline, also read as a time"),
]
# fmt: on


@pytest.mark.parametrize("make_body", ORIGINAL_CLIENTS_BODIES)
def test_a_body_the_original_accepted_is_accepted_alike_and_processed(
    system: System, make_body: Any
) -> None:
    body = make_body()
    with system.client() as client:
        accepted = post(client, body)
        assert_processed_with_the_callers_values(system, client, body, accepted["deliveryId"])


def test_the_guide_s_versioned_path_answers_alike(system: System) -> None:
    with system.client() as client:
        accepted = post(client, guide_request(), prefix="/v0.1.0")
        r = client.get(f"/v0.1.0/api/deliveries/{accepted['deliveryId']}")
        assert r.status_code in (200, 404)  # 404 until workflow has recorded it
        delivery_of(client, accepted["deliveryId"])


def test_the_reschedule_body_of_the_original_s_model_is_carried_out(system: System) -> None:
    created = ingestion_it_delivery(hours_from_now(3))
    with system.client() as client:
        delivery_id = post(client, created)["deliveryId"]
        assert_processed_with_the_callers_values(system, client, created, delivery_id)
        # IngestionIT's ExternalRescheduledDelivery, as Jackson writes it: every property,
        # the id among them (a Java client reuses its model), pickupTime left null.
        body = {
            "deliveryId": delivery_id,
            "pickupLocation": "location",
            "dropOffLocation": "location",
            "deadline": "deadline",
            "pickupTime": None,
        }
        r = client.patch(f"/api/deliveryrequests/{delivery_id}", json=body)
        assert r.status_code == 200, r.text
        assert r.json() == body  # null pickupTime: the time stays as it was

        stage_becomes(client, delivery_id, "Rescheduled")
        delivery = eventually(
            lambda: (d := delivery_of(client, delivery_id))["deadline"] == "deadline" and d,
            what="the new deadline shown",
        )
    assert delivery["pickup"] == delivery["dropoff"]  # both are the text "location"
    assert delivery["owner"]["userId"] == created["ownerId"]


def test_a_reschedule_time_in_epoch_milliseconds_is_carried_out(system: System) -> None:
    created = ingestion_it_delivery(hours_from_now(2))
    later = hours_from_now(6)
    with system.client() as client:
        delivery_id = post(client, created)["deliveryId"]
        delivery_of(client, delivery_id)
        body = {
            "deliveryId": delivery_id,
            "pickupLocation": None,
            "dropOffLocation": None,
            "deadline": None,
            "pickupTime": epoch_ms(later),
        }
        r = client.patch(f"/api/deliveryrequests/{delivery_id}", json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert the_time(answer.pop("pickupTime")) == later
        assert answer == {k: v for k, v in body.items() if k != "pickupTime"}

        status = stage_becomes(client, delivery_id, "Rescheduled")
        assert the_time(status["pickupETA"]) >= later
        assert delivery_of(client, delivery_id)["deadline"] == created["deadline"]


def test_a_reschedule_naming_another_delivery_changes_the_one_in_its_path(
    system: System,
) -> None:
    # The original built the reschedule from the path's id and never read the body's: so here.
    this, other = ingestion_it_delivery(hours_from_now(2)), ingestion_it_delivery(hours_from_now(2))
    with system.client() as client:
        this_id, other_id = (post(client, b)["deliveryId"] for b in (this, other))
        for delivery_id in (this_id, other_id):
            delivery_of(client, delivery_id)
        body = {"deliveryId": other_id, "deadline": "for this one"}
        r = client.patch(f"/api/deliveryrequests/{this_id}", json=body)
        assert r.status_code == 200, r.text
        assert r.json() == {"deliveryId": this_id, "deadline": "for this one"}

        eventually(
            lambda: delivery_of(client, this_id)["deadline"] == "for this one",
            what="the path's delivery rescheduled",
        )
        assert delivery_of(client, other_id)["deadline"] == other["deadline"]
        assert status_of(client, other_id)["stage"] == "Created"


def test_a_cancel_answers_204_and_is_carried_out(system: System) -> None:
    created = ingestion_it_delivery(hours_from_now(2))
    with system.client() as client:
        delivery_id = post(client, created)["deliveryId"]
        delivery_of(client, delivery_id)
        r = client.delete(f"/api/deliveryrequests/{delivery_id}")
        assert (r.status_code, r.content) == (204, b"")
        stage_becomes(client, delivery_id, "Cancelled")


# --- what differs on purpose (README, "Clients of the original") -----------------------


def test_ids_never_issued_are_404_where_the_original_said_yes(system: System) -> None:
    # IngestionIT reschedules and cancels a random id and expects 2xx: the original queued
    # a message that could never apply. Here the client learns at once.
    never_issued = str(uuid.uuid4())
    body = {
        "deliveryId": never_issued,
        "pickupLocation": "location",
        "dropOffLocation": "location",
        "deadline": "deadline",
        "pickupTime": None,
    }
    with system.client() as client:
        patched = client.patch(f"/api/deliveryrequests/{never_issued}", json=body)
        deleted = client.delete(f"/api/deliveryrequests/{never_issued}")
    assert (patched.status_code, deleted.status_code) == (404, 404)
    assert patched.headers["content-type"].startswith("application/problem+json")


# fmt: off
UNUSABLE = [
    # The original answered 500 to these: its request logging dereferenced each one.
    pytest.param({"ownerId": None}, "ownerId", id="ownerId null (500 there)"),
    pytest.param({"confirmationRequired": None}, "confirmationRequired", id="confirmationRequired null (500 there)"),
    pytest.param({"packageInfo": None}, "packageInfo", id="packageInfo null (500 there)"),
    pytest.param({"packageInfo": {"size": None}}, "packageInfo.size", id="size null (500 there)"),
    # The original queued these; nothing could be planned or weighed from them.
    pytest.param({"pickupTime": None}, "pickupTime", id="pickupTime null"),
    pytest.param({"pickupLocation": None}, "pickupLocation", id="pickupLocation null"),
    pytest.param({"packageInfo": {"weight": -1.5}}, "packageInfo.weight", id="a negative weight"),
]
# fmt: on


@pytest.mark.parametrize(("change", "field"), UNUSABLE)
def test_what_the_original_could_not_use_is_a_400_naming_the_field(
    system: System, change: dict[str, Any], field: str
) -> None:
    body = ingestion_it_delivery()
    if change.get("packageInfo", {}) is None:
        body["packageInfo"] = None
    else:
        body = with_changes(body, **change)
    with system.client() as client:
        r = client.post("/api/deliveryrequests", json=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_the_published_document_describes_the_original_s_shapes(system: System) -> None:
    with system.client() as client:
        r = client.get("/openapi.json")
    if r.status_code == 404:
        pytest.skip("this entry point does not serve the OpenAPI document")
    schemas = r.json()["components"]["schemas"]
    request = schemas["DeliveryRequest"]["properties"]
    forms = request["pickupTime"]["anyOf"]
    assert {"type": "string", "format": "date-time"} in forms
    assert {f["type"] for f in forms} == {"string", "integer"}  # ISO, or epoch ms
    assert "deliveryId" in request and "required" not in request["deliveryId"]
    assert {"type": "null"} in request["deadline"]["anyOf"]
    package = schemas["PackageInfo"]["properties"]
    assert package["weight"]["default"] == 0.0
    assert {"type": "null"} in package["tag"]["anyOf"]
    assert "deliveryId" in schemas["RescheduleRequest"]["properties"]
