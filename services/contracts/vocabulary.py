"""Words of the drone-delivery domain that several services' APIs use."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema


# An id that can stand in a URL path segment as it is.
def _not_a_path_step(value: str) -> str:
    # HTTP clients resolve "." and ".." as steps in the path, not as names.
    if value in (".", ".."):
        raise ValueError("'.' and '..' cannot be ids")
    return value


ResourceId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._~-]{1,128}$"),
    AfterValidator(_not_a_path_step),
    Field(json_schema_extra={"not": {"enum": [".", ".."]}}),
]


class PackageSize(enum.StrEnum):
    SMALL = "Small"
    MEDIUM = "Medium"
    LARGE = "Large"


class ConfirmationType(enum.StrEnum):
    FINGERPRINT = "FingerPrint"
    PICTURE = "Picture"
    VOICE = "Voice"
    NONE = "None"


Weight = Annotated[float, Field(gt=0, le=1000, description="pounds")]


def _iso_text(value: object) -> object:
    # Pydantic would read a bare number as seconds since 1970; clients mean a date-time text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("expected an ISO-8601 date-time string")
    return value


def _utc_if_naive(value: datetime) -> datetime:
    # A time without an offset is taken as UTC, so every comparison downstream is defined.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_utc_if_naive)]


def _empty_or_date_time(value: str) -> str:
    if value:
        datetime.fromisoformat(value)  # its ValueError becomes a 400 naming the field
    return value


# The original took any text here; we take what it meant: nothing, or a date-time. It stays
# the client's text (one type, so an error names just `deadline`).
Deadline = Annotated[
    str,
    AfterValidator(_empty_or_date_time),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": 0}, {"type": "string", "format": "date-time"}]}
    ),
]


# A delivery's operations are numbered 1, 2, 3... by ingestion (see contracts/messages.py).
Version = Annotated[int, Field(ge=1, le=2**31)]
