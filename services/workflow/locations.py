"""Turning the locations clients send into coordinates.

The original API takes locations as free text ("my pickup"). Coordinates given as
"latitude,longitude[,altitude]" are used as they are. Any other text is placed by a
stand-in geocoder: a stable hash of the text picks a point inside the service area, so the
same address always lands on the same spot. A real deployment puts a geocoding service
behind `resolve`; nothing else changes.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

EARTH_RADIUS_MILES = 3958.8
# What the drone scheduler and delivery accept (feet): coordinates outside are not a place.
ALTITUDE_RANGE = (-500.0, 10_000.0)
_COORDINATES = re.compile(
    r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*(?:,\s*(-?\d+(?:\.\d+)?)\s*)?$"
)


@dataclass(frozen=True)
class ServiceArea:
    latitude: float
    longitude: float
    radius_miles: float


def parse_coordinates(text: str) -> dict[str, float] | None:
    m = _COORDINATES.match(text)
    if not m:
        return None
    lat, lon, alt = float(m.group(1)), float(m.group(2)), float(m.group(3) or 0)
    low, high = ALTITUDE_RANGE
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and low <= alt <= high):
        return None
    return {"altitude": alt, "latitude": lat, "longitude": lon}


def resolve(text: str, area: ServiceArea) -> dict[str, float]:
    """Coordinates for a location as a client wrote it."""
    parsed = parse_coordinates(text)
    if parsed is not None:
        return parsed
    digest = hashlib.sha256(text.strip().lower().encode()).digest()
    # Uniform over the disc: sqrt on the radius fraction, an angle from the other bytes.
    r = area.radius_miles * math.sqrt(int.from_bytes(digest[:8], "big") / 2**64)
    bearing = 2 * math.pi * int.from_bytes(digest[8:16], "big") / 2**64
    # The point r miles away on that bearing, on the sphere the scheduler measures with.
    delta = r / EARTH_RADIUS_MILES
    lat1, lon1 = math.radians(area.latitude), math.radians(area.longitude)
    lat2 = math.asin(
        math.sin(lat1) * math.cos(delta) + math.cos(lat1) * math.sin(delta) * math.cos(bearing)
    )
    lon2 = lon1 + math.atan2(
        math.sin(bearing) * math.sin(delta) * math.cos(lat1),
        math.cos(delta) - math.sin(lat1) * math.sin(lat2),
    )
    return {
        "altitude": 0.0,
        "latitude": round(math.degrees(lat2), 6),
        "longitude": round((math.degrees(lon2) + 540) % 360 - 180, 6),
    }
