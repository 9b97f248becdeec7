"""Who is calling: OAuth2 bearer JWTs, RS256 against a JWKS (production) or an HS256
development key (dev mode only). `alg: none`, unknown algorithms, expired or not-yet-valid
tokens, a wrong issuer or audience, and unknown roles are all refused."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import jwt

from hvc.gateway.settings import GatewaySettings

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


class Verifier:
    def __init__(self, settings: GatewaySettings) -> None:
        self.s = settings
        self._jwks: jwt.PyJWKClient | None = None
        self._file_keys: dict[str, Any] = {}
        if settings.jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300)
        if settings.jwks_file:
            with open(settings.jwks_file) as f:
                for k in json.load(f)["keys"]:
                    self._file_keys[k.get("kid", "")] = jwt.PyJWK(k).key

    def _key(self, token: str, alg: str) -> tuple[Any, str]:
        if alg == "HS256":
            if not self.s.dev_mode:
                raise Unauthorized("HS256 tokens are accepted only in development mode")
            return self.s.dev_key.get_secret_value(), "HS256"
        if alg != "RS256":
            raise Unauthorized(f"algorithm {alg!r} is not accepted")
        kid = jwt.get_unverified_header(token).get("kid", "")
        if kid in self._file_keys:
            return self._file_keys[kid], "RS256"
        if self._jwks is not None:
            return self._jwks.get_signing_key_from_jwt(token).key, "RS256"
        raise Unauthorized("no key for this token")

    def verify(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("a bearer token is required")
        token = authorization[7:].strip()
        try:
            alg = jwt.get_unverified_header(token).get("alg", "")
            key, algorithm = self._key(token, alg)
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
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        role = claims.get("role")
        if role not in ROLES:
            raise Unauthorized(f"unknown role {role!r}")
        if role == "customer" and not claims.get("customer_id"):
            raise Unauthorized("a customer token names its customer_id")
        if role == "manager" and not claims.get("manager_id"):
            raise Unauthorized("a manager token names its manager_id")
        return Principal(
            str(claims["sub"]), role, claims.get("customer_id"), claims.get("manager_id")
        )


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
