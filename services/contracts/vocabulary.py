"""Words of the drone-delivery domain that several services' APIs use."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator, Field, StringConstraints

# An id that can stand in a URL path segment as it is.
ResourceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._~-]{1,128}$")]


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


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_text)]
