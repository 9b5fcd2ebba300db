"""The five services and the gateway as child processes, started in order, stopped cleanly.

Each service is the same program that runs in its container (`python -m <service>`), given
its settings through the environment: only the footing (embedded files, or local servers)
differs.

A service may run as several replicas (`replicas={"workflow": 2}`): replica 0 is named as
the service ("workflow"), the others "workflow-1", ...; each has its own port (the
service's, plus 10 per replica) and its own log. Workflow replica i calls drone scheduler
replica i % n, so that several schedulers book on the same stores at once.
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
REPLICA_PORT_STEP = 10  # replica i of a service listens on its port + 10 * i


def replica_name(service: str, index: int) -> str:
    return service if index == 0 else f"{service}-{index}"


def parse_replica(name: str) -> tuple[str, int]:
    """(service, replica index) of a process name: "workflow-1" -> ("workflow", 1)."""
    service, _, index = name.rpartition("-")
    if service in SERVICES and index.isdigit():
        return service, int(index)
    return name, 0


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
    # By service (every replica), or by replica name (that one only, on top).
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    # Replicas per service; the gateway, package, delivery and ingestion run one each.
    replicas: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: dict[str, IO[bytes]] = field(default_factory=dict)

    def replica_names(self, service: str) -> list[str]:
        return [replica_name(service, i) for i in range(self.replicas.get(service, 1))]

    def names(self) -> list[str]:
        """Every process, in start order."""
        return [name for service in SERVICES for name in self.replica_names(service)]

    def port(self, name: str) -> int:
        service, index = parse_replica(name)
        own = self.gateway_port if service == "gateway" else self.base_port + OFFSETS[service]
        return own + REPLICA_PORT_STEP * index

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.port(name)}"

    def env(self, name: str) -> dict[str, str]:
        service, index = parse_replica(name)
        env = {**os.environ, "HOST": self.host, "PORT": str(self.port(name))}
        env.setdefault("LOG_LEVEL", "info")
        if service == "gateway":
            env.update(
                INGESTION_URL=self.url("ingestion"),
                DELIVERY_URL=self.url("delivery"),
                DRONESCHEDULER_URL=self.url("dronescheduler"),
                WORKFLOW_URL=self.url("workflow"),
            )
        else:
            env.update(self.footing.urls[service])
        if service == "workflow":
            schedulers = self.replica_names("dronescheduler")
            env.update(
                PACKAGE_URL=self.url("package"),
                DRONESCHEDULER_URL=self.url(schedulers[index % len(schedulers)]),
                DELIVERY_URL=self.url("delivery"),
            )
        env.update(self.extra_env.get(service, {}))
        if name != service:
            env.update(self.extra_env.get(name, {}))
        return env

    def start(self, name: str) -> None:
        service, _ = parse_replica(name)
        out: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = self._logs.get(name) or open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115
            self._logs[name] = out
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", service],
            env=self.env(name),
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,  # Ctrl-C reaches the launcher, which stops them in order
            preexec_fn=_die_with_parent,
        )

    def wait_ready(self, name: str, within: float = 60.0) -> float:
        """Seconds until the service (or replica) said ready; raises if it died or took too
        long."""
        return self._watch({name: time.monotonic()}, within)[name]

    def up(self, within: float = 60.0) -> dict[str, float]:
        """Start everything at once (they do not wait on each other at start-up); return each
        process's seconds from its own start to its first ready answer."""
        started = {}
        for name in self.names():
            self.start(name)
            started[name] = time.monotonic()
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
        for name in reversed(self.names()):
            self.stop(name, grace)
        for log in self._logs.values():
            log.close()
        self._logs.clear()
