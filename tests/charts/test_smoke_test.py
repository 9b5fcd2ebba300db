"""The `helm test` pod's script, run against a loopback stand-in for the ingress.

The stand-in answers like the real system does: 202 with a deliveryId for the guide's
request, then 404 for the delivery until "workflow" has created it, then 200.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from contracts import routes
from tests.charts.conftest import UMBRELLA, _render

SCRIPT = UMBRELLA / "files" / "smoke_test.py"
HOST = "drone-delivery.example.com"
GUIDE_REQUEST = {
    "confirmationRequired": "None",
    "deadline": "",
    "dropOffLocation": "drop off",
    "expedited": True,
    "ownerId": "myowner",
    "packageInfo": {"packageId": "mypackage", "size": "Small", "tag": "mytag", "weight": 10},
    "pickupLocation": "my pickup",
    "pickupTime": "2019-05-08T20:00:00.000Z",
}


class FakeIngress(ThreadingHTTPServer):
    def __init__(self, not_found_first: int, accept_status: int = 202) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[tuple[str, str, str | None, Any]] = []
        self.not_found_left = not_found_first
        self.accept_status = accept_status


class Handler(BaseHTTPRequestHandler):
    server: FakeIngress

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append(("POST", self.path, self.headers["Host"], body))
        self._reply(
            self.server.accept_status,
            {**body, "deliveryId": "d-42"},
            {"Location": "/api/deliveries/d-42"},
        )

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path, self.headers["Host"], None))
        if self.server.not_found_left > 0:
            self.server.not_found_left -= 1
            self._reply(404, {"title": "not found"})
        else:
            self._reply(200, {"id": "d-42", "owner": {"userId": "myowner"}})


@pytest.fixture
def tls_ingress(tmp_path: Any) -> Iterator[tuple[FakeIngress, list[str | None]]]:
    """The same stand-in behind TLS with a self-signed certificate, recording the SNI."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={HOST}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,misc]
    server = FakeIngress(0)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, names
    server.shutdown()
    server.server_close()


@pytest.fixture
def ingress(request: pytest.FixtureRequest) -> Iterator[FakeIngress]:
    server = FakeIngress(*getattr(request, "param", (2,)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_script(
    server: FakeIngress, attempts: int = 5, scheme: str = "http", verify: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "INGRESS_URL": f"{scheme}://127.0.0.1:{server.server_address[1]}",
        "INGRESS_HOST": HOST,
        "VERSION_PREFIX": routes.VERSION_PREFIX,
        "TLS_VERIFY": str(verify).lower(),
        "ATTEMPTS": str(attempts),
        "INTERVAL_SECONDS": "0.05",
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )


def test_posts_the_guide_request_and_reads_the_delivery_back(ingress: FakeIngress) -> None:
    done = run_script(ingress)
    assert done.returncode == 0, done.stdout + done.stderr
    prefix = routes.VERSION_PREFIX
    post = ingress.seen[0]
    assert post == ("POST", f"{prefix}/api/deliveryrequests", HOST, GUIDE_REQUEST)
    gets = [(method, path) for method, path, _, _ in ingress.seen[1:]]
    # Two 404s while workflow works, then the plain path and the versioned one.
    assert gets == [("GET", "/api/deliveries/d-42")] * 3 + [
        ("GET", f"{prefix}/api/deliveries/d-42")
    ]
    assert {host for _, _, host, _ in ingress.seen} == {HOST}


def test_speaks_tls_to_the_public_host_name(
    tls_ingress: tuple[FakeIngress, list[str | None]],
) -> None:
    server, names = tls_ingress
    done = run_script(server, scheme="https", verify=False)  # dev: self-signed
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(names) == {HOST}, "the TLS server name must be the ingress host"
    # Verification on (prod) refuses a certificate no CA signed.
    refused = run_script(server, attempts=1, scheme="https", verify=True)
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stdout + refused.stderr


@pytest.mark.parametrize("ingress", [(100,)], indirect=True)
def test_gives_up_after_bounded_attempts(ingress: FakeIngress) -> None:
    done = run_script(ingress, attempts=3)
    assert done.returncode != 0
    assert "after 3 attempts" in done.stderr
    assert len(ingress.seen) == 1 + 3


@pytest.mark.parametrize("ingress", [(0, 400)], indirect=True)
def test_fails_when_the_request_is_refused(ingress: FakeIngress) -> None:
    done = run_script(ingress)
    assert done.returncode != 0
    assert "expected 202" in done.stderr
    assert len(ingress.seen) == 1  # a 4xx is an answer, not a reason to retry


def test_script_is_in_the_chart_configmap(helm: str) -> None:
    (cm,) = [m for m in _render(helm, "dev", ()) if m["kind"] == "ConfigMap"]
    assert cm["data"]["smoke_test.py"].strip() == SCRIPT.read_text().strip()


def test_guide_body_matches_the_e2e_suite() -> None:
    from tests.e2e.conftest import GUIDE_REQUEST as E2E_GUIDE

    assert E2E_GUIDE == GUIDE_REQUEST
    source = SCRIPT.read_text()
    for key, value in GUIDE_REQUEST.items():
        assert json.dumps(key) in source
        if isinstance(value, str) and value:
            assert json.dumps(value) in source
