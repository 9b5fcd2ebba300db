"""Ingestion's own metrics, beside the HTTP ones every service has (chassis/metrics.py)."""

from __future__ import annotations

from prometheus_client import Histogram

# A send waits for the queue's durable acknowledgement before the 202: this is that wait.
ENQUEUE_SECONDS = Histogram(
    "enqueue_seconds",
    "Time for the queue to store a message durably, by operation and outcome (ok, error)",
    ["operation", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
