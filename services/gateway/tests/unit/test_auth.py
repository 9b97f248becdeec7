"""Tokens: RS256 against a JWKS, HS256 only in development mode, and every way a token can be
wrong (expired, wrong signature, `alg: none`, unknown role, wrong audience)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from hvc.common.settings import HvcSettings
from hvc.gateway.auth import Principal, Unauthorized, Verifier, mint
from hvc.gateway.settings import GatewaySettings

DEV = GatewaySettings(dev_mode=True)
NOW = dt.datetime.now(dt.UTC)


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
    assert Verifier(DEV).verify(f"Bearer {token}") == Principal("m1", "manager", None, "M7")


def test_rs256_against_the_jwks(rsa_setup):
    key, settings = rsa_setup
    token = jwt.encode(
        claims(role="customer", customer_id="C1"), key, "RS256", headers={"kid": "k1"}
    )
    assert Verifier(settings).verify(f"Bearer {token}").customer_id == "C1"


def test_hs256_is_refused_without_dev_mode(rsa_setup):
    _, settings = rsa_setup
    token = jwt.encode(claims(), DEV.dev_key.get_secret_value(), "HS256")
    with pytest.raises(Unauthorized, match="development"):
        Verifier(settings).verify(f"Bearer {token}")


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
        Verifier(settings).verify(f"Bearer {make(key)}")


def test_no_bearer_is_refused():
    with pytest.raises(Unauthorized):
        Verifier(DEV).verify(None)
    with pytest.raises(Unauthorized):
        Verifier(DEV).verify("Basic dTpw")


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
    assert Verifier(DEV).verify(f"Bearer {out.stdout.strip()}").customer_id == "C9"
    jwks = tmp_path / "j.json"
    jwks.write_text('{"keys": []}')
    refused = subprocess.run(
        [sys.executable, "-m", "hvc.gateway", "token", "--role", "agent", "--sub", "a"],
        capture_output=True,
        text=True,
        env={"HVC_GATEWAY_JWKS_FILE": str(jwks), "PATH": "/usr/bin"},
    )
    assert refused.returncode == 2 and "DEV_MODE" in refused.stderr
