"""Tokens: RS256 against a JWKS, HS256 only in development mode, and every way a token can be
wrong (expired, wrong signature, `alg: none`, unknown role, wrong audience)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import subprocess
import sys
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from hvc.common.settings import HvcSettings
from hvc.gateway.auth import Jwks, Principal, Unauthorized, Verifier, mint
from hvc.gateway.settings import GatewaySettings

DEV = GatewaySettings(dev_mode=True)
NOW = dt.datetime.now(dt.UTC)


def verify(verifier: Verifier, authorization: str | None) -> Principal:
    return asyncio.run(verifier.verify(authorization))


def claims(**kw):
    base = {
        "sub": "u1",
        "role": "agent",
        "iss": "hvc",
        "aud": "hvc-api",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + dt.timedelta(hours=1)).timestamp()),
    }
    return {**base, **kw}


@pytest.fixture(scope="module")
def rsa_setup(tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk |= {"kid": "k1", "use": "sig", "alg": "RS256"}
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return key, GatewaySettings(jwks_file=str(path))


def test_a_development_token_round_trips_in_dev_mode():
    token = mint(DEV, role="manager", sub="m1", manager_id="M7")
    assert verify(Verifier(DEV), f"Bearer {token}") == Principal("m1", "manager", None, "M7")


def test_rs256_against_the_jwks(rsa_setup):
    key, settings = rsa_setup
    token = jwt.encode(
        claims(role="customer", customer_id="C1"), key, "RS256", headers={"kid": "k1"}
    )
    assert verify(Verifier(settings), f"Bearer {token}").customer_id == "C1"


def test_hs256_is_refused_without_dev_mode(rsa_setup):
    _, settings = rsa_setup
    token = jwt.encode(claims(), DEV.dev_key.get_secret_value(), "HS256")
    with pytest.raises(Unauthorized, match="development"):
        verify(Verifier(settings), f"Bearer {token}")


def b64(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "make",
    [
        lambda key: f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.",
        lambda key: jwt.encode(
            claims(exp=int((NOW - dt.timedelta(hours=1)).timestamp())),
            key,
            "RS256",
            headers={"kid": "k1"},
        ),
        lambda key: jwt.encode(
            claims(),
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "RS256",
            headers={"kid": "k1"},
        ),
        lambda key: jwt.encode(claims(role="root"), key, "RS256", headers={"kid": "k1"}),
        lambda key: jwt.encode(claims(aud="other"), key, "RS256", headers={"kid": "k1"}),
        lambda key: jwt.encode(claims(role="customer"), key, "RS256", headers={"kid": "k1"}),
        lambda key: jwt.encode(
            {k: v for k, v in claims().items() if k != "exp"}, key, "RS256", headers={"kid": "k1"}
        ),
        lambda key: "not.a.token",
    ],
    ids=[
        "alg-none",
        "expired",
        "wrong-signature",
        "unknown-role",
        "wrong-audience",
        "customer-without-id",
        "no-expiry",
        "garbage",
    ],
)
def test_bad_tokens_are_refused(rsa_setup, make):
    key, settings = rsa_setup
    with pytest.raises(Unauthorized):
        verify(Verifier(settings), f"Bearer {make(key)}")


def test_no_bearer_is_refused():
    with pytest.raises(Unauthorized):
        verify(Verifier(DEV), None)
    with pytest.raises(Unauthorized):
        verify(Verifier(DEV), "Basic dTpw")


def test_dev_mode_is_refused_with_a_production_profile():
    with pytest.raises(ValueError, match="production"):
        DEV.check(production=True)
    DEV.check(production=False)
    assert HvcSettings().profile.value == "development"
    with pytest.raises(ValueError, match="JWKS"):
        GatewaySettings(dev_mode=False)


def test_the_token_command_mints_only_in_dev_mode(tmp_path):
    env = {"HVC_GATEWAY_DEV_MODE": "true", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "hvc.gateway",
            "token",
            "--role",
            "customer",
            "--sub",
            "app",
            "--customer",
            "C9",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert verify(Verifier(DEV), f"Bearer {out.stdout.strip()}").customer_id == "C9"
    jwks = tmp_path / "j.json"
    jwks.write_text('{"keys": []}')
    refused = subprocess.run(
        [sys.executable, "-m", "hvc.gateway", "token", "--role", "agent", "--sub", "a"],
        capture_output=True,
        text=True,
        env={"HVC_GATEWAY_JWKS_FILE": str(jwks), "PATH": "/usr/bin"},
    )
    assert refused.returncode == 2 and "DEV_MODE" in refused.stderr


@pytest.mark.parametrize(
    "bad",
    [
        {"role": "manager", "manager_id": "../managers/M0001"},
        {"role": "manager", "manager_id": {"$ne": None}},
        {"role": "customer", "customer_id": ".."},
        {"sub": ["u1"]},
        {"exp": int((NOW + dt.timedelta(days=36500)).timestamp())},
    ],
    ids=["path-in-manager-id", "object-claim", "dots-only", "list-subject", "a-century-long"],
)
def test_identity_claims_must_be_ids_and_tokens_short_lived(bad):
    token = jwt.encode(claims(**bad), DEV.dev_key.get_secret_value(), "HS256")
    with pytest.raises(Unauthorized):
        verify(Verifier(DEV), f"Bearer {token}")


def test_an_oversized_token_is_refused_unread():
    with pytest.raises(Unauthorized, match="at most"):
        verify(Verifier(DEV), "Bearer " + "a" * 20_000)


def _jwks_of(key, kid):
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [jwk | {"kid": kid, "use": "sig", "alg": "RS256"}]}


def test_forged_key_ids_fetch_the_jwks_at_most_once_per_interval_off_the_loop():
    """Twenty tokens with made-up key ids against a JWKS answering in 200 ms: one fetch, in a
    thread, and the loop keeps turning meanwhile."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    doc = _jwks_of(key, "k1")

    def slow_fetch():
        time.sleep(0.2)
        return doc

    now = [1000.0]
    jwks = Jwks(
        "https://idp.example/jwks", min_refresh_s=60, fetch=slow_fetch, clock=lambda: now[0]
    )
    verifier = Verifier(GatewaySettings(jwks_file=None, dev_mode=True))
    verifier.jwks = jwks
    forged = [jwt.encode(claims(), key, "RS256", headers={"kid": f"forged-{i}"}) for i in range(20)]
    good = jwt.encode(claims(), key, "RS256", headers={"kid": "k1"})

    async def run():
        gaps, last = [], time.monotonic()

        async def ticker():
            nonlocal last
            while True:
                await asyncio.sleep(0.01)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        tick = asyncio.create_task(ticker())
        results = await asyncio.gather(
            *(verifier.verify(f"Bearer {t}") for t in forged), return_exceptions=True
        )
        ok = await verifier.verify(f"Bearer {good}")
        tick.cancel()
        return results, ok, max(gaps)

    results, ok, worst_gap = asyncio.run(run())
    assert all(isinstance(r, Unauthorized) for r in results)
    assert ok.sub == "u1"
    assert jwks.fetches == 1
    assert worst_gap < 0.1, worst_gap  # the fetch did not hold the loop
    # Within the interval a new forged id fetches nothing; after it, a rotated key is found.
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    doc = _jwks_of(rotated, "k2")
    token = jwt.encode(claims(), rotated, "RS256", headers={"kid": "k2"})
    with pytest.raises(Unauthorized):
        verify(verifier, f"Bearer {token}")
    assert jwks.fetches == 1
    now[0] += 61
    assert verify(verifier, f"Bearer {token}").sub == "u1"
    assert jwks.fetches == 2
