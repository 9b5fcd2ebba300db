"""The original's guide's delivery request, which the body and message tests start from, and
the fields a validation error names."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

# The body from the original reference implementation's guide, byte for byte.
GUIDE_BODY: dict[str, Any] = {
    "confirmationRequired": "None",
    "deadline": "",
    "dropOffLocation": "drop off",
    "expedited": True,
    "ownerId": "myowner",
    "packageInfo": {"packageId": "mypackage", "size": "Small", "tag": "mytag", "weight": 10},
    "pickupLocation": "my pickup",
    "pickupTime": "2019-05-08T20:00:00.000Z",
}
REQUESTED_AT = datetime(2024, 5, 8, 12, 0, tzinfo=UTC)


def guide_body(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(GUIDE_BODY)
    body.update(changes)
    return body


def with_package(**changes: Any) -> dict[str, Any]:
    body = guide_body()
    body["packageInfo"].update(changes)
    return body


def rejected_fields(model: type[Any], body: Any) -> set[tuple[str | int, ...]]:
    """The fields named by the validation errors (without pydantic's union-branch tags)."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return {
        tuple(part for part in e["loc"] if isinstance(part, int) or part.isidentifier())
        for e in caught.value.errors()
    }
