"""HTTP abuse on the gateway, with the whole platform running on data the feed made: oversized
and malformed bodies, invalid tokens (expired, wrong signature, `alg: none`, none at all),
other customers' ids, a manager outside their portfolio, odd paths, a flood beyond the rate
limit, and calls to the services that go around the gateway. Every answer is the 4xx it
should be, as problem details; no 5xx; nothing of the other customer in any answer."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import uuid
from typing import Any

import httpx
import jwt
import pytest

from hvc.devinfra import chaos, local
from hvc.gateway.auth import mint
from hvc.gateway.settings import GatewaySettings
from hvc.simulator.world import Options, World

pytestmark = pytest.mark.e2e
SERVICES = (*chaos.STREAM_SERVICES, "gateway")
FEED = {"customers": 60, "days": 120, "seed": 5}
LIMIT = 120  # requests per minute per caller, for the flood
DATA_KEYS = ("profile", "effective_tier", "tier", "benefits", "warnings", "complaints", "tasks")


def _hand_made(alg: str, claims: dict[str, Any], signature: bytes = b"") -> str:
    """A token as an attacker writes it: any header, any claims, any signature."""

    def part(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    header = json.dumps({"alg": alg, "typ": "JWT"}).encode()
    return f"{part(header)}.{part(json.dumps(claims).encode())}.{part(signature)}"


@pytest.mark.timeout(900)
def test_abuse_of_the_gateway_gets_clear_4xx_answers_and_no_data(infra, chaos_report):
    inst = local.attached("chaos-http", int(os.environ.get("HVC_CHAOS_HTTP_PORT2", "18480")))
    tag = uuid.uuid4().hex[:8]
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "MONGO_URI": infra.mongo_uri,
        "HVC_GATEWAY_RATE_LIMIT_PER_MINUTE": str(LIMIT),
    }
    world = World(Options(FEED["customers"], FEED["seed"], dt.date(2025, 1, 1), FEED["days"]))
    mine = world.showcase()["diamond_customer"]
    other = next(c for c in world.customers if c.customer_id != mine)
    settings = GatewaySettings(dev_mode=True)
    url = f"http://127.0.0.1:{inst.http_port('gateway')}"
    dbs = {s: f"chaos_http_{s}_{tag}" for s in SERVICES}
    asyncio.run(chaos.groups_at_end(infra.kafka_bootstrap, chaos.STREAM_SERVICES, dbs))
    try:
        for s in SERVICES:
            overrides = {**env, **chaos.service_env(s, dbs)}
            local.start_service(inst, s, env_overrides=overrides)
        for s in SERVICES:
            local.wait_ready(inst, s, timeout_s=120)
        feed = local.Feed(FEED["customers"], FEED["days"], 0.0, FEED["seed"])
        local.start_feed(inst, feed, bootstrap=infra.kafka_bootstrap)
        local.wait_feed(inst, timeout_s=300)
        asyncio.run(chaos.wait_no_lag(infra.kafka_bootstrap, chaos.STREAM_SERVICES, 300, dbs))

        def token(role: str, **kw: Any) -> str:
            return mint(settings, role=role, sub=f"abuse-{role}", **kw)

        agent = token("agent")
        customer = token("customer", customer_id=mine)
        manager = token("manager", manager_id="M-NOBODY")  # nobody's account manager
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        expired = mint(settings, role="agent", sub="old", now=past, ttl=dt.timedelta(hours=1))
        claims = jwt.decode(agent, options={"verify_signature": False})
        forged = jwt.encode(claims, "not-the-key-" * 4, algorithm="HS256")
        unsigned = _hand_made("none", claims)
        rs_garbage = _hand_made("RS256", claims, os.urandom(256))
        theirs = f"/v1/customers/{other.customer_id}"
        # A valid body: the refusal must come from the role, not from validation.
        soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        override = json.dumps({"tier": "GOLD", "reason": "retention offer", "expires_at": soon})
        big = b'{"customer_id": "' + b"x" * (settings.max_body_bytes + 1) + b'"}'
        json_h = {"content-type": "application/json"}
        cases: list[tuple[str, str, str, dict[str, str], bytes | str | None, set[int]]] = [
            ("no token", "GET", theirs, {}, None, {401}),
            ("expired token", "GET", theirs, {"Authorization": f"Bearer {expired}"}, None, {401}),
            ("wrong signature", "GET", theirs, {"Authorization": f"Bearer {forged}"}, None, {401}),
            ("alg none", "GET", theirs, {"Authorization": f"Bearer {unsigned}"}, None, {401}),
            ("RS256 header", "GET", theirs, {"Authorization": f"Bearer {rs_garbage}"}, None, {401}),
            ("not a JWT", "GET", theirs, {"Authorization": "Bearer a.b.c"}, None, {401}),
            (
                "another customer",
                "GET",
                theirs,
                {"Authorization": f"Bearer {customer}"},
                None,
                {403, 404},
            ),
            (
                "another customer's tier",
                "GET",
                theirs + "/tier",
                {"Authorization": f"Bearer {customer}"},
                None,
                {403, 404},
            ),
            (
                "outside the portfolio",
                "GET",
                theirs,
                {"Authorization": f"Bearer {manager}"},
                None,
                {403, 404},
            ),
            (
                "oversized body",
                "POST",
                "/v1/complaints",
                {"Authorization": f"Bearer {agent}", **json_h},
                big,
                {413},
            ),
            (
                "malformed JSON",
                "POST",
                "/v1/complaints",
                {"Authorization": f"Bearer {agent}", **json_h},
                b'{"customer_id": ',
                {400, 422},
            ),
            (
                "wrong field types",
                "POST",
                "/v1/complaints",
                {"Authorization": f"Bearer {agent}", **json_h},
                b'{"customer_id": 5, "channel": [], "category": null}',
                {422},
            ),
            (
                "a customer's override",
                "PUT",
                f"/v1/customers/{mine}/tier/override",
                {"Authorization": f"Bearer {customer}", **json_h},
                override,
                {403},
            ),
            (
                "odd id",
                "GET",
                "/v1/customers/..%2F..%2Fadmin",
                {"Authorization": f"Bearer {agent}"},
                None,
                {404, 422},
            ),
            (
                "unknown route",
                "GET",
                "/v1/nothing",
                {"Authorization": f"Bearer {agent}"},
                None,
                {404},
            ),
            ("wrong method", "DELETE", theirs, {"Authorization": f"Bearer {agent}"}, None, {405}),
        ]
        answers: list[tuple[str, int, set[int]]] = []
        leaks: list[str] = []
        with httpx.Client(base_url=url, timeout=30) as http:
            # The data is there: staff see the other customer (so a refusal is not an absence).
            seen = http.get(theirs, headers={"Authorization": f"Bearer {agent}"})
            assert seen.status_code == 200 and seen.json()["customer_id"] == other.customer_id
            for name, method, path, headers, body, want in cases:
                r = http.request(method, path, headers=headers, content=body)
                answers.append((name, r.status_code, want))
                if r.status_code >= 400:
                    assert r.headers["content-type"].startswith("application/problem+json"), name
                    assert r.headers.get("x-request-id"), name
                # A leak: anything of the other customer beyond the path the caller sent
                # (`instance` echoes it), or any of the 360's data.
                body = r.json() if r.status_code >= 400 else {"answered": r.text}
                shown = json.dumps({k: v for k, v in body.items() if k != "instance"})
                if other.customer_id in shown or any(k in body for k in DATA_KEYS):
                    leaks.append(name)
            # Around the gateway: the services take its signed calls only (issue 20, item 10).
            direct = {
                "tiering": f"/v1/customers/{other.customer_id}/tier",
                "warnings": f"/v1/customers/{other.customer_id}/profile",
                "benefits": f"/v1/customers/{other.customer_id}/benefits",
                "complaints": f"/v1/complaints?customer_id={other.customer_id}",
            }
            for s, path in direct.items():
                r = httpx.get(f"http://127.0.0.1:{inst.http_port(s)}{path}", timeout=10)
                answers.append((f"{s} called around the gateway", r.status_code, {401}))
                if other.customer_id in r.text.replace(path, ""):
                    leaks.append(f"{s} called around the gateway")
            # A flood beyond the rate limit: 429 with Retry-After; nothing else breaks.
            flood = token("integration")
            codes = [
                http.get(f"/v1/customers/{mine}/tier", headers={"Authorization": f"Bearer {flood}"})
                for _ in range(LIMIT + 20)
            ]
            limited = [r for r in codes if r.status_code == 429]
            answers.append(("flood", 429 if limited else codes[-1].status_code, {429}))
            answers += [("flood", r.status_code, {200, 429}) for r in codes]
            retry_after = [int(r.headers.get("retry-after", "0")) for r in limited]
    finally:
        local.stop(inst, "simulator")
        for s in SERVICES:
            local.stop(inst, s)
    wrong = [(n, code, sorted(w)) for n, code, w in answers if code not in w]
    server_errors = [(n, code) for n, code, _ in answers if code >= 500]
    chaos_report.append(
        {
            "scenario": f"HTTP abuse ({len(cases)} kinds + a flood of {LIMIT + 20})",
            "where": f"gateway: 5xx {len(server_errors)}, leaks {len(leaks)}",
            "offered": len(answers) - 1,
            "expected": len(answers) - 1,
            "found": len(answers) - 1 - len(wrong),
            "lost": len(wrong),
            "duplicated": 0,
            "copies": 0,
            "recovery_s": 0,
        }
    )
    assert server_errors == [] and wrong == [], wrong
    assert leaks == []
    assert limited and min(retry_after) >= 1
