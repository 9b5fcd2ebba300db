"""Every recorded message and document (tests/compat/samples/) still reads with the current
code, field by field: what a previous release left on the queue or in a store must not
break the next one. Fast (no server): the first thing `make test-compat` runs.

A message must still validate as its operation's type, and each of its fields must come
back out of the model as it was recorded: a field removed from the model (an older reader
would miss it from new messages) or retyped is named. A document must still be read by the
code that reads it (the same functions the services call), and its fields that a model
describes must come back as recorded. Samples are recorded by `python -m tests.compat.record`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from contracts.messages import MESSAGE_TYPES, DeliveryRequested, Operation
from delivery.models import status_of
from delivery.schemas import Delivery, DeliverySchedule
from dronescheduler import service as scheduler
from dronescheduler.models import Drone
from dronescheduler.schemas import DroneAssignment, DroneDeliveryRequest
from ingestion.service import _standing
from package.schemas import Package, PackageUpsert

SAMPLES = Path(__file__).with_name("samples")


def _samples(kind: str) -> list[Path]:
    return sorted((SAMPLES / kind).glob("*.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _differences(recorded: Any, now: Any, where: str) -> list[str]:
    """Where `now` (the model's dump) differs from what was recorded, field by field."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        out = []
        for key, value in recorded.items():
            if key not in now:
                out.append(f"field {where}{key} is no longer in the model")
            else:
                out += _differences(value, now[key], f"{where}{key}.")
        return out
    if isinstance(recorded, str) and isinstance(now, str) and _same_instant(recorded, now):
        return []  # "Z" or "+00:00": written either way, read as the same time
    if recorded != now or type(recorded) is not type(now):
        return [f"field {where.rstrip('.')}: recorded {recorded!r}, read back as {now!r}"]
    return []


def _same_instant(a: str, b: str) -> bool:
    try:
        return datetime.fromisoformat(a) == datetime.fromisoformat(b)
    except ValueError:
        return False


def read_as(model: type[BaseModel], body: dict[str, Any], *, only_known: bool = False) -> None:
    """`body` validates as `model` and comes back out of it as it went in. only_known: the
    body holds more than the model describes (a document): compare the model's fields only."""
    try:
        parsed = model.model_validate(body)
    except ValidationError as e:
        named = "; ".join(
            f"field {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()
        )
        pytest.fail(f"no longer reads as {model.__name__}: {named}", pytrace=False)
    dumped = parsed.model_dump(mode="json")
    if only_known:
        body = {k: v for k, v in body.items() if k in model.model_fields}
    if problems := _differences(body, dumped, ""):
        pytest.fail(f"as {model.__name__}: " + "; ".join(problems), pytrace=False)


def read_by(reader: Callable[[], Any], what: str) -> Any:
    """What the service's own reader makes of a document; a missing field is named."""
    try:
        return reader()
    except KeyError as e:
        pytest.fail(f"{what}: field {e} is missing (the reader needs it)", pytrace=False)
    except (TypeError, ValueError) as e:
        pytest.fail(f"{what}: {type(e).__name__}: {e}", pytrace=False)


def _ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.stem}" for p in paths]


def test_every_kind_is_recorded() -> None:
    """The samples cover every message type and document collection there is."""
    operations = {_load(p)["properties"]["operation"] for p in _samples("messages")}
    assert operations == {op.value for op in Operation}, "record every operation's message"
    collections = {p.name for p in SAMPLES.iterdir() if p.is_dir()} - {"messages"}
    assert collections == {"deliveryrequests", "packages", "deliveries", "assignments", "drones"}


@pytest.mark.parametrize("path", _samples("messages"), ids=_ids(_samples("messages")))
def test_a_recorded_message_reads_as_its_type(path: Path) -> None:
    sample = _load(path)
    operation = read_by(lambda: Operation(sample["properties"]["operation"]), "operation")
    read_as(MESSAGE_TYPES[operation], sample["body"])


@pytest.mark.parametrize(
    "path", _samples("deliveryrequests"), ids=_ids(_samples("deliveryrequests"))
)
def test_a_recorded_delivery_request_record_reads(path: Path) -> None:
    record = _load(path)
    version, request = read_by(lambda: _standing(record), "ingestion's record")
    assert version >= 1
    read_as(DeliveryRequested, request)
    read_as(DeliveryRequested, read_by(lambda: json.loads(record["message"]), "first message"))
    for field in ("ownerId", "fingerprint"):
        read_by(lambda: record[field], "ingestion's record")  # noqa: B023


@pytest.mark.parametrize("path", _samples("packages"), ids=_ids(_samples("packages")))
def test_a_recorded_package_reads(path: Path) -> None:
    body = _load(path)
    read_as(PackageUpsert, {k: v for k, v in body.items() if k != "packageId"})
    read_as(Package, {"id": body["packageId"], **body}, only_known=True)


@pytest.mark.parametrize("path", _samples("deliveries"), ids=_ids(_samples("deliveries")))
def test_a_recorded_delivery_reads(path: Path) -> None:
    body = _load(path)
    read_as(Delivery, body, only_known=True)
    read_by(lambda: status_of(body, datetime.now(UTC)), "the delivery's status")
    if "departure" in body:  # scheduled once: what workflow's PUT wrote
        read_as(DeliverySchedule, body, only_known=True)


@pytest.mark.parametrize("path", _samples("assignments"), ids=_ids(_samples("assignments")))
def test_a_recorded_assignment_reads(path: Path) -> None:
    body = _load(path)
    statuses = {scheduler.ASSIGNED, scheduler.CANCELLED, scheduler.BOOKING, scheduler.RELEASED}
    assert read_by(lambda: body["status"], "the claim") in statuses, body["status"]
    read_by(lambda: int(body["token"]), "the claim")
    if "request" in body:
        read_as(DroneDeliveryRequest, body["request"])
    if "window" in body:
        shown = read_by(lambda: scheduler.view(body), "the assignment")
        read_as(DroneAssignment, json.loads(json.dumps(shown, default=datetime.isoformat)))


@pytest.mark.parametrize("path", _samples("drones"), ids=_ids(_samples("drones")))
def test_a_recorded_drone_reads(path: Path) -> None:
    body = _load(path)
    drone = read_by(lambda: Drone.from_json(body), "the drone")
    if any(isinstance(w, dict) for w in body["schedule"]):  # the layout before rows
        assert drone.view()["schedule"] == body["schedule"]
    elif problems := _differences(body, drone.to_json(), ""):
        pytest.fail("the drone: " + "; ".join(problems), pytrace=False)
