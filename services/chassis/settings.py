"""The settings every service shares, read from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def read_secret(value: str, file: str) -> str:
    """A secret from the environment, or from a file (a Key Vault CSI mount) when named."""
    return Path(file).read_text().strip() if file else value


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # A second port that serves only the service's public routes: what an ingress targets,
    # since an ingress routes by path and cannot tell a public GET from an internal PUT.
    public_port: int | None = Field(None, ge=1, le=65535)
    log_level: str = "info"
    # How long a draining service keeps answering before it stops (the load balancer must
    # notice "not ready" first), and how long in-flight work then gets to finish.
    drain_seconds: float = Field(0.0, ge=0)
    shutdown_grace_seconds: float = Field(20.0, ge=0)
    # Outbound calls: a timeout on each attempt and a bound on the attempts.
    http_timeout_seconds: float = Field(5.0, gt=0)
    http_retry_attempts: int = Field(4, ge=1, le=20)
    http_retry_max_wait_seconds: float = Field(2.0, gt=0)
    # Per downstream service: a circuit breaker and a bulkhead (see chassis/http.py).
    breaker_failure_threshold: int = Field(10, ge=1, le=1000)
    breaker_recovery_seconds: float = Field(10.0, gt=0)
    bulkhead_max_concurrent: int = Field(64, ge=1, le=10_000)
    bulkhead_max_wait_seconds: float = Field(5.0, gt=0)
    # Inbound requests (see chassis/limits.py): a body bigger than this is refused with 413;
    # beyond this many requests in flight, 429 with Retry-After. The body limit matches the
    # entry point's; requests here are a few hundred bytes.
    max_body_bytes: int = Field(65_536, ge=1, le=16 * 1024 * 1024)
    max_in_flight_requests: int = Field(256, ge=1, le=100_000)
    overload_retry_after_seconds: int = Field(1, ge=1, le=300)
    # Fault injection for demos and chaos tests, off unless set (see chassis/faults.py).
    fault_error_rate: float = Field(0.0, ge=0, le=1)
    fault_latency_ms: int = Field(0, ge=0, le=60_000)
    fault_routes: str = Field("", description="regex over request paths; empty means all")
    # /internal/faults on the internal port: the faults above changed at run time.
    fault_switches: bool = False
    # Azure Monitor only (APPLICATIONINSIGHTS_CONNECTION_STRING set; see chassis/telemetry.py):
    # Live Metrics, and keeping telemetry on disk to resend after a failed export.
    azure_monitor_live_metrics: bool = True
    azure_monitor_offline_storage: bool = True

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, v: str) -> str:
        v = v.lower()
        if v not in ("debug", "info", "warning", "error", "critical"):
            raise ValueError(f"unknown log level {v!r}")
        return v
