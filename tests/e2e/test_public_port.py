"""The public port: what an ingress targets serves only the route table's routes."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import System, _free_base_port


def test_on_the_public_port_internal_methods_are_not_found(system: System) -> None:
    stack = system.need_stack()
    public = _free_base_port(count=1)
    stack.stop("delivery")
    stack.extra_env["delivery"] = {"PUBLIC_PORT": str(public)}
    try:
        stack.start("delivery")
        stack.wait_ready("delivery")
        outside = httpx.Client(base_url=f"http://127.0.0.1:{public}", timeout=10)
        inside = httpx.Client(base_url=stack.url("delivery"), timeout=10)
        with outside, inside:
            # Public: the read answers (404 here only because there is no such delivery).
            r = outside.get("/api/deliveries/no-such-id")
            assert r.status_code == 404 and "no delivery" in r.json()["detail"]
            # Internal writes on a public path: refused on the public port, served inside.
            for method in ("PUT", "PATCH", "DELETE"):
                r = outside.request(method, "/api/deliveries/no-such-id", json={})
                assert r.status_code == 404 and "no public API" in r.json()["detail"], method
            assert inside.put("/api/deliveries/no-such-id", json={}).status_code == 400
            assert (
                outside.get("/api/deliveries/summary?ownerId=o&year=2026&month=1").status_code
                == 404
            )
            assert outside.get("/health/ready").status_code == 404  # probes use the inside port
            assert inside.get("/health/ready").status_code == 200
    finally:
        stack.stop("delivery")
        stack.extra_env.pop("delivery", None)
        stack.start("delivery")
        stack.wait_ready("delivery")


def test_the_drone_scheduler_s_public_port_serves_the_console_s_fleet_view_alone(
    system: System,
) -> None:
    """Public only for the console (docs/console.md): its booking API stays inside."""
    stack = system.need_stack()
    public = _free_base_port(count=1)
    stack.stop("dronescheduler")
    stack.extra_env["dronescheduler"] = {"PUBLIC_PORT": str(public)}
    try:
        stack.start("dronescheduler")
        stack.wait_ready("dronescheduler")
        outside = httpx.Client(base_url=f"http://127.0.0.1:{public}", timeout=10)
        inside = httpx.Client(base_url=stack.url("dronescheduler"), timeout=10)
        with outside, inside:
            assert len(outside.get("/api/console/fleet").json()["drones"]) > 0
            for method, path in (
                ("GET", "/api/drones"),
                ("GET", "/api/dronedeliveries/utilization?ownerId=o&year=2026&month=1"),
                ("PUT", "/api/dronedeliveries/d-1"),
                ("DELETE", "/api/dronedeliveries/d-1"),
                ("POST", "/api/console/fleet"),
            ):
                r = outside.request(method, path, json={})
                assert r.status_code == 404 and "no public API" in r.json()["detail"], path
            assert inside.get("/api/drones").status_code == 200
    finally:
        stack.stop("dronescheduler")
        stack.extra_env.pop("dronescheduler", None)
        stack.start("dronescheduler")
        stack.wait_ready("dronescheduler")
