"""The public view of a delivery (delivery/schemas.py): the deadline as the client sent it,
and as a time when its text is one."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.schemas import Delivery

POINT = {"altitude": 0.0, "latitude": 47.6, "longitude": -122.3}


def view(deadline: str) -> dict[str, Any]:
    stored = {
        "id": "d-1",
        "owner": {"userId": "o", "accountId": "o"},
        "pickup": POINT,
        "dropoff": POINT,
        "deadline": deadline,
        "expedited": False,
        "confirmationRequired": "None",
        "droneId": "drone-1",
    }
    shown: dict[str, Any] = Delivery.model_validate(stored).model_dump(mode="json")
    return shown


@pytest.mark.parametrize(
    ("deadline", "as_time"),
    [
        ("2030-01-01T00:00:00.000+0000", "2030-01-01T00:00:00.000Z"),
        ("2030-01-01T02:00:00+02:00", "2030-01-01T02:00:00.000+02:00"),
        ("LineOfDeadlyZombiatedPeople", None),
        ("", None),
    ],
)
def test_the_deadline_is_shown_as_sent_and_as_a_time_when_it_is_one(
    deadline: str, as_time: str | None
) -> None:
    shown = view(deadline)
    assert (shown["deadline"], shown["deadlineTime"]) == (deadline, as_time)
