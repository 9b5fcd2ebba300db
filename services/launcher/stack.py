"""The five services and the gateway as child processes, started in order, stopped cleanly.

Each service is the same program that runs in its container (`python -m <service>`), given
its settings through the environment: only the footing (embedded files, or local servers)
differs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

# Started in this order (stores first, gateway last), stopped in reverse.
SERVICES = ("package", "dronescheduler", "delivery", "ingestion", "workflow", "gateway")
OFFSETS = {"ingestion": 1, "workflow": 2, "package": 3, "dronescheduler": 4, "delivery": 5}


@dataclass
class Footing:
    """Where the stores and the queue live."""

    name: str
    urls: dict[str, dict[str, str]]

    @classmethod
    def embedded(cls, data_dir: Path) -> Footing:
        d = data_dir.resolve()
        queue = f"sqlite:///{d}/queue.db?queue=deliveryrequests"
        return cls(
            "embedded",
            {
                "ingestion": {"QUEUE_URL": queue, "STORE_URL": f"sqlite:///{d}/ingestion.db"},
                "workflow": {"QUEUE_URL": queue},
                "package": {"STORE_URL": f"sqlite:///{d}/package.db"},
                "dronescheduler": {"STORE_URL": f"sqlite:///{d}/dronescheduler.db"},
                "delivery": {"STORE_URL": f"sqlite:///{d}/delivery.db"},
            },
        )

    @classmethod
    def servers(
        cls, *, postgres: str, redis: str, amqp: str, queue: str = "deliveryrequests"
    ) -> Footing:
        """PostgreSQL for package and drone scheduler (a database each), Redis for delivery and
        ingestion (a key space each), RabbitMQ for the queue: the compose footing, on servers
        already running."""
        pg = postgres.rstrip("/")
        queue_url = f"{amqp}?queue={queue}"
        return cls(
            "servers",
            {
                "ingestion": {"QUEUE_URL": queue_url, "STORE_URL": redis},
                "workflow": {"QUEUE_URL": queue_url},
                "package": {"STORE_URL": f"{pg}/package"},
                "dronescheduler": {"STORE_URL": f"{pg}/dronescheduler"},
                "delivery": {"STORE_URL": redis},
            },
        )


def _die_with_parent() -> None:
    """Children get SIGTERM if the launcher dies, so no process outlives a killed run."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Stack:
    footing: Footing
    gateway_port: int = 8080
    base_port: int = 8080
    host: str = "127.0.0.1"
    log_dir: Path | None = None  # None: children write to our stdout
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: dict[str, IO[bytes]] = field(default_factory=dict)

    def port(self, service: str) -> int:
        return self.gateway_port if service == "gateway" else self.base_port + OFFSETS[service]

    def url(self, service: str) -> str:
        return f"http://{self.host}:{self.port(service)}"

    def env(self, service: str) -> dict[str, str]:
        env = {**os.environ, "HOST": self.host, "PORT": str(self.port(service))}
        env.setdefault("LOG_LEVEL", "info")
        if service == "gateway":
            env.update(INGESTION_URL=self.url("ingestion"), DELIVERY_URL=self.url("delivery"))
        else:
            env.update(self.footing.urls[service])
        if service == "workflow":
            env.update(
                PACKAGE_URL=self.url("package"),
                DRONESCHEDULER_URL=self.url("dronescheduler"),
                DELIVERY_URL=self.url("delivery"),
            )
        env.update(self.extra_env.get(service, {}))
        return env

    def start(self, service: str) -> None:
        out: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = self._logs.get(service) or open(self.log_dir / f"{service}.log", "ab")  # noqa: SIM115
            self._logs[service] = out
        self.processes[service] = subprocess.Popen(
            [sys.executable, "-m", service],
            env=self.env(service),
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,  # Ctrl-C reaches the launcher, which stops them in order
            preexec_fn=_die_with_parent,
        )

    def wait_ready(self, service: str, within: float = 60.0) -> float:
        """Seconds until the service said ready; raises if it died or took too long."""
        return self._watch({service: time.monotonic()}, within)[service]

    def up(self, within: float = 60.0) -> dict[str, float]:
        """Start everything at once (they do not wait on each other at start-up); return each
        service's seconds from its own start to its first ready answer."""
        started = {}
        for service in SERVICES:
            self.start(service)
            started[service] = time.monotonic()
        try:
            return self._watch(started, within)
        except BaseException:
            self.down()
            raise

    def _watch(self, started: dict[str, float], within: float) -> dict[str, float]:
        """Ask every service still starting if it is ready, all in turn, until all are; each
        one's seconds from its start. Raises if one died or `within` seconds passed."""
        deadline = time.monotonic() + within
        ready: dict[str, float] = {}
        with httpx.Client(timeout=2.0) as client:
            while len(ready) < len(started):
                if time.monotonic() > deadline:
                    late = ", ".join(s for s in started if s not in ready)
                    raise TimeoutError(f"not ready within {within:.0f} s: {late}")
                for service in started.keys() - ready.keys():
                    process = self.processes[service]
                    if process.poll() is not None:
                        raise RuntimeError(
                            f"{service} exited with {process.returncode} while starting"
                        )
                    with contextlib.suppress(httpx.TransportError):
                        if client.get(f"{self.url(service)}/health/ready").status_code == 200:
                            ready[service] = time.monotonic() - started[service]
                time.sleep(0.05)
        return {service: ready[service] for service in started}

    def signal(self, service: str, sig: int) -> None:
        process = self.processes.get(service)
        if process is not None and process.poll() is None:
            process.send_signal(sig)

    def stop(self, service: str, grace: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; the exit code."""
        process = self.processes.get(service)
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def kill(self, service: str) -> None:
        process = self.processes.get(service)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def down(self, grace: float = 30.0) -> None:
        for service in reversed(SERVICES):
            self.stop(service, grace)
        for log in self._logs.values():
            log.close()
        self._logs.clear()
