"""Turning the locations clients write into coordinates: parsed when they are coordinates,
placed by the stand-in geocoder inside the service area when they are not."""

from __future__ import annotations

import pytest

from dronescheduler.models import Location, miles_between
from workflow.locations import ServiceArea, parse_coordinates, resolve

SEATTLE = ServiceArea(latitude=47.6062, longitude=-122.3321, radius_miles=10.0)
ADDRESSES = [f"{n} Pike Street, apartment {n % 7}" for n in range(3000)]


def miles_from_centre(point: dict[str, float], area: ServiceArea) -> float:
    return miles_between(
        Location(area.latitude, area.longitude), Location(point["latitude"], point["longitude"])
    )


# --- coordinates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("47.6,-122.3", {"altitude": 0.0, "latitude": 47.6, "longitude": -122.3}),
        ("47.6,-122.3,120.5", {"altitude": 120.5, "latitude": 47.6, "longitude": -122.3}),
        ("  47.6 , -122.3 , 10 ", {"altitude": 10.0, "latitude": 47.6, "longitude": -122.3}),
        ("47,-122", {"altitude": 0.0, "latitude": 47.0, "longitude": -122.0}),
        ("-33.8688,151.2093", {"altitude": 0.0, "latitude": -33.8688, "longitude": 151.2093}),
        ("0,0,-5", {"altitude": -5.0, "latitude": 0.0, "longitude": 0.0}),
        ("90,180", {"altitude": 0.0, "latitude": 90.0, "longitude": 180.0}),
        ("-90,-180", {"altitude": 0.0, "latitude": -90.0, "longitude": -180.0}),
    ],
)
def test_coordinates_are_read_as_written(text: str, expected: dict[str, float]) -> None:
    assert parse_coordinates(text) == expected
    # ...and used as they are, wherever the service area is.
    assert resolve(text, SEATTLE) == expected


@pytest.mark.parametrize(
    "text",
    [
        "my pickup",
        "47.6;-122.3",
        "47.6,",
        ",-122.3",
        "47.6 -122.3",
        "47.6,-122.3,1,2",
        "1e1,2",
        "47.6,-122.3 ft",
        "",
    ],
)
def test_other_text_is_not_coordinates(text: str) -> None:
    assert parse_coordinates(text) is None


@pytest.mark.parametrize(
    "text",
    ["91,0", "-90.5,10", "0,181", "10,-180.01", "1000,1000,5", "47.6,-122.3,20000", "1,1,-501"],
)
def test_out_of_range_coordinates_are_geocoded_as_text_instead(text: str) -> None:
    assert parse_coordinates(text) is None
    point = resolve(text, SEATTLE)
    assert miles_from_centre(point, SEATTLE) <= SEATTLE.radius_miles * 1.01
    assert point["altitude"] == 0.0


# --- free text -------------------------------------------------------------------------


def test_the_same_text_always_lands_on_the_same_point() -> None:
    first = resolve("1 Microsoft Way, Redmond", SEATTLE)
    assert resolve("1 Microsoft Way, Redmond", SEATTLE) == first
    # A fresh area object with the same values gives the same answer (no hidden state).
    again = ServiceArea(47.6062, -122.3321, 10.0)
    assert resolve("1 Microsoft Way, Redmond", again) == first


def test_case_and_surrounding_spaces_do_not_move_the_point() -> None:
    expected = resolve("my pickup", SEATTLE)
    for variant in ("My Pickup", "MY PICKUP", "  my pickup", "my pickup \t\n", " My PicKup "):
        assert resolve(variant, SEATTLE) == expected


def test_a_geocoded_point_is_at_ground_level_with_six_decimals() -> None:
    point = resolve("drop off", SEATTLE)
    assert point["altitude"] == 0.0
    for key in ("latitude", "longitude"):
        assert round(point[key], 6) == point[key]
    assert point != {"altitude": 0.0, "latitude": SEATTLE.latitude, "longitude": SEATTLE.longitude}


def test_geocoded_points_stay_within_the_service_area_give_or_take_a_percent() -> None:
    distances = [miles_from_centre(resolve(a, SEATTLE), SEATTLE) for a in ADDRESSES]
    assert max(distances) <= SEATTLE.radius_miles * 1.01


def test_geocoded_points_stay_within_the_service_area_exactly() -> None:
    # 0.001 mile allows for rounding to six decimals (about 0.00007 mile).
    for area in (SEATTLE, ServiceArea(47.6062, -122.3321, 100.0)):
        far = [
            a
            for a in ADDRESSES
            if miles_from_centre(resolve(a, area), area) > area.radius_miles + 0.001
        ]
        assert far == []


def test_geocoded_points_fill_the_area_evenly() -> None:
    distances = [miles_from_centre(resolve(a, SEATTLE), SEATTLE) for a in ADDRESSES]
    # Uniform over the disc: a quarter of the points within half the radius.
    inner = sum(d <= SEATTLE.radius_miles / 2 for d in distances) / len(distances)
    assert 0.2 < inner < 0.3
    assert max(distances) > 0.95 * SEATTLE.radius_miles
    # Every compass quadrant gets its share.
    north_east = sum(
        p["latitude"] > SEATTLE.latitude and p["longitude"] > SEATTLE.longitude
        for p in (resolve(a, SEATTLE) for a in ADDRESSES)
    ) / len(ADDRESSES)
    assert 0.2 < north_east < 0.3


def test_different_texts_land_on_different_points() -> None:
    points = {tuple(sorted(resolve(a, SEATTLE).items())) for a in ADDRESSES}
    assert len(points) >= len(ADDRESSES) - 1


def test_the_area_decides_where_text_lands() -> None:
    portland = ServiceArea(45.5152, -122.6784, 5.0)
    point = resolve("my pickup", portland)
    assert miles_from_centre(point, portland) <= 5.0 * 1.01
    assert miles_from_centre(point, SEATTLE) > 100


def test_a_far_northern_area_still_keeps_points_near_it() -> None:
    tromso = ServiceArea(69.6492, 18.9553, 3.0)
    for a in ADDRESSES[:500]:
        assert miles_from_centre(resolve(a, tromso), tromso) <= 3.0 * 1.01
