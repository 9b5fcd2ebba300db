"""helm test: the deployment guide's request through the ingress, then the delivery read back.

Talks to the ingress controller's Service but sends the public host name as Host header and
TLS server name, so it exercises the same Ingress rules and certificate as an outside client.
Standard library only, so it runs on a stock python image.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import sys
import time
from urllib.parse import urlsplit

TARGET = urlsplit(os.environ["INGRESS_URL"])
HOST = os.environ["INGRESS_HOST"]
PREFIX = os.environ["VERSION_PREFIX"]
VERIFY = os.environ.get("TLS_VERIFY", "true") == "true"
ATTEMPTS = int(os.environ.get("ATTEMPTS", "30"))
INTERVAL = float(os.environ.get("INTERVAL_SECONDS", "2"))
PORT = TARGET.port or (443 if TARGET.scheme == "https" else 80)

# The body the original deployment guide sends to validate a fresh install.
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


# Both connect to the controller (TARGET) while naming the public host: created with the
# host name alone, http.client sends a bare `Host: HOST` whatever port TARGET uses.
class RoutedHTTPS(http.client.HTTPSConnection):
    def connect(self) -> None:
        sock = socket.create_connection((TARGET.hostname, PORT), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=HOST)  # type: ignore[attr-defined]


class RoutedHTTP(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = socket.create_connection((TARGET.hostname, PORT), self.timeout)


def request(method: str, path: str, body: dict | None = None) -> tuple[int, dict[str, str], bytes]:
    if TARGET.scheme == "https":
        context = ssl.create_default_context()
        if not VERIFY:  # dev: the self-signed certificate
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = RoutedHTTPS(HOST, timeout=10, context=context)
    else:
        conn = RoutedHTTP(HOST, timeout=10)
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def until(what: str, attempt, done) -> tuple[int, dict[str, str], bytes]:
    """Repeat `attempt` until `done(result)`, at most ATTEMPTS times."""
    last: object = None
    for n in range(1, ATTEMPTS + 1):
        try:
            result = attempt()
            if done(result):
                return result
            last = f"HTTP {result[0]}: {result[2][:200]!r}"
        except OSError as exc:  # not routable yet, connection refused, TLS not ready
            last = exc
        print(f"{what}: attempt {n}/{ATTEMPTS}: {last}", flush=True)
        time.sleep(INTERVAL)
    sys.exit(f"FAIL {what} after {ATTEMPTS} attempts: {last}")


def main() -> None:
    # A 5xx or a connection error means the route or the service is not up yet; anything
    # else is the answer. (A retried POST may create a second request: harmless here.)
    status, headers, raw = until(
        f"POST {PREFIX}/api/deliveryrequests",
        lambda: request("POST", f"{PREFIX}/api/deliveryrequests", GUIDE_REQUEST),
        lambda r: r[0] < 500,
    )
    if status != 202:
        sys.exit(f"FAIL POST answered {status}, expected 202: {raw[:500]!r}")
    delivery_id = json.loads(raw)["deliveryId"]
    print(f"accepted: deliveryId={delivery_id} location={headers.get('location')}", flush=True)

    # Workflow creates the delivery asynchronously: 404 until it has.
    for path in (f"/api/deliveries/{delivery_id}", f"{PREFIX}/api/deliveries/{delivery_id}"):
        status, _, raw = until(f"GET {path}", lambda p=path: request("GET", p), lambda r: r[0] == 200)
        delivery = json.loads(raw)
        if delivery.get("id") != delivery_id:
            sys.exit(f"FAIL GET {path} returned another delivery: {delivery}")
        print(f"OK GET {path}: {json.dumps(delivery)}", flush=True)


if __name__ == "__main__":
    main()
