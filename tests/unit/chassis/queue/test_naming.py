"""A queue URL names its queue; the default, when it names none, is the service's to give
(chassis/queue/__init__.py: with_default_queue), and an adapter given none refuses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from chassis.queue import QueueOptions, connect_message_queue, with_default_queue
from chassis.queue.rabbitmq import RabbitTarget


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("sqlite:///data/queue.db", "sqlite:///data/queue.db?queue=q"),
        ("sqlite:///data/queue.db?queue=", "sqlite:///data/queue.db?queue=q"),
        ("sqlite:///data/queue.db?queue=mine", "sqlite:///data/queue.db?queue=mine"),
        ("amqp://u:p@rabbit:5672/%2F", "amqp://u:p@rabbit:5672/%2F?queue=q"),
        ("amqps://u:p@rabbit/%2F?heartbeat=30", "amqps://u:p@rabbit/%2F?heartbeat=30&queue=q"),
        (
            "amqp://u:p@rabbit/%2F?queue=mine&heartbeat=30",
            "amqp://u:p@rabbit/%2F?queue=mine&heartbeat=30",
        ),
        (
            "servicebus://ns.servicebus.windows.net/mine",
            "servicebus://ns.servicebus.windows.net/mine",
        ),
    ],
)
def test_a_url_without_a_queue_gets_the_default(url: str, named: str) -> None:
    assert with_default_queue(url, "q") == named


def test_an_amqp_url_without_a_queue_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\?queue=NAME"):
        RabbitTarget.parse("amqp://u:p@rabbit:5672/%2F?heartbeat=30")
    assert RabbitTarget.parse("amqp://u:p@rabbit/%2F?queue=q&heartbeat=30").queue == "q"


async def test_a_sqlite_url_without_a_queue_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\?queue=NAME"):
        await connect_message_queue(f"sqlite:///{tmp_path}/q.db", QueueOptions())
    assert not (tmp_path / "q.db").exists()
