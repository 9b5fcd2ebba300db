"""The shared domain types, read the way the original read them (Jackson, java.util.Date,
a primitive double, a free-text deadline)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from contracts.vocabulary import (
    EPOCH_MS_RANGE,
    ClientDateTime,
    Deadline,
    IsoDateTime,
    Weight,
    deadline_time,
)

CLIENT_TIME: TypeAdapter[datetime] = TypeAdapter(ClientDateTime)
PICKUP = datetime(2019, 5, 8, 20, 0, tzinfo=UTC)


# --- pickupTime: what Jackson's Date deserializer reads --------------------------------

# fmt: off
JACKSON_FORMS = [
    pytest.param(1557345600000, PICKUP, id="epoch ms, a JSON integer (Jackson's default)"),
    pytest.param("1557345600000", PICKUP, id="epoch ms as text"),
    pytest.param(1.5573456e12, PICKUP, id="epoch ms written with an exponent"),
    pytest.param(0, datetime(1970, 1, 1, tzinfo=UTC), id="epoch ms zero"),
    pytest.param(-1, datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), id="epoch ms before 1970"),
    pytest.param("2019-05-08T20:00:00.000Z", PICKUP, id="Z with millis (the guide)"),
    pytest.param("2019-05-08T20:00:00Z", PICKUP, id="Z without millis"),
    pytest.param("2019-05-08T20:00:00.000+0000", PICKUP, id="+0000 with millis (Jackson 2.8 writes it)"),
    pytest.param("2019-05-08T20:00:00+0000", PICKUP, id="+0000 without millis"),
    pytest.param("2019-05-08T20:00:00.000+00:00", PICKUP, id="+00:00 with millis"),
    pytest.param("2019-05-08T20:00:00+00:00", PICKUP, id="+00:00 without millis"),
    pytest.param("2019-05-08T22:00:00+02", PICKUP, id="an offset of hours only"),
    pytest.param("2019-05-08T13:00:00-0700", PICKUP, id="a negative offset"),
    pytest.param("2019-05-08T20:00:00", PICKUP, id="no offset, taken as UTC as Jackson does"),
    pytest.param("2019-05-08T20:00", PICKUP, id="no seconds"),
    pytest.param("2019-05-08", datetime(2019, 5, 8, tzinfo=UTC), id="a date alone"),
    pytest.param(" 2019-05-08T20:00:00Z ", PICKUP, id="spaces around, trimmed as Jackson does"),
    pytest.param("2019-05-08t20:00:00z", PICKUP, id="lower-case t and z (RFC 3339)"),
]
# fmt: on


@pytest.mark.parametrize(("sent", "read"), JACKSON_FORMS)
def test_a_pickup_time_is_read_in_every_way_jackson_reads_a_date(sent: Any, read: datetime) -> None:
    assert CLIENT_TIME.validate_python(sent) == read
    assert CLIENT_TIME.validate_json(json.dumps(sent)) == read


# fmt: off
NOT_A_TIME = [
    pytest.param("", id="empty (Jackson: no date; nothing to plan)"),
    pytest.param(None, id="null"),
    pytest.param("yesterday", id="words"),
    pytest.param("2019-05-08T12:99:00Z", id="minute 99"),
    pytest.param(1557345600000.5, id="a fraction of a millisecond"),
    pytest.param(True, id="a boolean"),
    pytest.param(EPOCH_MS_RANGE[1] + 1, id="after the year 9999"),
    pytest.param(EPOCH_MS_RANGE[0] - 1, id="before the year 1"),
    pytest.param(str(10**30), id="digits beyond any date"),
    pytest.param("Wed, 08 May 2019 20:00:00 GMT", id="RFC 1123 (Jackson reads it; no client writes it)"),
]
# fmt: on


@pytest.mark.parametrize("sent", NOT_A_TIME)
def test_what_is_not_a_time_is_refused_with_a_reason(sent: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        CLIENT_TIME.validate_python(sent)
    assert caught.value.errors()[0]["msg"]


def test_the_published_epoch_range_is_all_accepted() -> None:
    low, high = EPOCH_MS_RANGE
    assert CLIENT_TIME.validate_python(low) == datetime(1, 1, 1, tzinfo=UTC)
    assert CLIENT_TIME.validate_python(high).year == 9999
    # The published pattern allows 14 digits, or 13 after a minus: all within the range.
    assert CLIENT_TIME.validate_python("9" * 14).year == 5138
    assert CLIENT_TIME.validate_python("-" + "9" * 13).year == 1653


def test_a_pickup_time_is_kept_to_the_millisecond_as_a_java_date_is() -> None:
    read = CLIENT_TIME.validate_python("2019-05-08T20:00:00.123456789Z")
    assert read == PICKUP.replace(microsecond=123000)


def test_a_pickup_time_keeps_its_offset() -> None:
    read = CLIENT_TIME.validate_python("2019-05-08T13:00:00-07:00")
    assert read == PICKUP and read.utcoffset() == timedelta(hours=-7)


@pytest.mark.parametrize(
    ("sent", "answered"),
    [
        (1557345600000, "2019-05-08T20:00:00.000Z"),
        ("2019-05-08T20:00:00.123456Z", "2019-05-08T20:00:00.123Z"),
        ("2019-05-08T20:00:00.000+0000", "2019-05-08T20:00:00.000Z"),
        ("2019-05-08T13:00:00-0700", "2019-05-08T13:00:00.000-07:00"),
    ],
)
def test_a_pickup_time_is_answered_with_exactly_three_fraction_digits(
    sent: Any, answered: str
) -> None:
    # Jackson 2.8 (the original's) reads ".123456" as 123,456 milliseconds: two minutes off.
    assert CLIENT_TIME.dump_json(CLIENT_TIME.validate_python(sent)).decode() == f'"{answered}"'


def test_queue_messages_read_the_answered_form_back_to_the_same_time() -> None:
    sent = CLIENT_TIME.validate_python("2019-05-08T20:00:00.123Z")
    text = CLIENT_TIME.dump_json(sent)
    assert TypeAdapter(IsoDateTime).validate_json(text) == sent


# --- deadline: any text, also read as a time when it is one ----------------------------


@pytest.mark.parametrize("text", ["", "LineOfDeadlyZombiatedPeople", "deadline", "x" * 256])
def test_a_deadline_is_any_text(text: str) -> None:
    assert TypeAdapter(Deadline).validate_python(text) == text


@pytest.mark.parametrize(
    ("text", "time"),
    [
        ("2019-05-09T20:00:00Z", datetime(2019, 5, 9, 20, tzinfo=UTC)),
        ("2019-05-09T20:00:00.000+0000", datetime(2019, 5, 9, 20, tzinfo=UTC)),
        (
            "2019-05-09T22:00:00+02:00",
            datetime(2019, 5, 9, 22, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2019-05-09T20:00:00", datetime(2019, 5, 9, 20, tzinfo=UTC)),
        ("2019-05-09", datetime(2019, 5, 9, tzinfo=UTC)),
        ("", None),
        ("LineOfDeadlyZombiatedPeople", None),
        ("2019-13-01", None),
        ("1557345600000", None),  # digits: a name or a number, not a time, in a free-text field
        ("20190509", None),
    ],
)
def test_a_deadline_is_also_a_time_when_its_text_is_a_date_time(
    text: str, time: datetime | None
) -> None:
    assert deadline_time(text) == time


# --- weight: a primitive double in the original ----------------------------------------


@pytest.mark.parametrize("weight", [0, 0.0, 0.5, 1000])
def test_a_weight_of_zero_and_up_is_accepted(weight: float) -> None:
    assert TypeAdapter(Weight).validate_python(weight) == weight


@pytest.mark.parametrize("weight", [-0.1, -1, 1000.5, math.nan, math.inf])
def test_a_weight_that_is_not_one_is_refused(weight: float) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Weight).validate_python(weight)
