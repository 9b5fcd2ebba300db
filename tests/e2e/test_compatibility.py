"""Clients of the original, unchanged: request bodies in the shapes the original's clients
send, replayed against the running system and checked against the original's contract.

The shapes come from the original's ingestion service: its models (`ExternalDelivery`,
`PackageInfo`, `ExternalRescheduledDelivery`), which Java clients serialise with Jackson,
nulls included and a `java.util.Date` as epoch milliseconds; its `IngestionIT` test, whose
bodies are exactly that; and its deployment guide's curl. Each answer is checked field by
field (202 with the body as the original's model read it and a new `deliveryId`; 200 with the
reschedule; 204 for a cancel), and each request is followed to its end through the public
API: the delivery shows the caller's values and reaches a scheduled stage, or `Failed` with
the reason. README, "Clients of the original", says what differs on purpose; the last tests
here pin those differences.
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import GUIDE_REQUEST, System, eventually

SCHEDULED = ("Created", "Rescheduled", "HeadedToPickup", "HeadedToDropoff", "Completed")
# What the answer writes a time as: what Jackson, old or new, reads back to the same Date.
ANSWERED_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(when: datetime) -> int:
    return (when - EPOCH) // timedelta(milliseconds=1)


def hours_from_now(hours: float) -> datetime:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0)


def ingestion_it_delivery(pickup: datetime | None = None) -> dict[str, Any]:
    """IngestionIT's ExternalDelivery as its ObjectMapper writes it: every property, the
    unset ones null (deliveryId, tag) or the primitive's zero (weight), the Date in ms."""
    return {
        "deliveryId": None,
        "ownerId": str(uuid.uuid4()),
        "pickupLocation": "Texas",
        "dropOffLocation": "Austin",
        "pickupTime": epoch_ms(pickup or datetime.now(UTC)),
        "deadline": "LineOfDeadlyZombiatedPeople",
        "expedited": False,
        "confirmationRequired": "FingerPrint",
        "packageInfo": {
            "packageId": str(uuid.uuid4()),
            "size": "Large",
            "weight": 0.0,
            "tag": None,
        },
    }


def with_changes(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    package = changes.pop("packageInfo", {})
    changed.update(changes)
    for key, value in package.items():
        if value is ...:
            del changed["packageInfo"][key]
        else:
            changed["packageInfo"][key] = value
    return changed


def guide_request() -> dict[str, Any]:
    return copy.deepcopy(GUIDE_REQUEST)


def the_time(sent: Any) -> datetime:
    """The instant a pickupTime stands for, read as the original (Jackson) read it."""
    if isinstance(sent, int) or (isinstance(sent, str) and sent.strip().lstrip("-").isdigit()):
        return EPOCH + timedelta(milliseconds=int(sent))
    when = datetime.fromisoformat(sent)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def deadline_as_time(deadline: str) -> datetime | None:
    try:
        return the_time(deadline) if re.match(r"\d{4}-", deadline) else None
    except ValueError:
        return None


def as_the_original_read_it(sent: dict[str, Any]) -> dict[str, Any]:
    """The body as the original's model held it, but for the time (compared as an instant):
    what its 202 answered back. Unset and null optional fields take the model's defaults."""
    package = sent["packageInfo"]
    return {
        "ownerId": sent["ownerId"],
        "pickupLocation": sent["pickupLocation"],
        "dropOffLocation": sent["dropOffLocation"],
        "deadline": sent.get("deadline") or "",
        "expedited": bool(sent.get("expedited")),
        "confirmationRequired": sent.get("confirmationRequired", "None"),
        "packageInfo": {
            "packageId": package["packageId"],
            "size": package["size"],
            "weight": float(package.get("weight") or 0.0),
            "tag": package.get("tag") or "",
        },
    }


def post(client: httpx.Client, body: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """POST as the original's clients do; check the answer against the original's contract."""
    r = client.post(f"{prefix}/api/deliveryrequests", json=body)
    assert r.status_code == 202, r.text
    answer: dict[str, Any] = r.json()
    delivery_id = answer["deliveryId"]
    assert isinstance(delivery_id, str) and delivery_id != body.get("deliveryId")
    uuid.UUID(delivery_id)  # a new id, whatever the body carried
    assert r.headers["location"] == f"{prefix}/api/deliveries/{delivery_id}"
    assert ANSWERED_TIME.match(answer["pickupTime"]), answer["pickupTime"]
    assert the_time(answer["pickupTime"]) == the_time(body["pickupTime"])
    rest = {k: v for k, v in answer.items() if k not in ("deliveryId", "pickupTime")}
    assert rest == as_the_original_read_it(body)
    return answer


def delivery_of(client: httpx.Client, delivery_id: str, within: float = 60.0) -> dict[str, Any]:
    def recorded() -> dict[str, Any] | None:
        r = client.get(f"/api/deliveries/{delivery_id}")
        return r.json() if r.status_code == 200 else None

    return eventually(recorded, within=within, what=f"delivery {delivery_id} recorded")


def status_of(client: httpx.Client, delivery_id: str) -> dict[str, Any]:
    r = client.get(f"/api/deliveries/{delivery_id}/status")
    assert r.status_code == 200, r.text
    status: dict[str, Any] = r.json()
    return status


def stage_becomes(client: httpx.Client, delivery_id: str, stage: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        status = status_of(client, delivery_id)
        return status if status["stage"] == stage else None

    return eventually(reached, within=60.0, what=f"delivery {delivery_id} {stage}")


def assert_processed_with_the_callers_values(
    system: System, client: httpx.Client, body: dict[str, Any], delivery_id: str
) -> dict[str, Any]:
    """Followed to its end: scheduled with a drone, showing what the caller sent."""
    delivery = delivery_of(client, delivery_id)
    read = as_the_original_read_it(body)
    assert delivery["id"] == delivery_id
    assert delivery["failureReason"] is None, delivery
    assert delivery["droneId"]
    assert delivery["owner"] == {"userId": body["ownerId"], "accountId": body["ownerId"]}
    assert delivery["deadline"] == read["deadline"]  # as sent, free text included
    expected = deadline_as_time(read["deadline"])
    shown = delivery["deadlineTime"]
    assert (shown if shown is None else the_time(shown)) == expected
    assert delivery["expedited"] is read["expedited"]
    assert delivery["confirmationRequired"] == read["confirmationRequired"]
    assert status_of(client, delivery_id)["stage"] in SCHEDULED
    if system.stack is not None:  # the package as recorded, where it can be seen
        package = read["packageInfo"]
        with system.internal("package") as packages:
            kept = packages.get(f"/api/packages/{package['packageId']}").json()
        assert (kept["size"], kept["weight"], kept["tag"]) == (
            package["size"],
            package["weight"],
            package["tag"],
        )
    return delivery


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


# --- what the original accepted and no drone can fly -----------------------------------


@pytest.mark.parametrize(
    "pickup_time",
    [
        pytest.param("9999-12-31T00:00:00.000Z", id="ISO, the year 9999"),
        pytest.param(253402300799999, id="epoch ms, the last one a date can hold"),
    ],
)
def test_a_pickup_time_no_drone_can_plan_ends_failed_with_the_reason(
    system: System, pickup_time: Any
) -> None:
    body = with_changes(ingestion_it_delivery(), pickupTime=pickup_time)
    with system.client() as client:
        delivery_id = post(client, body)["deliveryId"]
        status = stage_becomes(client, delivery_id, "Failed")
        delivery = delivery_of(client, delivery_id)
    assert "pickupTime" in (delivery["failureReason"] or ""), delivery
    assert delivery["deadline"] == body["deadline"]
    assert status["pickupETA"] and status["deliveryETA"]


def test_a_pickup_time_long_past_is_flown_now_or_failed_never_stuck(system: System) -> None:
    # A past time means "as soon as possible" (the guide's is from 2019); one at the start of
    # the calendar is either that, or a failure with its reason: never left unanswered.
    body = with_changes(ingestion_it_delivery(), pickupTime="0001-01-01T00:00:00.000Z")
    with system.client() as client:
        delivery_id = post(client, body)["deliveryId"]

        def settled() -> str | None:
            r = client.get(f"/api/deliveries/{delivery_id}/status")
            return r.json()["stage"] if r.status_code == 200 else None

        stage = eventually(settled, within=60.0, what="the delivery scheduled or failed")
        delivery = delivery_of(client, delivery_id)
    assert stage in (*SCHEDULED, "Failed")
    assert (stage == "Failed") == bool(delivery["failureReason"])


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
