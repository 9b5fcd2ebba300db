"""What the original's clients send, and what the original answered: shared by the
compatibility tests (test_compatibility.py, test_unplannable_requests.py).

The shapes come from the original's ingestion service: its models (`ExternalDelivery`,
`PackageInfo`, `ExternalRescheduledDelivery`), which Java clients serialise with Jackson,
nulls included and a `java.util.Date` as epoch milliseconds; its `IngestionIT` test, whose
bodies are exactly that; and its deployment guide's curl.
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

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
        r = client.get(f"/api/deliveries/{delivery_id}/status")  # 404 until recorded
        return r.json() if r.status_code == 200 and r.json()["stage"] == stage else None

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
            kept = packages.get(
                f"/api/packages/{package['packageId']}", params={"ownerId": body["ownerId"]}
            ).json()
        assert (kept["size"], kept["weight"], kept["tag"]) == (
            package["size"],
            package["weight"],
            package["tag"],
        )
    return delivery
