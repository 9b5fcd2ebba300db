"""Batch routes: one request carrying the bodies of many single calls.

A batch route takes up to MAX_BATCH items, each the body of one single call, and answers
200 with one result per item, in order: the status and body that item's single call would
have answered. Each item is validated on its own, so one bad item is its own 400, not the
batch's; the batch itself fails only when none of it could be tried (its datastore out:
503). Here: the envelope, and the helpers that validate items one by one and turn an
item's error into its result."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from chassis.problems import http_error_body, invalid_body, is_unavailable, problem_body

log = logging.getLogger(__name__)

# Workflow's batches are far smaller; this bounds what one request may make a service do.
MAX_BATCH = 256


class Batch(BaseModel):
    """Items as sent, each validated by the route on its own (see the module's note)."""

    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


class ItemResult(BaseModel):
    status: int = Field(ge=100, le=599)
    body: Any = None  # the single call's JSON body: the resource, or its problem details


class BatchResults(BaseModel):
    results: list[ItemResult]


M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


async def each_outcome(work: Sequence[Awaitable[T]]) -> list[T | Exception]:
    """Run the items' work concurrently: each item's result, or the error it met. A
    cancellation (or an exit) is no item's outcome: it ends the whole batch."""
    outcomes: list[T | Exception] = []
    for o in await asyncio.gather(*work, return_exceptions=True):
        if isinstance(o, BaseException) and not isinstance(o, Exception):
            raise o
        outcomes.append(o)
    return outcomes


def validated(model: type[M], items: Sequence[dict[str, Any]]) -> list[M | ItemResult]:
    """Each item as the model, or the 400 its single call would have answered."""
    out: list[M | ItemResult] = []
    for item in items:
        try:
            out.append(model.model_validate(item))
        except ValidationError as e:
            out.append(ItemResult(status=400, body=invalid_body(e.errors())))
    return out


def item_error(exc: BaseException) -> ItemResult:
    """What the single route's handlers answer for this error (chassis/problems.py)."""
    if isinstance(exc, HTTPException):
        return ItemResult(status=exc.status_code, body=http_error_body(exc))
    if is_unavailable(exc):
        log.warning("unavailable on a batch item: %r", exc)
        detail = "a server it depends on is unavailable"
        return ItemResult(status=503, body=problem_body(503, "Service Unavailable", detail))
    log.error("unhandled error on a batch item", exc_info=exc)
    return ItemResult(
        status=500, body=problem_body(500, "Internal Server Error", "the error was logged")
    )


def merged(checked: Sequence[object], answered: Sequence[ItemResult]) -> Response:
    """The results in item order: the refused items' own, then one answer per valid item,
    in the order the valid items came; as the route's response, BatchResults' JSON.

    Written by pydantic's serializer in one call: returned as a model, the results would be
    validated again by FastAPI (the route's response_model, kept for the API's docs) and
    turned into plain data before being encoded, at every item of every batch."""
    answers = iter(answered)
    results = [c if isinstance(c, ItemResult) else next(answers) for c in checked]
    return Response(
        BatchResults.model_construct(results=results).model_dump_json(),
        media_type="application/json",
    )
