"""The load: deliveries' lives as clients live them, through the entry point, with tokens.

Each delivery follows a plan drawn at random (weights in PLANS): created, then perhaps
rescheduled (one field: pickupLocation, dropOffLocation, pickupTime or deadline; or two
quick reschedules changing different fields, the second sent as soon as the first is
answered), perhaps cancelled (later, or at once after the 202). A delivery's operations are
sent one after the other, each once the previous one was acknowledged, so "the last
acknowledged operation" is well defined. A few requests cannot be planned (pickupTime in
year 9999: schema-valid, unplannable): they are injected poison, and must end Failed with
a reason (or be refused at the door with a 400 naming pickupTime).

Every request carries the owner's writer token. A failed attempt (5xx, 429, connection
error, timeout) is sent again, the same request and the same Idempotency-Key, until it is
answered, for up to REQUEST_RETRY_SECONDS; then the delivery's plan stops there.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.conftest import GUIDE_REQUEST

PATH = "/api/deliveryrequests"
ATTEMPT_TIMEOUT = 10.0  # one attempt
REQUEST_RETRY_SECONDS = 60.0  # one operation, all its attempts
REPLAY_EVERY = 100  # every 100th create is sent once more, same key and body
UNPLANNABLE_TIME = "9999-12-31T23:59:59.000Z"
# How long after a create's 202 a later operation is sent (not "at once"): some land before
# workflow has scheduled the delivery, most after.
LATER = (0.5, 8.0)


class Kind(enum.StrEnum):
    CREATE = "create"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"


# Plan -> weight. Each plan is the list of steps after the create (see _steps).
PLANS: dict[str, int] = {
    "create": 40,
    "pickupLocation": 8,
    "dropOffLocation": 8,
    "pickupTime": 8,
    "deadline": 8,
    "two quick reschedules": 10,
    "reschedule, cancel": 4,
    "cancel later": 7,
    "cancel at once": 7,
}
UNPLANNABLE = "unplannable"


@dataclass
class Op:
    kind: Kind
    body: dict[str, Any]  # create: the request; reschedule: the fields; cancel: {}
    answer: int | None = None  # the status that settled it (2xx, or a 4xx)
    attempts: int = 0
    gave_up: bool = False
    acked_at: float | None = None  # seconds since the load began

    @property
    def acked(self) -> bool:
        return self.answer is not None and 200 <= self.answer < 300


@dataclass
class Delivery:
    """One delivery's life: its plan and what was sent for it."""

    index: int
    plan: str
    key: str
    delivery_id: str | None = None
    ops: list[Op] = field(default_factory=list)
    refused: str = ""  # a 4xx answer's body, for the report

    @property
    def acked(self) -> list[Op]:
        return [op for op in self.ops if op.acked]

    @property
    def unsettled(self) -> bool:
        """An operation was given up on or refused: what it did is not known."""
        return any(op.gave_up or (op.answer is not None and not op.acked) for op in self.ops)


@dataclass
class Load:
    total: int
    rate: float
    tag: str
    owner: str
    unplannable: int
    burst: int = 1
    started: float = field(default_factory=time.monotonic)
    deliveries: list[Delivery] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)  # per attempt: status or error
    retried: int = 0  # operations acknowledged after more than one attempt
    replays: int = 0
    replay_mismatches: list[str] = field(default_factory=list)
    creates_acked: int = 0
    done: float | None = None
    progressed: asyncio.Event = field(default_factory=asyncio.Event)  # an ack, or the end

    def now(self) -> float:
        return time.monotonic() - self.started

    def ops(self, kind: Kind) -> list[Op]:
        return [op for d in self.deliveries for op in d.ops if op.kind is kind]


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _spot(rng: random.Random) -> str:
    """A point in Seattle, as "latitude,longitude"."""
    return f"{47.55 + rng.random() * 0.12:.5f},{-122.40 + rng.random() * 0.12:.5f}"


def _later(rng: random.Random, low_minutes: int, high_minutes: int) -> str:
    return _stamp(datetime.now(UTC) + timedelta(minutes=rng.randint(low_minutes, high_minutes)))


def _create(load: Load, index: int, rng: random.Random, plan: str) -> dict[str, Any]:
    return {
        **GUIDE_REQUEST,
        "ownerId": load.owner,
        "pickupLocation": _spot(rng),
        "dropOffLocation": _spot(rng),
        # Later today: no trip has begun (or ended) while its delivery's operations come.
        "pickupTime": UNPLANNABLE_TIME if plan == UNPLANNABLE else _later(rng, 30, 120),
        "deadline": _later(rng, 180, 300) if rng.random() < 0.5 else "",
        "packageInfo": {**GUIDE_REQUEST["packageInfo"], "packageId": f"{load.tag}-{index:05d}"},
    }


def _change(field_name: str, rng: random.Random) -> dict[str, Any]:
    if field_name in ("pickupLocation", "dropOffLocation"):
        return {field_name: _spot(rng)}
    if field_name == "pickupTime":
        return {field_name: _later(rng, 30, 120)}
    return {field_name: _later(rng, 300, 480)}  # deadline


def _steps(plan: str, rng: random.Random) -> list[tuple[float, Kind, dict[str, Any]]]:
    """What follows the create: (seconds to wait after the previous answer, kind, body)."""
    later = rng.uniform(*LATER)
    if plan in ("pickupLocation", "dropOffLocation", "pickupTime", "deadline"):
        return [(later, Kind.RESCHEDULE, _change(plan, rng))]
    if plan == "two quick reschedules":
        first, second = rng.sample(["pickupLocation", "dropOffLocation", "pickupTime"], 2)
        return [
            (later, Kind.RESCHEDULE, _change(first, rng)),
            (0.0, Kind.RESCHEDULE, _change(second, rng)),
        ]
    if plan == "reschedule, cancel":
        return [
            (later, Kind.RESCHEDULE, _change("pickupLocation", rng)),
            (rng.uniform(*LATER), Kind.CANCEL, {}),
        ]
    if plan == "cancel later":
        return [(later, Kind.CANCEL, {})]
    if plan == "cancel at once":
        return [(0.0, Kind.CANCEL, {})]
    return []


def plan_of(load: Load, index: int, rng: random.Random) -> str:
    """Mostly drawn by weight; the unplannable requests spread through the second half of the
    load (after the scheduler's freeze, whose stuck bookings they would crowd out)."""
    half = load.total // 2
    if load.unplannable and index >= half:
        every = max((load.total - half) // (load.unplannable + 1), 1)
        n, offset = divmod(index - half, every)
        if offset == every // 2 and n < load.unplannable:
            return UNPLANNABLE
    return rng.choices(list(PLANS), weights=list(PLANS.values()))[0]


async def _send(
    client: httpx.AsyncClient, load: Load, op: Op, method: str, path: str, key: str = ""
) -> httpx.Response | None:
    """Send until answered (2xx or a 4xx other than 429), the same request every time."""
    deadline = time.monotonic() + REQUEST_RETRY_SECONDS
    pause = 0.1
    headers = {"Idempotency-Key": key} if key else {}
    while True:
        op.attempts += 1
        wait = pause
        try:
            body = op.body if method != "DELETE" else None
            r = await client.request(method, path, json=body, headers=headers)
            load.outcomes[f"{method} {r.status_code}"] += 1
            if r.status_code < 500 and r.status_code != 429:
                op.answer = r.status_code
                if op.acked:
                    op.acked_at = load.now()
                    load.retried += op.attempts > 1
                return r
            retry_after = r.headers.get("Retry-After", "")
            if retry_after.isdigit():
                wait = max(wait, min(float(retry_after), 2.0))
        except httpx.TransportError as e:
            load.outcomes[f"{method} {type(e).__name__}"] += 1
        if time.monotonic() + wait > deadline:
            op.gave_up = True
            return None
        await asyncio.sleep(wait)
        pause = min(pause * 2, 2.0)


async def _live(client: httpx.AsyncClient, load: Load, d: Delivery, rng: random.Random) -> None:
    create = Op(Kind.CREATE, _create(load, d.index, rng, d.plan))
    d.ops.append(create)
    r = await _send(client, load, create, "POST", PATH, d.key)
    if r is None or not create.acked:
        d.refused = "" if r is None else f"{r.status_code} {r.text[:300]}"
        return
    d.delivery_id = str(r.json()["deliveryId"])
    load.creates_acked += 1
    load.progressed.set()
    if d.index % REPLAY_EVERY == REPLAY_EVERY // 2:
        # The client never saw the 202 (say): the same request again must be the same
        # delivery, not a second one.
        again = await _send(client, load, Op(Kind.CREATE, create.body), "POST", PATH, d.key)
        load.replays += 1
        again_id = None if again is None else again.json().get("deliveryId")
        if again_id != d.delivery_id:
            load.replay_mismatches.append(f"{d.key}: {d.delivery_id} then {again_id}")
    for wait, kind, body in _steps(d.plan, rng):
        await asyncio.sleep(wait)
        op = Op(kind, body)
        d.ops.append(op)
        method = "PATCH" if kind is Kind.RESCHEDULE else "DELETE"
        r = await _send(client, load, op, method, f"{PATH}/{d.delivery_id}")
        if not op.acked:
            d.refused = "" if r is None else f"{r.status_code} {r.text[:300]}"
            return


async def run_load(url: str, writer: dict[str, str], load: Load, connections: int) -> None:
    """Start deliveries' lives in bursts of `load.burst`, `load.rate` a second on average
    (clients come in clumps, and a clump makes bookings meet); return when all have ended."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    # No pool timeout: waiting for a connection is the client's queue, not a failed attempt.
    timeout = httpx.Timeout(ATTEMPT_TIMEOUT, pool=None)
    lives: list[asyncio.Task[None]] = []
    try:
        async with httpx.AsyncClient(
            base_url=url, timeout=timeout, limits=limits, headers=writer
        ) as client:
            for index in range(load.total):
                due = load.started + (index // load.burst) * load.burst / load.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                rng = random.Random(f"{load.tag}-{index}")
                d = Delivery(
                    index, plan_of(load, index, rng), f"{load.tag}-{index:05d}-{uuid.uuid4().hex}"
                )
                load.deliveries.append(d)
                lives.append(asyncio.create_task(_live(client, load, d, rng)))
            await asyncio.gather(*lives)
    finally:
        for life in lives:
            life.cancel()
        load.done = load.now()
        load.progressed.set()  # the chaos must not wait for progress that will not come
