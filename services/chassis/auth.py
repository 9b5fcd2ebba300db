"""Who is calling the public API: Entra ID bearer tokens, checked when AUTH_ENABLED is true.

A token is accepted when its signature verifies against the tenant's published keys (the
JWKS, fetched and cached), its issuer and audience are this API's, and it has not expired.
What it may do comes from its delegated scopes (`scp`, a user signed in to a client app)
or its application roles (`roles`, an app calling as itself):

  write  (scope or role)   what changes the owner's resources
  read   (scope or role)   what reads them
  admin  (role)            sees and acts for every owner; switches injected faults
                           (chassis/faults)

What those are called, and the realm clients are challenged with, is the application's
(PermissionNames, passed by each service: contracts/access.py).

A caller's owner id is one claim of its token (AUTH_OWNER_CLAIM, default `oid`: the
object id of the user or application in the tenant, present in every Entra ID token and
never reassigned). A request on the owner's behalf must name the caller's own id, and a
caller reads only what it owns, unless it is an admin. A tenant whose owners are accounts
rather than people can issue a custom claim instead (e.g. a directory extension) and name
it here.

The key set is fetched in a thread of its own, at most one fetch at a time, and a request
waits for one at most AUTH_JWKS_TIMEOUT_SECONDS (fractions honoured; urllib's timeout bounds
each socket operation, not the whole fetch, so the wait is bounded here). It is refetched
in the background once older than AUTH_JWKS_CACHE_SECONDS; while that cannot succeed (the
identity provider unreachable), the last good key set still verifies tokens for up to
AUTH_JWKS_LAST_GOOD_SECONDS more. A token whose key is not in it is then 503 with
Retry-After (it cannot be checked), not 401.

Off by default (the embedded and compose footings have no identity provider), with a
warning at start-up that says so. Internal routes (workflow's calls) take no token: only
workflow can reach them (NetworkPolicy), and they are not routed from outside.

Configuration, from the environment:
  AUTH_ENABLED          true to require tokens on the public routes
  AUTH_TENANT_ID        the Entra ID tenant (GUID); derives the issuer and the JWKS URL
  AUTH_AUDIENCE         the API's application (client) id, or its App ID URI; several
                        may be given, comma-separated
  AUTH_ISSUER           default https://login.microsoftonline.com/<tenant>/v2.0
  AUTH_JWKS_URL         default https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys
  AUTH_OWNER_CLAIM      default oid
  AUTH_WRITE_PERMISSION, AUTH_READ_PERMISSION, AUTH_ADMIN_ROLE
                        default the application's (PermissionNames)
  AUTH_JWKS_CACHE_SECONDS, AUTH_JWKS_TIMEOUT_SECONDS, AUTH_JWKS_LAST_GOOD_SECONDS
                        default 3600, 5, 86400 (see above)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Self

import jwt
from fastapi import Depends, FastAPI, HTTPException, Request, status
from jwt import PyJWK, PyJWKSet
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256",)  # what Entra ID signs access tokens with
# After a failed fetch, the next waits this long (and clients are told to retry after it).
RETRY_FETCH_SECONDS = 5.0
# A key id not in a set fetched this recently is refused without refetching (as PyJWKClient's
# cooldown): made-up key ids must not make every request a fetch.
UNKNOWN_KEY_COOLDOWN_SECONDS = 30.0


class Permission(Enum):
    READ = "read"
    WRITE = "write"


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", env_file=None, extra="ignore")

    enabled: bool = False
    tenant_id: str = ""
    audience: str = ""
    issuer: str = ""
    jwks_url: str = ""
    authority_host: str = "https://login.microsoftonline.com"
    owner_claim: str = "oid"
    # Empty: the application's own names (PermissionNames); set to rename one here.
    write_permission: str = ""
    read_permission: str = ""
    admin_role: str = ""
    # Clock skew allowed on exp/nbf/iat, and how long fetched keys are trusted before a
    # refetch (an unknown key id refetches at once: Entra ID rolls its keys).
    leeway_seconds: float = Field(60.0, ge=0, le=300)
    jwks_cache_seconds: float = Field(3600.0, gt=0)
    jwks_timeout_seconds: float = Field(5.0, gt=0)
    # How long past its cache lifetime the last good key set still verifies tokens while no
    # new one can be fetched: an identity provider outage is not an outage of this API.
    jwks_last_good_seconds: float = Field(86400.0, ge=0)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> Self:
        if not self.enabled:
            return self
        if "/" in self.tenant_id:
            raise ValueError("AUTH_TENANT_ID is a tenant id or domain, not a URL")
        authority = f"{self.authority_host.rstrip('/')}/{self.tenant_id}"
        if self.tenant_id:
            self.issuer = self.issuer or f"{authority}/v2.0"
            self.jwks_url = self.jwks_url or f"{authority}/discovery/v2.0/keys"
        missing = [
            name
            for name, value in (
                ("AUTH_AUDIENCE", self.audience),
                ("AUTH_ISSUER (or AUTH_TENANT_ID)", self.issuer),
                ("AUTH_JWKS_URL (or AUTH_TENANT_ID)", self.jwks_url),
            )
            if not value.strip()
        ]
        if missing:
            raise ValueError(f"AUTH_ENABLED is true but {', '.join(missing)} is not set")
        return self

    @property
    def audiences(self) -> list[str]:
        return [a.strip() for a in self.audience.split(",") if a.strip()]


@dataclass(frozen=True)
class PermissionNames:
    """What the application calls itself (the bearer realm) and its permissions."""

    realm: str
    write: str
    read: str
    admin: str

    def renamed_by(self, settings: AuthSettings) -> PermissionNames:
        return PermissionNames(
            realm=self.realm,
            write=settings.write_permission or self.write,
            read=settings.read_permission or self.read,
            admin=settings.admin_role or self.admin,
        )


@dataclass(frozen=True)
class Caller:
    """Who made a request, as its token says."""

    subject: str
    owner_id: str
    scopes: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    admin: bool = False
    # True only when authentication is off: every owner's data is open to the caller.
    unrestricted: bool = False

    def owns(self, owner_id: str) -> bool:
        return self.unrestricted or self.admin or owner_id == self.owner_id


ANONYMOUS = Caller(subject="", owner_id="", unrestricted=True)


def _bearer_error(
    realm: str, status_code: int, error: str, description: str, **params: str
) -> HTTPException:
    # RFC 6750 section 3: the challenge names what was wrong; a request without any
    # credentials gets the bare challenge.
    parts = [f'Bearer realm="{realm}"']
    if error:
        parts += [f'error="{error}"', f'error_description="{description}"']
    parts += [f'{k}="{v}"' for k, v in params.items()]
    return HTTPException(status_code, description, headers={"WWW-Authenticate": ", ".join(parts)})


class KeysUnavailable(Exception):
    """No key set could be fetched in time, and the last good one (if any) cannot tell."""


class SigningKeys:
    """The tenant's key set: fetched, kept, refetched (see the module docstring). All state
    is touched on the event loop; the fetch alone runs in its thread."""

    def __init__(self, settings: AuthSettings) -> None:
        # PyJWKClient for the fetch itself (http(s) only, no redirects); the caching is ours.
        self._client = jwt.PyJWKClient(
            settings.jwks_url, cache_jwk_set=False, timeout=settings.jwks_timeout_seconds
        )
        self._timeout = settings.jwks_timeout_seconds
        self._fresh_for = settings.jwks_cache_seconds
        self._usable_for = settings.jwks_cache_seconds + settings.jwks_last_good_seconds
        self._keys: PyJWKSet | None = None
        self._fetched_at = -math.inf
        self._tried_at = -math.inf
        self._failed = False  # the last fetch failed
        self._fetching: asyncio.Future[None] | None = None

    async def key_for(self, kid: str | None) -> PyJWK:
        """The signing key `kid`; KeysUnavailable if that cannot be known now, PyJWTError
        if the tenant has no such key."""
        if self._fetching is not None and (
            time.monotonic() - self._tried_at > self._timeout
            or self._fetching.get_loop() is not asyncio.get_running_loop()
        ):  # a fetch past its time (a server trickling bytes), or of a loop since closed
            self._fetching, self._failed = None, True
        key = self._last_good(kid)
        if key is not None:
            if self._age() > self._fresh_for and self._may_try(unknown_key=False):
                self._fetch()  # in the background: this token is checked with the key it has
            return key
        if self._fetching is not None or self._may_try(unknown_key=True):
            fetching = self._fetching or self._fetch()
            done, _ = await asyncio.wait({fetching}, timeout=self._timeout)
            if not done:
                raise KeysUnavailable(f"no key set within {self._timeout} s")
            key = self._last_good(kid)
        if key is not None:
            return key
        if self._failed:
            raise KeysUnavailable("the key set could not be fetched")
        raise jwt.PyJWKClientError(f"the tenant's key set has no signing key {kid!r}")

    def _age(self) -> float:
        return time.monotonic() - self._fetched_at

    def _last_good(self, kid: str | None) -> PyJWK | None:
        if self._keys is None or self._age() > self._usable_for:
            return None
        for key in self._keys.keys:
            if key.key_id == kid and key.public_key_use in ("sig", None):
                return key
        return None

    def _may_try(self, *, unknown_key: bool) -> bool:
        if self._fetching is not None:
            return False
        if self._failed:
            pause = RETRY_FETCH_SECONDS
        elif unknown_key and self._age() <= self._usable_for:
            pause = UNKNOWN_KEY_COOLDOWN_SECONDS
        else:
            pause = 0.0
        return time.monotonic() - self._tried_at >= pause

    def _fetch(self) -> asyncio.Future[None]:
        """Start a fetch in a daemon thread (a hung fetch holds that thread alone, and
        nothing waits for it at exit); the future is done when it has been taken in."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._fetching, self._tried_at = done, time.monotonic()

        def fetch() -> None:
            try:
                keys, error = self._client.get_jwk_set(), None
            except Exception as e:  # unreachable, not JSON, no usable keys: all a failed fetch
                keys, error = None, e
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(self._fetched, done, keys, error)

        threading.Thread(target=fetch, name="jwks-fetch", daemon=True).start()
        return done

    def _fetched(
        self, done: asyncio.Future[None], keys: PyJWKSet | None, error: Exception | None
    ) -> None:
        if self._fetching is done:
            self._fetching = None
        if keys is None:
            self._failed = True
            log.warning("could not fetch the token signing keys: %s", error)
        else:
            self._keys, self._fetched_at, self._failed = keys, time.monotonic(), False
        done.set_result(None)


class Authenticator:
    """Checks bearer tokens against one tenant's keys; one per app."""

    def __init__(self, settings: AuthSettings, names: PermissionNames) -> None:
        self.settings = settings
        self.names = names.renamed_by(settings)
        self._keys = SigningKeys(settings) if settings.enabled else None

    def describe(self) -> str:
        s = self.settings
        if not s.enabled:
            return (
                "API authentication is OFF (AUTH_ENABLED is not true): the public routes "
                "accept any caller and what every owner has is readable. Set "
                "AUTH_ENABLED=true, AUTH_TENANT_ID and AUTH_AUDIENCE to require Entra ID tokens."
            )
        return (
            f"API authentication is ON: Entra ID bearer tokens from issuer {s.issuer} for "
            f"audience {', '.join(s.audiences)}; owner claim {s.owner_claim!r}"
        )

    async def caller(self, authorization: str | None, permission: Permission) -> Caller:
        if self._keys is None:
            return ANONYMOUS
        token = _bearer_token(authorization, self.names.realm)
        claims = await self._verified_claims(token)
        caller = self._caller_of(claims)
        needed = self.names.write if permission is Permission.WRITE else self.names.read
        if not (caller.admin or needed in caller.scopes or needed in caller.roles):
            raise _bearer_error(
                self.names.realm,
                status.HTTP_403_FORBIDDEN,
                "insufficient_scope",
                f"the token grants neither the scope nor the role {needed}",
                scope=needed,
            )
        return caller

    async def admin(self, authorization: str | None) -> Caller:
        """An operator: a token with the admin role (anyone when authentication is off)."""
        if self._keys is None:
            return ANONYMOUS
        realm, role = self.names.realm, self.names.admin
        caller = self._caller_of(await self._verified_claims(_bearer_token(authorization, realm)))
        if not role:
            raise _bearer_error(
                realm, status.HTTP_403_FORBIDDEN, "", "no admin role is named (AUTH_ADMIN_ROLE)"
            )
        if not caller.admin:
            raise _bearer_error(
                realm,
                status.HTTP_403_FORBIDDEN,
                "insufficient_scope",
                f"the token does not carry the role {role}",
                scope=role,
            )
        return caller

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        assert self._keys is not None
        s = self.settings
        try:
            key = await self._keys.key_for(jwt.get_unverified_header(token).get("kid"))
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=list(ALGORITHMS),
                audience=s.audiences,
                issuer=s.issuer,
                leeway=s.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except KeysUnavailable as e:
            log.warning("a token could not be checked: %s", e)
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "the token could not be checked (signing keys unavailable); retry later",
                headers={"Retry-After": str(int(RETRY_FETCH_SECONDS))},
            ) from e
        except (jwt.PyJWTError, ValueError) as e:
            raise _bearer_error(self.names.realm, 401, "invalid_token", _why_invalid(e)) from e
        return claims

    def _caller_of(self, claims: dict[str, Any]) -> Caller:
        s = self.settings
        owner = claims.get(s.owner_claim)
        if not isinstance(owner, str) or not owner:
            raise _bearer_error(
                self.names.realm,
                401,
                "invalid_token",
                f"the token has no {s.owner_claim!r} claim to name its owner",
            )
        scp = claims.get("scp", "")
        roles = claims.get("roles", [])
        scopes = frozenset(scp.split()) if isinstance(scp, str) else frozenset()
        role_set = (
            frozenset(r for r in roles if isinstance(r, str))
            if isinstance(roles, list)
            else frozenset()
        )
        return Caller(
            subject=str(claims.get("sub", "")),
            owner_id=owner,
            scopes=scopes,
            roles=role_set,
            admin=self.names.admin in role_set,
        )


# What a client is told of a token that failed a check, most specific first.
_INVALID_TOKEN = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.InvalidAudienceError, "the token is not for this API"),
    (jwt.InvalidIssuerError, "the token is from another issuer"),
    (jwt.InvalidSignatureError, "the token signature is invalid"),
)


def _why_invalid(error: Exception) -> str:
    # Otherwise: malformed, unknown key id, missing claims, not yet valid, wrong algorithm.
    return next(
        (why for kind, why in _INVALID_TOKEN if isinstance(error, kind)), "the token is not valid"
    )


def _bearer_token(authorization: str | None, realm: str) -> str:
    if not authorization:
        raise _bearer_error(realm, status.HTTP_401_UNAUTHORIZED, "", "a bearer token is required")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _bearer_error(
            realm,
            status.HTTP_401_UNAUTHORIZED,
            "invalid_request",
            "use Authorization: Bearer <token>",
        )
    return token.strip()


def authenticator(app: FastAPI, names: PermissionNames | None = None) -> Authenticator:
    """The app's authenticator: `app.state.auth` if the composition root set one, otherwise
    made once from the environment (AuthSettings) and the application's `names`, and logged."""
    found = getattr(app.state, "auth", None)
    if isinstance(found, Authenticator):
        return found
    if names is None:
        raise RuntimeError("authentication is not set up: give the router auth_lifespan(names)")
    made = Authenticator(AuthSettings(), names)
    app.state.auth = made
    (log.info if made.settings.enabled else log.warning)(
        made.describe(), extra={"event": "auth", "enabled": made.settings.enabled}
    )
    return made


def auth_lifespan(names: PermissionNames) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """For a router's `lifespan`: settle (and log) authentication at start-up, so a bad
    configuration stops the service instead of failing its first request."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        authenticator(app, names)
        yield

    return lifespan


def require(permission: Permission) -> Callable[[Request], Awaitable[Caller]]:
    """A FastAPI dependency: the caller, allowed `permission`, or a 401/403 problem."""

    async def caller(request: Request) -> Caller:
        return await authenticator(request.app).caller(
            request.headers.get("Authorization"), permission
        )

    return caller


# A service whose routes check no tokens (package, ...) has no names of the application's:
# its admin role is the one AUTH_ADMIN_ROLE names, and none when unset.
_OPERATOR = PermissionNames(realm="internal", write="", read="", admin="")


async def _admin(request: Request) -> Caller:
    """A FastAPI dependency: an operator (the admin role when tokens are checked)."""
    return await authenticator(request.app, _OPERATOR).admin(request.headers.get("Authorization"))


ReaderDep = Annotated[Caller, Depends(require(Permission.READ))]
WriterDep = Annotated[Caller, Depends(require(Permission.WRITE))]
AdminDep = Annotated[Caller, Depends(_admin)]


async def _operator(request: Request, caller: ReaderDep) -> Caller:
    """The caller of an operators' view (the console's data): an admin, or anyone while
    authentication is off."""
    if caller.unrestricted or caller.admin:
        return caller
    realm = authenticator(request.app).names.realm
    raise HTTPException(
        status.HTTP_403_FORBIDDEN,
        "this is an operators' view: the token needs the admin role",
        headers={
            "WWW-Authenticate": f'Bearer realm="{realm}", error="insufficient_scope", '
            'error_description="the admin role is required"'
        },
    )


OperatorDep = Annotated[Caller, Depends(_operator)]
