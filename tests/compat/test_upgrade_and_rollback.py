"""The previous release and the current code on one queue and one set of stores, both ways.

Upgrade: the previous release accepts and processes a delivery (its documents: ingestion's
record, the package, the drone and its claim, the delivery), then, with its workflow
stopped, leaves a create and a reschedule on the queue. The current code then takes over:
its workflow processes the previous release's messages against the previous release's
documents, and its ingestion reschedules and cancels deliveries whose records the previous
release wrote.

Rollback (or the side-by-side release's old half): the current code leaves a create and a
cancel on the queue, the previous release takes over, processes them against what the
current code wrote, and its ingestion reschedules a delivery the current code accepted.

Each step is checked through the services' APIs (delivery, assignment, package), and a
message a release could not read shows up in the failure as a dead letter.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.harness import (
    CURRENT,
    Client,
    Releases,
    dependencies_differ,
    footing,
    previous_services,
)

PREVIOUS = "previous"


@pytest.fixture(params=["embedded", "servers"])
def releases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Releases]:
    previous = previous_services()
    if differ := dependencies_differ():
        print(f"the previous release runs on this venv; changed since: {', '.join(differ)}")
    with footing(request.param, tmp_path) as where:
        both = Releases(where, tmp_path / "logs", previous)
        try:
            yield both
        finally:
            both.down()
            print(f"\ncompat logs in {tmp_path / 'logs'}")


def test_each_release_processes_what_the_other_queued_and_wrote(releases: Releases) -> None:
    client = Client(releases)
    # The previous release alone: documents of every kind, then messages left queued.
    releases.run(PREVIOUS)
    one = client.create(1)
    client.scheduled(one, 1, "47.61,-122.31")
    releases.stop("workflow")
    two = client.create(2)
    client.reschedule(one, "47.7,-122.4")

    # Upgrade: the current code reads the previous release's messages and documents.
    releases.run(CURRENT)
    client.scheduled(two, 2, "47.62,-122.32")
    client.scheduled(one, 1, "47.7,-122.4")
    client.reschedule(two, "47.72,-122.42")  # records the previous release wrote
    client.cancel(one)
    client.scheduled(two, 2, "47.72,-122.42")
    client.cancelled(one)

    # Rollback: the previous release reads what the current code queued and wrote.
    releases.stop("workflow")
    three = client.create(3)
    client.cancel(two)
    releases.run(PREVIOUS)
    client.scheduled(three, 3, "47.63,-122.33")
    client.cancelled(two)
    client.reschedule(three, "47.73,-122.43")  # a record the current code wrote
    client.scheduled(three, 3, "47.73,-122.43")
    assert releases.dead_letters() == []
