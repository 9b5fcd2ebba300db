"""What the system shows at the end, read through its APIs only, and the verdict on it.

Read: each delivery's status and record (GET /api/deliveries/{id}[/status], with an
admin-role token), its drone assignment (the drone scheduler's GET /api/dronedeliveries/{id},
internal), the fleet's schedules (GET /api/drones), the owner's monthly count (GET
/api/deliveries/summary) and the dead letters (python -m workflow.deadletters list --json).

For each delivery, the last acknowledged operation is what the final state must show:
- a cancel: status Cancelled, no drone holds a window for it, its assignment Cancelled or
  absent;
- otherwise scheduled with the latest acknowledged values of every field: the record's
  pickup and dropoff are the points the latest request for each named ("lat,lon" text is
  used as it is: workflow/locations.py), its deadline the latest deadline, the assignment's
  request the same pickup and dropoff and the latest pickupTime, the assignment on the
  record's drone, and the drone holding its window that one.
Each acknowledged operation is then applied, lost (its effect shows nowhere: every field it
set shows an older value, or a cancel that did not happen) or misapplied (it shows in part:
in one service and not the other, some fields not others, the plan and the record
disagreeing, a window kept after a cancel). Double-booked: the delivery on two drones, or
its window overlapping another's on one drone (counted against its last operation).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import Awaitable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.chaos.load import UNPLANNABLE, Delivery, Kind, Load, Op

APPLIED, LOST, MISAPPLIED = "applied", "lost", "misapplied"
SCHEDULED_STAGES = frozenset(
    {"Created", "Rescheduled", "HeadedToPickup", "HeadedToDropoff", "Completed"}
)
# Assignment statuses that hold no booking (any other is a booked one, whatever its name).
# Assignment states that hold no drone ("Released": freed because the delivery failed).
NOT_BOOKED = frozenset({"Cancelled", "Booking", "Failed", "Released"})
FIELDS = ("pickupLocation", "dropOffLocation", "pickupTime", "deadline")
COLUMNS = ("acknowledged", APPLIED, LOST, MISAPPLIED, "double-booked", "dead-lettered")
POISON_ROW = "poison (injected)"


# ------------------------------------------------------------------------- what is seen


@dataclass
class Seen:
    stage: str | None = None  # None: 404
    record: dict[str, Any] | None = None
    assignment: dict[str, Any] | None = None


@dataclass
class Observed:
    deliveries: dict[str, Seen] = field(default_factory=dict)
    fleet: list[dict[str, Any]] = field(default_factory=list)
    fleet_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    summary: dict[str, int] = field(default_factory=dict)  # "YYYY-MM" -> count
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    queue_left: int | None = None
    drain_seconds: float = 0.0
    pages: int = 0  # drone_pages documents at the end: the schedules were paged


async def gather_limited(coroutines: Iterable[Awaitable[None]], limit: int = 16) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(c: Awaitable[None]) -> None:
        async with gate:
            await c

    await asyncio.gather(*(one(c) for c in coroutines))


class Reader:
    """Reads the system's state; every call bounded, a failed read is a missing answer."""

    def __init__(self, delivery_url: str, scheduler_url: str, admin: dict[str, str]) -> None:
        self._delivery = httpx.AsyncClient(base_url=delivery_url, timeout=15.0, headers=admin)
        self._scheduler = httpx.AsyncClient(base_url=scheduler_url, timeout=15.0)

    async def __aenter__(self) -> Reader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._delivery.aclose()
        await self._scheduler.aclose()

    async def _json(self, client: httpx.AsyncClient, path: str, **params: str) -> Any:
        r = await client.get(path, params=params or None)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    async def delivery(self, delivery_id: str) -> Seen:
        status = await self._json(self._delivery, f"/api/deliveries/{delivery_id}/status")
        return Seen(
            stage=None if status is None else str(status["stage"]),
            record=await self._json(self._delivery, f"/api/deliveries/{delivery_id}"),
            assignment=await self._json(self._scheduler, f"/api/dronedeliveries/{delivery_id}"),
        )

    async def deliveries(self, ids: Iterable[str], into: dict[str, Seen]) -> None:
        async def one(delivery_id: str) -> None:
            # Not answered this time: asked again, or judged as unseen.
            with contextlib.suppress(httpx.HTTPError):
                into[delivery_id] = await self.delivery(delivery_id)

        await gather_limited(one(i) for i in ids)

    async def fleet(self) -> list[dict[str, Any]]:
        fleet: list[dict[str, Any]] = await self._json(self._scheduler, "/api/drones")
        return fleet

    async def summary(self, owner: str, months: Iterable[str]) -> dict[str, int]:
        counts = {}
        for month in sorted(months):
            found = await self._json(
                self._delivery,
                "/api/deliveries/summary",
                ownerId=owner,
                year=month[:4],
                month=str(int(month[5:])),
            )
            counts[month] = int(found["count"])
        return counts


# ------------------------------------------------------------------------- the bookings


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Bookings:
    """Who holds which window: the drones' schedules are the truth about bookings."""

    holders: dict[str, list[str]]  # delivery id -> drones holding a window for it
    overlaps: list[str]  # "drone: a until t overlaps b from u"
    overlapping: set[str]  # delivery ids in an overlap

    @classmethod
    def of(cls, seen: Observed) -> Bookings:
        holders: dict[str, list[str]] = defaultdict(list)
        windows: dict[str, dict[str, tuple[datetime, datetime]]] = defaultdict(dict)
        for drone in seen.fleet:
            for w in drone["schedule"]:
                holders[w["deliveryId"]].append(drone["id"])
                windows[drone["id"]][w["deliveryId"]] = (
                    _at(w["departure"]),
                    _at(w["deliveryETA"]),
                )
        # A finished trip is pruned from its drone: its assignment still tells where it was.
        for delivery_id, s in seen.deliveries.items():
            a = s.assignment
            if (
                a is not None
                and a["status"] not in NOT_BOOKED
                and delivery_id not in holders
                and _at(a["deliveryETA"]) <= seen.fleet_at
            ):
                windows[a["droneId"]][delivery_id] = (
                    _at(a["departure"]["time"]),
                    _at(a["deliveryETA"]),
                )
        overlaps: list[str] = []
        overlapping: set[str] = set()
        for drone_id, held in windows.items():
            spans = sorted(held.items(), key=lambda kv: kv[1][0])
            for n, (a_id, (_, a_end)) in enumerate(spans):
                for b_id, (b_start, _) in spans[n + 1 :]:
                    if b_start >= a_end:
                        break
                    overlaps.append(
                        f"{drone_id}: {a_id} until {a_end} overlaps {b_id} from {b_start}"
                    )
                    overlapping |= {a_id, b_id}
        return cls(dict(holders), overlaps, overlapping)


# ------------------------------------------------------------------------- one delivery


def _point(text: str) -> tuple[float, float]:
    lat, lon = text.split(",")[:2]
    return float(lat), float(lon)


def _place(p: dict[str, Any] | None) -> tuple[float, float] | None:
    return None if p is None else (float(p["latitude"]), float(p["longitude"]))


def _time(text: str | None) -> datetime | str | None:
    if not text:
        return text
    try:
        return _at(text)
    except ValueError:
        return text


def _shown(name: str, seen: Seen) -> dict[str, Any]:
    """Where the final state shows a request field, and its value there."""
    record, request = seen.record or {}, (seen.assignment or {}).get("request", {})
    if name == "pickupLocation":
        return {"record": _place(record.get("pickup")), "plan": _place(request.get("pickup"))}
    if name == "dropOffLocation":
        return {"record": _place(record.get("dropoff")), "plan": _place(request.get("dropoff"))}
    if name == "pickupTime":
        return {"plan": _time(request.get("pickupTime"))}
    return {"record": _time(record.get("deadline"))}


def _wanted(name: str, value: str) -> Any:
    return _point(value) if name in ("pickupLocation", "dropOffLocation") else _time(value)


@dataclass
class Verdict:
    ops: dict[int, str] = field(default_factory=dict)  # index in Delivery.ops -> outcome
    double_booked: bool = False
    why: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.double_booked and all(o == APPLIED for o in self.ops.values())


def judge_delivery(d: Delivery, seen: Seen, bookings: Bookings) -> Verdict:
    acked = [(i, op) for i, op in enumerate(d.ops) if op.acked]
    v = Verdict({i: APPLIED for i, _ in acked})
    if not acked or d.delivery_id is None:
        return v
    held = bookings.holders.get(d.delivery_id, [])
    if len(held) > 1 or d.delivery_id in bookings.overlapping:
        v.double_booked = True
        v.why.append(f"windows on {held}" if len(held) > 1 else "its window overlaps another")
    last_i, last = acked[-1]
    nothing = seen.stage is None and seen.record is None and seen.assignment is None and not held

    def fault(i: int, outcome: str, why: str) -> None:
        if v.ops[i] != MISAPPLIED:
            v.ops[i] = outcome
        v.why.append(f"{d.ops[i].kind} #{i}: {outcome}: {why}")

    if d.plan == UNPLANNABLE:
        reason = (seen.record or {}).get("failureReason")
        if seen.stage != "Failed" or not reason:
            fault(last_i, LOST if nothing else MISAPPLIED, f"stage {seen.stage}, reason {reason!r}")
        if held:
            fault(last_i, MISAPPLIED, f"holds a window on {held}")
        return v
    if nothing:
        for i, _ in acked:
            fault(i, LOST, "no status, no record, no drone assignment")
        return v
    if last.kind is Kind.CANCEL:
        plan_status = (seen.assignment or {}).get("status", "absent")
        says = seen.stage == "Cancelled"
        plan_says = plan_status in ("Cancelled", "absent")
        if not says and not plan_says:
            fault(last_i, LOST, f"stage {seen.stage}, assignment {plan_status}, windows {held}")
        elif not (says and plan_says and not held):
            fault(
                last_i, MISAPPLIED, f"stage {seen.stage}, assignment {plan_status}, windows {held}"
            )
        return v
    _judge_scheduled(d, seen, held, acked, fault)
    return v


def _judge_scheduled(
    d: Delivery, seen: Seen, held: list[str], acked: list[tuple[int, Op]], fault: Any
) -> None:
    last_i = acked[-1][0]
    if seen.stage not in SCHEDULED_STAGES or seen.record is None or seen.assignment is None:
        fault(
            last_i,
            MISAPPLIED,
            f"stage {seen.stage}; record {'found' if seen.record else 'missing'};"
            f" assignment {'found' if seen.assignment else 'missing'}",
        )
        return
    record, plan = seen.record, seen.assignment
    drone = record.get("droneId")
    booked = plan["status"] not in NOT_BOOKED
    if plan["droneId"] != drone or not booked or (held and held != [drone]):
        fault(
            last_i,
            MISAPPLIED,
            f"record on {drone}, assignment {plan['status']} on {plan['droneId']}, windows {held}",
        )
    # The latest acknowledged value of each field, and which operation set it.
    latest: dict[str, tuple[int, str]] = {}
    for i, op in acked:
        for name in FIELDS:
            if name in op.body:
                latest[name] = (i, op.body[name])
    per_op: dict[int, list[str]] = defaultdict(list)  # op -> "match" / "nowhere" / "partly"
    notes: dict[int, list[str]] = defaultdict(list)
    for name, (i, value) in latest.items():
        wanted = _wanted(name, value)
        places = _shown(name, seen)
        matching = [p for p, shown in places.items() if shown == wanted]
        if len(matching) == len(places):
            per_op[i].append("match")
            continue
        per_op[i].append("partly" if matching else "nowhere")
        notes[i].append(f"{name} {value!r}, shown {places}")
    for i, found in per_op.items():
        if all(f == "match" for f in found):
            continue
        # A create always shows (the delivery is there): its wrong fields are misapplied.
        lost = all(f == "nowhere" for f in found) and d.ops[i].kind is Kind.RESCHEDULE
        fault(i, LOST if lost else MISAPPLIED, "; ".join(notes[i]))


# ------------------------------------------------------------------------- all of them


def _delivery_of(entry: dict[str, Any]) -> str:
    """The delivery a dead letter is about, from its body ("" if it cannot be read)."""
    try:
        return str(json.loads(str(entry.get("body", ""))).get("deliveryId", ""))
    except (ValueError, AttributeError):
        return ""


def _dead_letter_row(entry: dict[str, Any], poison: set[str], unplannable: set[str]) -> str:
    if str(entry["messageId"]) in poison:
        return POISON_ROW
    if _delivery_of(entry) in unplannable:
        return POISON_ROW
    operation = str(entry.get("operation") or "delivery")
    return {"delivery": Kind.CREATE, "reschedule": Kind.RESCHEDULE, "cancel": Kind.CANCEL}.get(
        operation, Kind.CREATE
    ).value


@dataclass
class Report:
    table: dict[str, Counter[str]]  # row -> column -> count
    checks: list[tuple[str, str, str]]  # what, value, expected (FAILED marked)
    failures: list[str]
    evidence: list[str]
    suspects: list[str]  # ids to look for in the logs


def judge(load: Load, seen: Observed, poison: list[str]) -> Report:
    bookings = Bookings.of(seen)
    table: dict[str, Counter[str]] = {k.value: Counter() for k in Kind}
    table[POISON_ROW] = Counter()
    failures: list[str] = []
    evidence: dict[str, list[str]] = defaultdict(list)
    suspects: list[str] = []
    known = {d.delivery_id for d in load.deliveries if d.delivery_id}
    unplannable = {
        d.delivery_id for d in load.deliveries if d.plan == UNPLANNABLE and d.delivery_id
    }
    unsettled = [d for d in load.deliveries if d.unsettled and d.plan != UNPLANNABLE]

    dead_by_delivery: dict[str, list[str]] = defaultdict(list)
    for entry in seen.dead_letters:
        delivery_id = _delivery_of(entry)
        if delivery_id:
            dead_by_delivery[delivery_id].append(f"{entry.get('operation')} {entry['reason']}")
    for d in load.deliveries:
        if d.plan == UNPLANNABLE:
            row = table[POISON_ROW]
            row["acknowledged"] += 1
            if d.ops and d.ops[0].answer == 400 and "pickupTime" in d.refused:
                row[APPLIED] += 1  # refused at the door, naming the field
                continue
            if d.delivery_id is None:
                row[LOST] += 1
                evidence["unplannable not answered"].append(f"#{d.index}: {d.refused or 'gave up'}")
                continue
        elif d.unsettled or d.delivery_id is None:
            continue
        assert d.delivery_id is not None
        v = judge_delivery(d, seen.deliveries.get(d.delivery_id, Seen()), bookings)
        for i, outcome in v.ops.items():
            row = table[POISON_ROW if d.plan == UNPLANNABLE else d.ops[i].kind.value]
            row["acknowledged"] += 1
            row[outcome] += 1
        if v.double_booked:
            last = [op for op in d.ops if op.acked][-1]
            table[last.kind.value]["double-booked"] += 1
        if not v.ok:
            suspects.append(d.delivery_id)
            dead = dead_by_delivery.get(d.delivery_id)
            also = f" | dead-lettered: {', '.join(dead)}" if dead else ""
            evidence[f"{d.plan}"].append(f"{d.delivery_id}: " + " | ".join(v.why) + also)
    table[POISON_ROW]["acknowledged"] += len(poison)
    for d in unsettled:
        last = d.ops[-1]
        evidence["given up or refused"].append(
            f"#{d.index} ({d.plan}): {last.kind} {'gave up' if last.gave_up else d.refused}"
        )

    dead = Counter(str(e["messageId"]) for e in seen.dead_letters)
    for entry in seen.dead_letters:
        table[_dead_letter_row(entry, set(poison), unplannable)]["dead-lettered"] += 1
    missing_poison = sorted(set(poison) - set(dead))
    table[POISON_ROW][APPLIED] += len(poison) - len(missing_poison)
    table[POISON_ROW][LOST] += len(missing_poison)
    for entry in seen.dead_letters:
        if _dead_letter_row(entry, set(poison), unplannable) != POISON_ROW:
            evidence["dead letter"].append(
                f"{entry['messageId']} {entry.get('operation')}: {entry['reason']}:"
                f" {str(entry.get('description'))[:200]}"
            )

    for name, row in table.items():
        bad = {c: row[c] for c in (LOST, MISAPPLIED, "double-booked") if row[c]}
        if name != POISON_ROW and row["dead-lettered"]:
            bad["dead-lettered"] = row["dead-lettered"]
        if bad:
            failures.append(f"{name}: " + ", ".join(f"{c} {n}" for c, n in bad.items()))

    checks = _system_checks(load, seen, bookings, known, unsettled, failures)
    return Report(
        table=table,
        checks=checks,
        failures=failures,
        evidence=[
            f"{label} ({len(items)}): " + "; ".join(items[:6]) for label, items in evidence.items()
        ],
        suspects=suspects[:3],
    )


def _system_checks(
    load: Load,
    seen: Observed,
    bookings: Bookings,
    known: set[str | None],
    unsettled: list[Delivery],
    failures: list[str],
) -> list[tuple[str, str, str]]:
    """The checks the chaos test always made: none lost, none duplicated, no overlaps."""
    rows: list[tuple[str, str, str]] = []

    def row(what: str, value: object, expected: str = "", ok: bool = True) -> None:
        rows.append((what, str(value), expected if ok else f"{expected}  <-- FAILED"))
        if not ok:
            failures.append(f"{what}: {value} (expected {expected})")

    normal = [d for d in load.deliveries if d.plan != UNPLANNABLE]
    acked = [d for d in normal if d.delivery_id]
    ids = [d.delivery_id for d in acked]
    to_schedule = {
        d.delivery_id for d in acked if not d.unsettled and d.acked[-1].kind is not Kind.CANCEL
    }
    scheduled = {i for i, s in seen.deliveries.items() if s.stage in SCHEDULED_STAGES}
    strangers = sorted(set(bookings.holders) - known)
    on_two = sorted(i for i, drones in bookings.holders.items() if len(drones) > 1)
    counted = sum(seen.summary.values())
    gave_up = [d for d in unsettled if any(op.gave_up for op in d.ops)]
    refused = [d for d in unsettled if d not in gave_up]
    replays_ok = load.replays - len(load.replay_mismatches)

    row("deliveries started", len(load.deliveries))
    row("operations sent", ", ".join(f"{k}: {len(load.ops(k))}" for k in Kind))
    row("attempts by answer", ", ".join(f"{k}: {n}" for k, n in sorted(load.outcomes.items())))
    row("acknowledged after a retry", load.retried)
    row("given up after 60 s", len(gave_up), "0", not gave_up)
    row("refused (4xx)", len(refused), "0", not refused)
    row("creates acknowledged (202)", len(acked), f"== {len(normal)}", len(acked) == len(normal))
    row("ids issued twice", len(ids) - len(set(ids)), "0", len(ids) == len(set(ids)))
    row(
        "scheduled at the end",
        len(scheduled & to_schedule),
        f"== {len(to_schedule)} (last op not a cancel)",
        to_schedule <= scheduled,
    )
    cancelled_but_on = scheduled & ({i for i in ids if i} - to_schedule)
    row("scheduled though cancelled", len(cancelled_but_on), "0", not cancelled_but_on)
    row("ids with windows on 2+ drones", len(on_two), "0", not on_two)
    row("windows for unacknowledged ids", len(strangers), "0", not strangers)
    row(
        "owner's delivery count",
        f"{counted} ({', '.join(f'{m}: {c}' for m, c in sorted(seen.summary.items()) if c)})",
        f"== {len(to_schedule)}",
        counted == len(to_schedule),
    )
    row(
        "same key, same id (replays)",
        f"{replays_ok}/{load.replays}",
        "all",
        replays_ok == load.replays,
    )
    row(
        "drones double-booked",
        len({o.split(":")[0] for o in bookings.overlaps}),
        "0",
        not bookings.overlaps,
    )
    row("overlapping window pairs", len(bookings.overlaps), "0", not bookings.overlaps)
    row("schedule pages at the end", seen.pages, "> 0 (pages of 4 windows)", seen.pages > 0)
    row(
        "dead letters by reason",
        ", ".join(
            f"{r}: {n}" for r, n in Counter(str(d["reason"]) for d in seen.dead_letters).items()
        )
        or "none",
    )
    return rows


def months_of(seen: Observed) -> set[str]:
    months = {w["departure"][:7] for d in seen.fleet for w in d["schedule"]}
    for s in seen.deliveries.values():
        if s.assignment is not None:
            months.add(s.assignment["departure"]["time"][:7])
    months.add(datetime.now(UTC).strftime("%Y-%m"))
    return months


def settled(load: Load, seen: Observed) -> Iterator[str]:
    """The ids whose delivery already shows what it must (for the wait before judging)."""
    bookings = Bookings.of(seen)
    for d in load.deliveries:
        if d.delivery_id is None or d.unsettled:
            continue
        s = seen.deliveries.get(d.delivery_id)
        if s is not None and judge_delivery(d, s, bookings).ok:
            yield d.delivery_id
