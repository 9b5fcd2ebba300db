"""Workflow's pipeline metrics, beside the HTTP ones every service has (chassis/metrics.py).

Retries of downstream calls and breaker states are counted by the chassis' ServiceClient.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from contracts.messages import Operation

_OPERATIONS = frozenset(o.value for o in Operation)

MESSAGES_PROCESSED = Counter(
    "messages_processed_total",
    "Messages taken off the queue and settled, by operation and outcome"
    " (completed, retried, dead_lettered, abandoned)",
    ["operation", "outcome"],
)
PROCESSING_SECONDS = Histogram(
    "message_processing_seconds",
    "Time from taking a message to settling it, by operation",
    ["operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
DEAD_LETTERS = Counter(
    "dead_letters_total", "Messages workflow dead-lettered, by reason", ["reason"]
)
# Enqueued to received: how far behind the consumers are. A redelivered message may count
# from its first enqueue (SQLite keeps that time), so retries can show here too.
QUEUE_LAG = Histogram(
    "queue_lag_seconds",
    "Time a message waited in the queue before workflow received it",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)


def operation_label(properties: dict[str, str]) -> str:
    """The message's operation, or "unknown": a label never takes a value from outside."""
    operation = properties.get("operation", "delivery")
    return operation if operation in _OPERATIONS else "unknown"
