"""Run a service under uvicorn with a graceful shutdown.

On SIGTERM the service first reports not-ready (so the load balancer stops sending), keeps
serving for `drain_seconds`, then stops accepting, lets in-flight requests finish within
`shutdown_grace_seconds`, and closes its resources. A second signal exits at once.
"""

from __future__ import annotations

import gc
import logging
import socket
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from chassis.health import Health
from chassis.logs import configure_logging
from chassis.settings import ServiceSettings
from chassis.telemetry import configure_telemetry, shutdown_telemetry

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, health: Health, drain_seconds: float) -> None:
        super().__init__(config)
        self._health = health
        self._drain_seconds = drain_seconds
        self._signalled = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._signalled:
            self.force_exit = True
            return
        self._signalled = True
        self._health.drain()
        log.info("draining for %.1f s before stopping", self._drain_seconds, extra={"signal": sig})
        if self._drain_seconds > 0:
            timer = threading.Timer(self._drain_seconds, self._stop)
            timer.daemon = True
            timer.start()
        else:
            self._stop()

    def _stop(self) -> None:
        self.should_exit = True


def serve(app: FastAPI, settings: ServiceSettings, service: str, *, namespace: str) -> None:
    """Serve `app` as `service`, one of the application `namespace`'s (its traces say so)."""
    configure_logging(service, settings.log_level)
    exporter = configure_telemetry(
        service,
        namespace=namespace,
        live_metrics=settings.azure_monitor_live_metrics,
        offline_storage=settings.azure_monitor_offline_storage,
    )
    log.info("traces exported to: %s", exporter, extra={"event": "telemetry"})
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=settings.log_level == "debug",
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
        timeout_keep_alive=30,
        server_header=False,
    )
    sockets = None
    if settings.public_port:
        # Two listeners: the internal port serves everything; the public port, the one the
        # ingress targets, only the public routes (see chassis/public.py).
        sockets = [
            _listen(settings.host, settings.port),
            _listen(settings.host, settings.public_port),
        ]
    # What start-up made (modules, the app, its routes and models) lives as long as the
    # process: out of the collector's way, a full collection no longer walks it all again.
    gc.collect()
    gc.freeze()
    try:
        DrainingServer(config, app.state.health, settings.drain_seconds).run(sockets=sockets)
    finally:
        shutdown_telemetry()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock
