"""Entra ID bearer tokens on the public API (chassis/auth.py), through the real apps.

Tokens are minted here with a local RSA key; the key set is served over HTTP on
127.0.0.1, so PyJWT fetches and checks it exactly as it would Entra ID's. Each app is
built by the service's own create_app with AUTH_* in the environment, as on AKS.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError

from chassis.auth import AuthSettings
from delivery.config import Settings as DeliverySettings
from delivery.main import create_app as create_delivery_app
from ingestion.config import Settings as IngestionSettings
from ingestion.main import create_app as create_ingestion_app
from tests.loopback import LoopbackHandler, LoopbackServer, answer

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"
AUDIENCE = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
KID = "test-key-1"
ALICE = "0b4c5a1e-1111-4d2f-8a51-2f0e4f6c0001"
BOB = "0b4c5a1e-2222-4d2f-8a51-2f0e4f6c0002"

SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


# ---------------------------------------------------------------- the tenant's key set
class _Keys(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        if self.path != "/discovery/v2.0/keys":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    jwk = RSAAlgorithm.to_jwk(SIGNING_KEY.public_key(), as_dict=True)
    _Keys.body = json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Keys)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/discovery/v2.0/keys"
    finally:
        server.shutdown()
        server.server_close()


def token(
    *,
    oid: str = ALICE,
    scp: str | None = "Deliveries.Read Deliveries.Write",
    roles: list[str] | None = None,
    aud: str = AUDIENCE,
    iss: str = ISSUER,
    expires_in: int = 600,
    key: rsa.RSAPrivateKey = SIGNING_KEY,
    kid: str = KID,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "sub": f"sub-{oid}",
        "oid": oid,
        "tid": TENANT,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + expires_in,
    }
    if scp is not None:
        claims["scp"] = scp
    if roles is not None:
        claims["roles"] = roles
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


# ---------------------------------------------------------------- the apps
@pytest.fixture
def auth_on(monkeypatch: pytest.MonkeyPatch, jwks_url: str) -> None:
    monkeypatch.setenv("AUTH_ENABLED", "true")
    monkeypatch.setenv("AUTH_TENANT_ID", TENANT)
    monkeypatch.setenv("AUTH_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("AUTH_JWKS_URL", jwks_url)  # the issuer is derived from the tenant


@pytest.fixture
def auth_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AUTH_ENABLED", "AUTH_TENANT_ID", "AUTH_AUDIENCE", "AUTH_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)


def ingestion_settings(tmp_path: Path) -> IngestionSettings:
    """Ingestion on SQLite files under tmp_path (its queue, and its store where it has one)."""
    files: dict[str, str] = {"queue_url": f"sqlite:///{tmp_path}/queue.db?queue=deliveryrequests"}
    if "store_url" in IngestionSettings.model_fields:
        files["store_url"] = f"sqlite:///{tmp_path}/ingestion.db"
    return IngestionSettings(**files)  # type: ignore[arg-type]


@pytest.fixture
def ingestion(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_ingestion_app(ingestion_settings(tmp_path))) as client:
        yield client


@pytest.fixture
def delivery(tmp_path: Path) -> Iterator[TestClient]:
    settings = DeliverySettings(store_url=f"sqlite:///{tmp_path}/delivery.db")
    with TestClient(create_delivery_app(settings)) as client:
        yield client


def delivery_request(owner: str = ALICE) -> dict[str, Any]:
    return {
        "confirmationRequired": "None",
        "deadline": "",
        "dropOffLocation": "drop off",
        "expedited": True,
        "ownerId": owner,
        "packageInfo": {"packageId": "p1", "size": "Small", "tag": "t", "weight": 10},
        "pickupLocation": "my pickup",
        "pickupTime": "2019-05-08T20:00:00.000Z",
    }


def schedule(delivery_id: str, owner: str) -> dict[str, Any]:
    """What workflow PUTs (an internal route: no token)."""
    point = {"altitude": 0.0, "latitude": 47.6, "longitude": -122.3}
    return {
        "id": delivery_id,
        "owner": {"userId": owner, "accountId": owner},
        "pickup": point,
        "dropoff": point,
        "droneId": "drone-001",
        "departure": {"time": "2030-01-01T00:00:00Z", "location": point},
        "pickupETA": "2030-01-01T00:10:00Z",
        "deliveryETA": "2030-01-01T00:40:00Z",
    }


@pytest.fixture
def alice_delivery(delivery: TestClient) -> str:
    delivery_id = str(uuid.uuid4())
    r = delivery.put(f"/api/deliveries/{delivery_id}", json=schedule(delivery_id, ALICE))
    assert r.status_code == 201, r.text
    return delivery_id


def challenge(r: Any) -> str:
    return str(r.headers.get("WWW-Authenticate", ""))


def assert_problem(r: Any, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == status


# ---------------------------------------------------------------- ingestion: writing requires the write scope
@pytest.mark.usefixtures("auth_on")
class TestWriting:
    def test_a_valid_token_with_the_write_scope_is_accepted(self, ingestion: TestClient) -> None:
        r = ingestion.post(
            "/api/deliveryrequests", json=delivery_request(), headers=bearer(token())
        )
        assert r.status_code == 202, r.text

    def test_no_token_is_401_with_a_bare_bearer_challenge(self, ingestion: TestClient) -> None:
        r = ingestion.post("/api/deliveryrequests", json=delivery_request())
        assert_problem(r, 401)
        assert challenge(r).startswith("Bearer ")
        assert "error=" not in challenge(r)

    @pytest.mark.parametrize(
        "authorization",
        ["Bearer not-a-jwt", "Bearer a.b.c", "Basic YWxpY2U6c2VjcmV0", "Bearer"],
        ids=["garbage", "three-parts", "basic-scheme", "empty"],
    )
    def test_a_malformed_header_or_token_is_401(
        self, ingestion: TestClient, authorization: str
    ) -> None:
        r = ingestion.post(
            "/api/deliveryrequests",
            json=delivery_request(),
            headers={"Authorization": authorization},
        )
        assert_problem(r, 401)
        assert 'error="invalid_token"' in challenge(r) or 'error="invalid_request"' in challenge(r)

    @pytest.mark.parametrize(
        ("bad", "says"),
        [
            (lambda: token(expires_in=-3600), "expired"),
            (lambda: token(aud="api://some-other-api"), "not for this API"),
            (lambda: token(iss="https://login.microsoftonline.com/other/v2.0"), "another issuer"),
            (lambda: token(key=OTHER_KEY), "signature"),
            (lambda: token(key=OTHER_KEY, kid="unknown-key"), "not valid"),
        ],
        ids=["expired", "wrong-audience", "wrong-issuer", "wrong-signing-key", "unknown-key-id"],
    )
    def test_an_invalid_token_is_401_invalid_token(
        self, ingestion: TestClient, bad: Callable[[], str], says: str
    ) -> None:
        r = ingestion.post("/api/deliveryrequests", json=delivery_request(), headers=bearer(bad()))
        assert_problem(r, 401)
        assert 'error="invalid_token"' in challenge(r)
        assert says in r.json()["detail"]

    def test_the_read_scope_alone_cannot_write(self, ingestion: TestClient) -> None:
        r = ingestion.post(
            "/api/deliveryrequests",
            json=delivery_request(),
            headers=bearer(token(scp="Deliveries.Read")),
        )
        assert_problem(r, 403)
        assert 'error="insufficient_scope"' in challenge(r)
        assert 'scope="Deliveries.Write"' in challenge(r)

    def test_an_app_role_grants_what_a_scope_does(self, ingestion: TestClient) -> None:
        app_token = token(scp=None, roles=["Deliveries.Write"])
        r = ingestion.post(
            "/api/deliveryrequests", json=delivery_request(), headers=bearer(app_token)
        )
        assert r.status_code == 202, r.text

    def test_a_request_for_another_owner_is_403(self, ingestion: TestClient) -> None:
        r = ingestion.post(
            "/api/deliveryrequests", json=delivery_request(owner=BOB), headers=bearer(token())
        )
        assert_problem(r, 403)
        assert "ownerId" in r.json()["detail"]

    def test_an_admin_may_request_for_any_owner(self, ingestion: TestClient) -> None:
        admin = token(scp=None, roles=["Deliveries.Admin"])
        r = ingestion.post(
            "/api/deliveryrequests", json=delivery_request(owner=BOB), headers=bearer(admin)
        )
        assert r.status_code == 202, r.text

    def test_reschedule_and_cancel_need_the_write_scope(self, ingestion: TestClient) -> None:
        accepted = ingestion.post(
            "/api/deliveryrequests", json=delivery_request(owner=ALICE), headers=bearer(token())
        )
        assert accepted.status_code == 202, accepted.text
        path = f"/api/deliveryrequests/{accepted.json()['deliveryId']}"
        body = {"dropOffLocation": "47.62,-122.35"}
        assert ingestion.patch(path, json=body).status_code == 401
        assert ingestion.delete(path).status_code == 401
        reader = bearer(token(scp="Deliveries.Read"))
        assert ingestion.patch(path, json=body, headers=reader).status_code == 403
        assert ingestion.delete(path, headers=reader).status_code == 403
        writer = bearer(token())
        # Another owner's request is not theirs to change, and not told apart from none.
        bob = bearer(token(oid=BOB))
        assert ingestion.patch(path, json=body, headers=bob).status_code == 404
        assert ingestion.delete(path, headers=bob).status_code == 404
        assert ingestion.patch(path, json=body, headers=writer).status_code == 200
        assert ingestion.delete(path, headers=writer).status_code == 204

    def test_health_and_metrics_take_no_token(self, ingestion: TestClient) -> None:
        assert ingestion.get("/health/ready").status_code == 200
        assert ingestion.get("/metrics").status_code == 200


# ---------------------------------------------------------------- delivery: reading requires the read scope and the owner
@pytest.mark.usefixtures("auth_on")
class TestReading:
    def test_the_owner_reads_its_delivery_and_status(
        self, delivery: TestClient, alice_delivery: str
    ) -> None:
        alice = bearer(token(scp="Deliveries.Read"))
        r = delivery.get(f"/api/deliveries/{alice_delivery}", headers=alice)
        assert r.status_code == 200, r.text
        assert r.json()["owner"]["userId"] == ALICE
        r = delivery.get(f"/api/deliveries/{alice_delivery}/status", headers=alice)
        assert r.status_code == 200, r.text

    def test_another_owner_gets_404_as_if_it_did_not_exist(
        self, delivery: TestClient, alice_delivery: str
    ) -> None:
        bob = bearer(token(oid=BOB, scp="Deliveries.Read"))
        for path in (
            f"/api/deliveries/{alice_delivery}",
            f"/api/deliveries/{alice_delivery}/status",
        ):
            r = delivery.get(path, headers=bob)
            assert_problem(r, 404)
        missing = delivery.get(f"/api/deliveries/{uuid.uuid4()}", headers=bob)
        assert r.json()["title"] == missing.json()["title"]

    def test_an_admin_reads_every_owner_s_delivery(
        self, delivery: TestClient, alice_delivery: str
    ) -> None:
        admin = bearer(token(oid=BOB, scp=None, roles=["Deliveries.Admin"]))
        assert delivery.get(f"/api/deliveries/{alice_delivery}", headers=admin).status_code == 200
        r = delivery.get(f"/api/deliveries/{alice_delivery}/status", headers=admin)
        assert r.status_code == 200

    def test_the_write_scope_alone_cannot_read(
        self, delivery: TestClient, alice_delivery: str
    ) -> None:
        r = delivery.get(
            f"/api/deliveries/{alice_delivery}", headers=bearer(token(scp="Deliveries.Write"))
        )
        assert_problem(r, 403)
        assert 'scope="Deliveries.Read"' in challenge(r)

    @pytest.mark.parametrize(
        "headers",
        [{}, bearer(token(expires_in=-3600)), bearer(token(aud="wrong"))],
        ids=["no-token", "expired", "wrong-audience"],
    )
    def test_an_unauthenticated_read_is_401(
        self, delivery: TestClient, alice_delivery: str, headers: dict[str, str]
    ) -> None:
        assert_problem(delivery.get(f"/api/deliveries/{alice_delivery}", headers=headers), 401)

    def test_notify_me_is_the_owner_s_write(
        self, delivery: TestClient, alice_delivery: str
    ) -> None:
        path = f"/api/deliveries/{alice_delivery}/notifymerequests"
        body = {"emailAddress": "alice@example.com", "sms": "+15555550100"}
        assert delivery.post(path, json=body).status_code == 401
        bob = bearer(token(oid=BOB))
        assert delivery.post(path, json=body, headers=bob).status_code == 404

    def test_internal_routes_take_no_token(self, delivery: TestClient, alice_delivery: str) -> None:
        # Only workflow reaches them (NetworkPolicy); they are never routed from outside.
        r = delivery.get(
            "/api/deliveries/summary", params={"ownerId": ALICE, "year": 2030, "month": 1}
        )
        assert r.status_code == 200, r.text
        r = delivery.put(f"/api/deliveries/{alice_delivery}", json=schedule(alice_delivery, ALICE))
        assert r.status_code == 204, r.text


# ---------------------------------------------------------------- off, misconfigured, keys unreachable
@pytest.mark.usefixtures("auth_off")
def test_off_by_default_everything_public_is_open_and_the_log_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chassis.auth")
    settings = ingestion_settings(tmp_path)
    with TestClient(create_ingestion_app(settings)) as client:
        assert any("API authentication is OFF" in r.getMessage() for r in caplog.records)
        r = client.post("/api/deliveryrequests", json=delivery_request(owner="anyone"))
        assert r.status_code == 202, r.text
    with TestClient(
        create_delivery_app(DeliverySettings(store_url=f"sqlite:///{tmp_path}/delivery.db"))
    ) as client:
        delivery_id = str(uuid.uuid4())
        assert (
            client.put(
                f"/api/deliveries/{delivery_id}", json=schedule(delivery_id, BOB)
            ).status_code
            == 201
        )
        assert client.get(f"/api/deliveries/{delivery_id}").status_code == 200


@pytest.mark.usefixtures("auth_on")
def test_on_says_so_at_start_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="chassis.auth")
    with TestClient(
        create_delivery_app(DeliverySettings(store_url=f"sqlite:///{tmp_path}/delivery.db"))
    ):
        lines = [r.getMessage() for r in caplog.records if r.name == "chassis.auth"]
    assert any("API authentication is ON" in line and ISSUER in line for line in lines), lines


def test_enabled_without_an_audience_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_ENABLED", "true")
    monkeypatch.setenv("AUTH_TENANT_ID", TENANT)
    monkeypatch.delenv("AUTH_AUDIENCE", raising=False)
    app = create_delivery_app(DeliverySettings(store_url=f"sqlite:///{tmp_path}/delivery.db"))
    with pytest.raises(ValidationError, match="AUTH_AUDIENCE"), TestClient(app):
        pass


def test_the_issuer_and_key_set_come_from_the_tenant() -> None:
    s = AuthSettings(enabled=True, tenant_id=TENANT, audience=f"{AUDIENCE}, api://drone")
    assert s.issuer == ISSUER
    assert s.jwks_url == f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"
    assert s.audiences == [AUDIENCE, "api://drone"]
    assert AuthSettings().enabled is False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_unreachable_keys_are_503_not_401(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auth_on: None
) -> None:
    # A port nothing listens on: the token cannot be checked, which is not the caller's fault.
    monkeypatch.setenv("AUTH_JWKS_URL", f"http://127.0.0.1:{free_port()}/discovery/v2.0/keys")
    monkeypatch.setenv("AUTH_JWKS_TIMEOUT_SECONDS", "2")
    settings = ingestion_settings(tmp_path)
    with TestClient(create_ingestion_app(settings)) as client:
        r = client.post("/api/deliveryrequests", json=delivery_request(), headers=bearer(token()))
    assert_problem(r, 503)
    assert r.headers["Retry-After"]


# ---------------------------------------------------------------- fetching the key set
class _ServedKeys(LoopbackHandler):
    """The key set, after `delay` seconds; or, with `trickle`, one byte of it at a time."""

    delay = 0.0
    trickle = False
    done = threading.Event()  # set at teardown: a trickling answer stops

    def respond(self) -> None:
        time.sleep(self.delay)  # the server is slow: part of the scenario, not a test wait
        if not self.trickle:
            answer(self, 200, _Keys.body, {"Content-Type": "application/json"})
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(_Keys.body)))
        self.end_headers()
        for byte in _Keys.body:
            if self.done.wait(0.2):
                return
            self.wfile.write(bytes([byte]))


@pytest.fixture
def key_server(jwks_url: str) -> Iterator[type[_ServedKeys]]:
    """A key set server of the test's own (jwks_url's fixture fills _Keys.body), in AUTH_*."""

    class Keys(_ServedKeys):
        done = threading.Event()

    yield Keys
    Keys.done.set()


def serve(handler: type[_ServedKeys], monkeypatch: pytest.MonkeyPatch) -> LoopbackServer:
    server = LoopbackServer(handler)
    monkeypatch.setenv("AUTH_JWKS_URL", f"{server.url}/discovery/v2.0/keys")
    return server


def post(client: TestClient, t: str) -> Any:
    return client.post("/api/deliveryrequests", json=delivery_request(), headers=bearer(t))


def test_a_fractional_key_set_timeout_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auth_on: None, key_server: type[_ServedKeys]
) -> None:
    key_server.delay = 0.3
    server = serve(key_server, monkeypatch)
    monkeypatch.setenv("AUTH_JWKS_TIMEOUT_SECONDS", "0.8")  # was cut to 0: no wait at all
    try:
        with TestClient(create_ingestion_app(ingestion_settings(tmp_path))) as client:
            assert post(client, token()).status_code == 202
    finally:
        server.close()


def test_a_trickling_key_set_server_holds_no_request_past_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auth_on: None, key_server: type[_ServedKeys]
) -> None:
    # A byte every 0.2 s: each read finishes within urllib's 1 s, the whole fetch never does.
    key_server.trickle = True
    server = serve(key_server, monkeypatch)
    monkeypatch.setenv("AUTH_JWKS_TIMEOUT_SECONDS", "1")
    try:
        with TestClient(create_ingestion_app(ingestion_settings(tmp_path))) as client:
            began = time.monotonic()
            r = post(client, token())
            took = time.monotonic() - began
            key_server.done.set()
    finally:
        server.close()
    assert_problem(r, 503)
    assert r.headers["Retry-After"]
    assert took < 3.0


def _until(check: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "not within the bound"
        time.sleep(0.1)  # polling interval while waiting on a condition, bounded above


def test_the_last_good_keys_verify_tokens_while_the_key_set_cannot_be_fetched(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    auth_on: None,
    key_server: type[_ServedKeys],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = serve(key_server, monkeypatch)
    monkeypatch.setenv("AUTH_JWKS_CACHE_SECONDS", "1")
    with TestClient(create_ingestion_app(ingestion_settings(tmp_path))) as client:
        assert post(client, token()).status_code == 202  # the key set fetched
        server.close()  # the identity provider is unreachable from now on

        def refetch_failed() -> bool:
            r = post(client, token())
            assert r.status_code == 202, r.text  # still verified, with the last good keys
            return any("could not fetch the token signing keys" in m for m in caplog.messages)

        _until(refetch_failed)
        # A key the last good set does not have cannot be checked: not the caller's fault.
        r = post(client, token(key=OTHER_KEY, kid="rolled-over"))
    assert_problem(r, 503)
    assert r.headers["Retry-After"]


def test_the_last_good_keys_are_trusted_for_a_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auth_on: None, key_server: type[_ServedKeys]
) -> None:
    server = serve(key_server, monkeypatch)
    monkeypatch.setenv("AUTH_JWKS_CACHE_SECONDS", "1")
    monkeypatch.setenv("AUTH_JWKS_LAST_GOOD_SECONDS", "1")
    with TestClient(create_ingestion_app(ingestion_settings(tmp_path))) as client:
        began = time.monotonic()
        assert post(client, token()).status_code == 202
        server.close()
        _until(lambda: post(client, token()).status_code == 503)
    assert time.monotonic() - began >= 2.0  # the cache lifetime, then the last good time
