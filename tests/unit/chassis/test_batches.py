"""A batch route's answer: every item's result in order, written as BatchResults' JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from pydantic import BaseModel, Field

from chassis.batches import ItemResult, merged, validated


class Stop(BaseModel):
    name: str = Field(min_length=1)
    at: datetime


def test_results_come_in_item_order_with_models_written_as_json() -> None:
    checked = validated(
        Stop,
        [
            {"name": "a", "at": "2030-05-08T20:00:00+00:00"},
            {"name": "", "at": "2030-05-08T20:00:00+00:00"},
            {"name": "c", "at": "2030-05-09T20:00:00Z"},
        ],
    )
    stops = [c for c in checked if isinstance(c, Stop)]
    answered = [ItemResult(status=200, body=s) for s in stops[:1]]
    answered.append(ItemResult(status=204))

    response = merged(checked, answered)

    assert response.media_type == "application/json"
    results = orjson.loads(bytes(response.body))["results"]
    assert [r["status"] for r in results] == [200, 400, 204]
    assert results[0]["body"] == {"name": "a", "at": "2030-05-08T20:00:00Z"}
    assert results[1]["body"]["errors"][0]["field"] == "name"
    assert results[2]["body"] is None
    assert datetime.fromisoformat(results[0]["body"]["at"]) == datetime(2030, 5, 8, 20, tzinfo=UTC)
