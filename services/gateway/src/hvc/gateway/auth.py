"""Who is calling: OAuth2 bearer JWTs, RS256 against a JWKS (production) or an HS256
development key (dev mode only). `alg: none`, unknown algorithms, expired or not-yet-valid
tokens, a wrong issuer or audience, unknown roles, identity claims that are not ids, and
tokens living longer than `max_token_lifetime_s` are all refused.

The identity provider's JWKS is fetched off the event loop (a thread), at most once per
`jwks_min_refresh_s` whatever the tokens ask for: a token with a key id the set does not have
triggers a refresh only when the last one is that old; otherwise it is refused at once. So
forged tokens with made-up key ids cannot make the gateway fetch, nor block its loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from hvc.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)
ROLES = ("customer", "agent", "manager", "supervisor", "admin", "integration")


class Unauthorized(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str
    customer_id: str | None = None
    manager_id: str | None = None

    @property
    def caller(self) -> str:
        return f"{self.role}:{self.sub}"


# What an identity claim may be: the API's id alphabet, and not only dots.
CLAIM_ID = re.compile(r"^(?!\.+$)[A-Za-z0-9_\-:.@]{1,128}$")


class Jwks:
    """The identity provider's keys by id, fetched off the loop, at most once per
    `min_refresh_s`, and again when older than `max_age_s` (key rotation)."""

    def __init__(
        self,
        url: str,
        *,
        min_refresh_s: float = 60.0,
        max_age_s: float = 300.0,
        timeout_s: float = 5.0,
        fetch: Callable[[], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.min_refresh_s, self.max_age_s, self.timeout_s = min_refresh_s, max_age_s, timeout_s
        self._fetch_doc = fetch or self._get
        self.clock = clock
        self.keys: dict[str, Any] = {}
        self.fetched_at = -math.inf  # the last attempt, answered or not
        self.fetches = 0
        self._inflight: asyncio.Task[None] | None = None

    async def key(self, kid: str) -> Any | None:
        age = self.clock() - self.fetched_at
        if (kid not in self.keys or age >= self.max_age_s) and age >= self.min_refresh_s:
            await self._refresh()
        return self.keys.get(kid)

    async def _refresh(self) -> None:
        """One fetch at a time; callers meanwhile wait for the same one."""
        if self._inflight is None or self._inflight.done():
            self.fetched_at = self.clock()  # failures count too: no retry storm
            self._inflight = asyncio.ensure_future(self._load())
        await asyncio.shield(self._inflight)

    async def _load(self) -> None:
        self.fetches += 1
        try:
            doc = await asyncio.to_thread(self._fetch_doc)
            keys = {
                str(k.get("kid", "")): jwt.PyJWK(k).key
                for k in doc.get("keys", [])
                if k.get("kty") == "RSA" and k.get("use", "sig") == "sig"
            }
        except Exception:
            log.warning("JWKS not fetched; the keys at hand stay", exc_info=True)
            return
        self.keys = keys

    def _get(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url, timeout=self.timeout_s) as r:  # noqa: S310
            doc: dict[str, Any] = json.loads(r.read(1 << 20))
        return doc


class Verifier:
    def __init__(self, settings: GatewaySettings) -> None:
        self.s = settings
        self.jwks: Jwks | None = None
        self._file_keys: dict[str, Any] = {}
        if settings.jwks_url:
            self.jwks = Jwks(settings.jwks_url, min_refresh_s=settings.jwks_min_refresh_s)
        if settings.jwks_file:
            with open(settings.jwks_file) as f:
                for k in json.load(f)["keys"]:
                    self._file_keys[k.get("kid", "")] = jwt.PyJWK(k).key

    async def _key(self, token: str, alg: str) -> tuple[Any, str]:
        if alg == "HS256":
            if not self.s.dev_mode:
                raise Unauthorized("HS256 tokens are accepted only in development mode")
            return self.s.dev_key.get_secret_value(), "HS256"
        if alg != "RS256":
            raise Unauthorized(f"algorithm {alg!r} is not accepted")
        kid = jwt.get_unverified_header(token).get("kid", "")
        if not isinstance(kid, str):
            raise Unauthorized("the key id is not a string")
        if kid in self._file_keys:
            return self._file_keys[kid], "RS256"
        if self.jwks is not None and (key := await self.jwks.key(kid)) is not None:
            return key, "RS256"
        raise Unauthorized("no key for this token")

    async def verify(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("a bearer token is required")
        token = authorization[7:].strip()
        if len(token) > self.s.max_token_bytes:
            raise Unauthorized(f"a token is at most {self.s.max_token_bytes} bytes")
        try:
            alg = jwt.get_unverified_header(token).get("alg", "")
            key, algorithm = await self._key(token, alg)
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.s.audience,
                issuer=self.s.issuer,
                options={"require": ["exp", "iat", "sub", "role"]},
                leeway=30,
            )
        except Unauthorized:
            raise
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        lifetime = claims["exp"] - claims["iat"]
        if not isinstance(lifetime, int | float) or lifetime > self.s.max_token_lifetime_s:
            raise Unauthorized(
                f"a token may live at most {self.s.max_token_lifetime_s} s (exp - iat)"
            )
        role = claims.get("role")
        if role not in ROLES:
            raise Unauthorized(f"unknown role {role!r}")
        ids = {k: claims.get(k) for k in ("sub", "customer_id", "manager_id")}
        for name, value in ids.items():
            if value is not None and not (isinstance(value, str) and CLAIM_ID.match(value)):
                raise Unauthorized(f"claim {name} is not an id")
        if role == "customer" and not ids["customer_id"]:
            raise Unauthorized("a customer token names its customer_id")
        if role == "manager" and not ids["manager_id"]:
            raise Unauthorized("a manager token names its manager_id")
        return Principal(str(ids["sub"]), role, ids["customer_id"], ids["manager_id"])


def mint(
    settings: GatewaySettings,
    *,
    role: str,
    sub: str,
    customer_id: str | None = None,
    manager_id: str | None = None,
    ttl: dt.timedelta = dt.timedelta(hours=12),
    now: dt.datetime | None = None,
) -> str:
    """A development token (HS256, dev mode only)."""
    if not settings.dev_mode:
        raise ValueError("development tokens need HVC_GATEWAY_DEV_MODE=true")
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    now = now or dt.datetime.now(dt.UTC)
    claims: dict[str, Any] = {
        "sub": sub,
        "role": role,
        "iss": settings.issuer,
        "aud": settings.audience,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    if customer_id:
        claims["customer_id"] = customer_id
    if manager_id:
        claims["manager_id"] = manager_id
    return jwt.encode(claims, settings.dev_key.get_secret_value(), algorithm="HS256")
