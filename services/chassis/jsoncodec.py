"""JSON to and from bytes, fast: every document written and every call between services
goes through here, and the standard library's encoder took a fifth of the drone
scheduler's CPU (its documents carry a schedule).

Integers must fit in 64 bits (orjson's limit; Cosmos DB keeps numbers as doubles, so no
store could promise more): a larger one is refused by name rather than rounded.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as e:
        raise ValueError(f"not storable as JSON: {e}") from e


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
