"""A loopback identity provider: Entra ID-style RS256 tokens and the key set to check them.

An RSA key made at start, its JWKS served over HTTP on 127.0.0.1 (so PyJWT in the services
fetches and checks it exactly as it would Entra ID's), and tokens minted for an owner with
delegated scopes or application roles. `settings()` is the AUTH_* environment that points a
service at it (chassis/auth.py).

    with IdentityProvider() as idp:
        env = idp.settings()                        # AUTH_ENABLED=true, ...
        writer = idp.bearer(owner, scopes=WRITER)   # {"Authorization": "Bearer ..."}
        admin = idp.bearer("ops", roles=[ADMIN])
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.loopback import LoopbackHandler, LoopbackServer, answer

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AUDIENCE = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
KEYS_PATH = "/discovery/v2.0/keys"
# What a signed-in client app gets, and the role that sees every owner (chassis/auth.py).
WRITER = ("Deliveries.Read", "Deliveries.Write")
ADMIN = "Deliveries.Admin"


class IdentityProvider:
    def __init__(self, *, kid: str = "loopback-key-1") -> None:
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        keys = json.dumps({"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}).encode()

        class Keys(LoopbackHandler):
            def respond(self) -> None:
                if self.command == "GET" and self.path == KEYS_PATH:
                    answer(self, 200, keys, {"Content-Type": "application/json"})
                else:
                    answer(self, 404)

        self._server = LoopbackServer(Keys)
        self.jwks_url = f"{self._server.url}{KEYS_PATH}"
        self.issuer = f"https://login.microsoftonline.com/{TENANT}/v2.0"

    def settings(self) -> dict[str, str]:
        """The environment that makes a service require this provider's tokens."""
        return {
            "AUTH_ENABLED": "true",
            "AUTH_TENANT_ID": TENANT,
            "AUTH_AUDIENCE": AUDIENCE,
            "AUTH_ISSUER": self.issuer,
            "AUTH_JWKS_URL": self.jwks_url,
        }

    def token(
        self,
        owner: str,
        *,
        scopes: Sequence[str] = (),
        roles: Sequence[str] = (),
        expires_in: int = 3600,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": f"sub-{owner}",
            "oid": owner,
            "tid": TENANT,
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + expires_in,
        }
        if scopes:
            claims["scp"] = " ".join(scopes)
        if roles:
            claims["roles"] = list(roles)
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def bearer(self, owner: str, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(owner, **claims)}"}

    def close(self) -> None:
        self._server.close()

    def __enter__(self) -> IdentityProvider:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
