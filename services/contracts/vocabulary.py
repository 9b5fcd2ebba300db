"""Words of the drone-delivery domain that several services' APIs use."""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

# PostgreSQL's jsonb cannot hold a NUL character (U+0000), whatever JSON allows: free text
# that reaches a store is refused at the door with its field named, not failed on later.
STORABLE_TEXT = r"^[^\x00]*$"


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


# A primitive double in the original (absent meant 0, and 0 was fine). Below 0 is not a weight;
# the bound keeps an owner's total weight a finite number.
Weight = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False, description="pounds")]


def _iso_text(value: object) -> object:
    # Pydantic would read a bare number as seconds since 1970; clients mean a date-time text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("expected an ISO-8601 date-time string")
    return value


def _utc_if_naive(value: datetime) -> datetime:
    # A time without an offset is taken as UTC, so every comparison downstream is defined.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_utc_if_naive)]

# --- a date-time as the original's clients write it ------------------------------------
#
# The original read `pickupTime` into a java.util.Date with Jackson: a JSON integer is
# milliseconds since 1970 (what Jackson itself writes for a Date by default), a string of
# digits is the same, and any other string is ISO-8601 (`Z`, `+0000`, `+00:00` or no offset,
# which is UTC; milliseconds optional). Jackson also took RFC 1123 text, and "" or null as
# no date at all; neither is taken here (no date means nothing to plan).

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The instants a datetime can hold, as epoch milliseconds (years 1 to 9999, UTC).
EPOCH_MS_RANGE = (
    (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1),
    (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1),
)
_EPOCH_MS_TEXT = re.compile(r"-?[0-9]+")
# The published shape of a string of digits: every string it allows is within range.
_EPOCH_MS_PATTERN = r"^(-[0-9]{1,13}|[0-9]{1,14})$"


def from_epoch_ms(ms: int) -> datetime:
    low, high = EPOCH_MS_RANGE
    if not low <= ms <= high:
        raise ValueError(f"epoch milliseconds must be from {low} to {high}")
    return _EPOCH + timedelta(milliseconds=ms)


def _jackson_date(value: object) -> object:
    if isinstance(value, bool):
        return value  # refused as what it is
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1.5e12 is a whole number too, in JSON
    if isinstance(value, int):
        return from_epoch_ms(value)
    if isinstance(value, float):
        raise ValueError("epoch milliseconds must be a whole number")
    if not isinstance(value, str):
        return value
    text = value.strip()
    if _EPOCH_MS_TEXT.fullmatch(text):
        return from_epoch_ms(int(text))
    try:
        # RFC 3339 allows a lower-case t and z; Python reads only upper case.
        return datetime.fromisoformat(text.upper())
    except ValueError:
        raise ValueError(
            "expected an ISO-8601 date-time or milliseconds since 1970-01-01T00:00:00Z"
        ) from None


def _millisecond_text(value: datetime) -> str:
    # What Jackson reads back into the same Date: exactly three fraction digits (older Jackson
    # reads six as a count of milliseconds), and Z for UTC.
    text = value.isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def _to_the_millisecond(value: datetime) -> datetime:
    # What a java.util.Date holds: the answer, the message and the plan agree to the ms.
    return _utc_if_naive(value).replace(microsecond=value.microsecond // 1000 * 1000)


ClientDateTime = Annotated[
    datetime,
    BeforeValidator(_jackson_date),
    AfterValidator(_to_the_millisecond),
    PlainSerializer(_millisecond_text, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {
                    "type": "integer",
                    "minimum": EPOCH_MS_RANGE[0],
                    "maximum": EPOCH_MS_RANGE[1],
                    "description": "milliseconds since 1970-01-01T00:00:00Z",
                },
                {
                    "type": "string",
                    "pattern": _EPOCH_MS_PATTERN,
                    "description": "milliseconds since 1970-01-01T00:00:00Z, as text",
                },
            ]
        },
        mode="validation",
    ),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]
"""A date-time in any of the ways the original's clients write one (see above). Answered as
ISO-8601 with milliseconds; queue messages carry it as ISO text (`IsoDateTime`)."""


# Free text in the original, never parsed (its own test sends "LineOfDeadlyZombiatedPeople"),
# and kept as the client wrote it; `deadline_time` reads it when it is also a date-time.
Deadline = Annotated[str, StringConstraints(max_length=256, pattern=STORABLE_TEXT)]

_ISO_START = re.compile(r"[0-9]{4}-")


def deadline_time(deadline: str) -> datetime | None:
    """The deadline as a time, when its text is an ISO-8601 date-time (read as pickupTime is);
    None for free text."""
    if not _ISO_START.match(deadline.strip()):
        return None  # digits alone are a name or a number here, not a time
    try:
        parsed = _jackson_date(deadline)
    except ValueError:
        return None
    assert isinstance(parsed, datetime)
    return _utc_if_naive(parsed)


# A delivery's operations are numbered 1, 2, 3... by ingestion (see contracts/messages.py).
Version = Annotated[int, Field(ge=1, le=2**31)]
