"""Every route and role: allowed, forbidden, and another customer's id (403 or 404, never
data); the audit trail of reads; rate limits, size limits, malformed input, request ids.
The gateway's audit store is the real one; the services behind it are stand-ins (fakes.py)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from pymongo import AsyncMongoClient

from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.gateway.auth import mint
from hvc.gateway.bootstrap import bootstrap
from hvc.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration
ROLES = {
    "customer": dict(role="customer", sub="app-c1", customer_id="C1"),
    "agent": dict(role="agent", sub="agent-1"),
    "manager": dict(role="manager", sub="mgr-1", manager_id="M1"),
    "supervisor": dict(role="supervisor", sub="sup-1"),
    "admin": dict(role="admin", sub="adm-1"),
    "integration": dict(role="integration", sub="crm"),
}
OVERRIDE = {"tier": "GOLD", "reason": "retention offer", "expires_at": "2027-01-01T00:00:00Z"}
CLAIM = {"Idempotency-Key": "key-00000001"}
BODIES = {
    "transition": {"to": "ACKNOWLEDGED"},
    "contact": {"contact_id": "c1", "channel": "PHONE"},
    "close": {"outcome": "RETAINED"},
    "simulation": {"ruleset": {}, "year": 2025},
    "callback": {"outcome": "REACHED", "notes": "客户满意"},
}
# route -> {role: (status for C1 / own object, status for C2 / another's)}
CUSTOMER_ROUTES = {
    ("GET", "/v1/customers/{c}", None, None): {
        "customer": (200, 403),
        "agent": (200, 200),
        "manager": (200, 403),
        "supervisor": (200, 200),
        "admin": (200, 200),
        "integration": (403, 403),
    },
    ("GET", "/v1/customers/{c}/tier", None, None): {
        "customer": (200, 403),
        "agent": (200, 200),
        "manager": (200, 403),
        "supervisor": (200, 200),
        "admin": (200, 200),
        "integration": (200, 200),
    },
    ("GET", "/v1/customers/{c}/tier/history", None, None): {
        "customer": (200, 403),
        "agent": (200, 200),
        "manager": (200, 403),
        "supervisor": (200, 200),
        "admin": (200, 200),
        "integration": (403, 403),
    },
    ("GET", "/v1/customers/{c}/benefits", None, None): {
        "customer": (200, 403),
        "agent": (200, 200),
        "manager": (200, 403),
        "supervisor": (200, 200),
        "admin": (200, 200),
        "integration": (403, 403),
    },
    ("GET", "/v1/customers/{c}/contacts", None, None): {
        "customer": (403, 403),
        "agent": (200, 200),
        "manager": (200, 403),
        "supervisor": (200, 200),
        "admin": (200, 200),
        "integration": (403, 403),
    },
    ("GET", "/v1/customers/{c}/complaints", None, None): {
        "customer": (403, 403),
        "agent": (200, 200),
        "manager": (200, 403),
        "supervisor": (200, 200),
        "admin": (200, 200),
        "integration": (403, 403),
    },
    ("POST", "/v1/customers/{c}/benefits/AIRPORT_LOUNGE/claims", None, "claim"): {
        "customer": (201, 403),
        "agent": (201, 201),
        "manager": (403, 403),
        "supervisor": (201, 201),
        "admin": (403, 403),
        "integration": (403, 403),
    },
    ("PUT", "/v1/customers/{c}/tier/override", "override", None): {
        "customer": (403, 403),
        "agent": (403, 403),
        "manager": (403, 403),
        "supervisor": (200, 200),
        "admin": (403, 403),
        "integration": (403, 403),
    },
}
# route with own / another's object -> {role: (own, another's)}
OBJECT_ROUTES = {
    ("GET", "/v1/complaints/{k}", None): {
        "customer": (200, 404),
        "agent": (200, 200),
        "manager": (200, 403),
        "supervisor": (200, 200),
        "admin": (200, 200),
        "integration": (403, 403),
    },
    ("POST", "/v1/complaints/{k}/transitions", "transition"): {
        "customer": (403, 403),
        "agent": (200, 200),
        "manager": (403, 403),
        "supervisor": (200, 200),
        "admin": (403, 403),
        "integration": (403, 403),
    },
    ("POST", "/v1/tasks/{t}/contacts", "contact"): {
        "customer": (403, 403),
        "agent": (403, 403),
        "manager": (201, 404),
        "supervisor": (201, 201),
        "admin": (403, 403),
        "integration": (403, 403),
    },
    ("POST", "/v1/tasks/{t}/close", "close"): {
        "customer": (403, 403),
        "agent": (403, 403),
        "manager": (200, 404),
        "supervisor": (200, 200),
        "admin": (403, 403),
        "integration": (403, 403),
    },
    ("POST", "/v1/callbacks/{b}/done", "callback"): {
        "customer": (403, 403),
        "agent": (403, 403),
        "manager": (200, 404),
        "supervisor": (200, 200),
        "admin": (403, 403),
        "integration": (403, 403),
    },
}
PLAIN_ROUTES = {
    ("GET", "/v1/complaints", None): {
        "customer": 200,
        "agent": 200,
        "manager": 403,
        "supervisor": 200,
        "admin": 200,
        "integration": 403,
    },
    ("GET", "/v1/worklist", None): {
        "customer": 403,
        "agent": 403,
        "manager": 200,
        "supervisor": 403,
        "admin": 403,
        "integration": 403,
    },
    ("GET", "/v1/customers?msisdn=8000", None): {
        "customer": 403,
        "agent": 200,
        "manager": 200,
        "supervisor": 200,
        "admin": 200,
        "integration": 403,
    },
    ("GET", "/v1/callers/13812348000", None): {
        "customer": 403,
        "agent": 200,
        "manager": 403,
        "supervisor": 200,
        "admin": 200,
        "integration": 200,
    },
    ("GET", "/v1/worklist/cases", None): {
        "customer": 403,
        "agent": 403,
        "manager": 200,
        "supervisor": 400,  # names the manager
        "admin": 403,
        "integration": 403,
    },
    ("GET", "/v1/reports/monthly/sla?from=2025-01&to=2025-03", None): {
        "customer": 403,
        "agent": 403,
        "manager": 403,
        "supervisor": 200,
        "admin": 200,
        "integration": 403,
    },
    ("GET", "/v1/reports/monthly/retention?from=2025-01&to=2025-03", None): {
        "customer": 403,
        "agent": 403,
        "manager": 200,  # its own
        "supervisor": 200,
        "admin": 200,
        "integration": 403,
    },
    ("GET", "/v1/outages/O-1/notices", None): {
        "customer": 403,
        "agent": 200,
        "manager": 403,
        "supervisor": 200,
        "admin": 200,
        "integration": 403,
    },
    ("GET", "/v1/worklist/callbacks", None): {
        "customer": 403,
        "agent": 403,
        "manager": 200,
        "supervisor": 400,  # names the manager
        "admin": 403,
        "integration": 403,
    },
    ("GET", "/v1/reports/callbacks?quarter=2026Q4", None): {
        "customer": 403,
        "agent": 403,
        "manager": 200,
        "supervisor": 200,
        "admin": 200,
        "integration": 403,
    },
    ("GET", "/v1/reports/outages", None): {
        "customer": 403,
        "agent": 403,
        "manager": 200,
        "supervisor": 200,
        "admin": 200,
        "integration": 403,
    },
    ("GET", "/v1/reports/sla", None): {
        "customer": 403,
        "agent": 403,
        "manager": 403,
        "supervisor": 200,
        "admin": 200,
        "integration": 403,
    },
    ("GET", "/v1/reports/tasks", None): {
        "customer": 403,
        "agent": 403,
        "manager": 200,
        "supervisor": 200,
        "admin": 200,
        "integration": 403,
    },
    ("POST", "/v1/tiering/simulations", "simulation"): {
        "customer": 403,
        "agent": 403,
        "manager": 403,
        "supervisor": 200,
        "admin": 200,
        "integration": 403,
    },
    ("GET", "/v1/audit?customer_id=C1", None): {
        "customer": 403,
        "agent": 403,
        "manager": 403,
        "supervisor": 200,
        "admin": 403,
        "integration": 403,
    },
}


@pytest.fixture
async def gateway(infra, tmp_path, stand_ins):
    db = f"it_gateway_{uuid.uuid4().hex[:8]}"
    settings = GatewaySettings(dev_mode=True, rate_limit_per_minute=100_000, **stand_ins)
    _, api = bootstrap(
        name="gateway-it",
        hvc=HvcSettings(data_dir=str(tmp_path)),
        kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
        mongo=MongoSettings(uri=infra.mongo_uri, database=db),
        settings=settings,
    )
    tokens = {r: mint(settings, **kw) for r, kw in ROLES.items()}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url="http://gw"
    ) as http:
        yield http, tokens, settings
    await api.state.upstreams.close()
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri)
    await client.drop_database(db)
    await client.close()


def auth(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


async def test_customer_scoped_routes_for_every_role(gateway):
    http, tokens, _ = gateway
    for (method, path, body, headers), expected in CUSTOMER_ROUTES.items():
        for role, (own, other) in expected.items():
            for cid, want in (("C1", own), ("C2", other)):
                h = auth(tokens[role], **(CLAIM if headers else {}))
                r = await http.request(
                    method, path.format(c=cid), headers=h, json=OVERRIDE if body else None
                )
                assert r.status_code == want, (method, path, role, cid, r.text)
                if want >= 400:
                    assert r.headers["content-type"] == "application/problem+json"
                    assert "effective_tier" not in r.text and "benefits" not in r.json()


async def test_object_routes_for_every_role(gateway):
    http, tokens, _ = gateway
    for (method, path, body), expected in OBJECT_ROUTES.items():
        for role, (own, other) in expected.items():
            for obj, want in (("1", own), ("2", other)):
                url = path.format(k=f"K{obj}", t=f"T-M{obj}", b=f"CB-2026Q4-C{obj}")
                r = await http.request(
                    method, url, headers=auth(tokens[role]), json=BODIES.get(body or "")
                )
                assert r.status_code == want, (method, url, role, r.text)
                if want >= 400:
                    assert "customer_id" not in r.json()


async def test_plain_routes_for_every_role(gateway):
    http, tokens, _ = gateway
    for (method, path, body), expected in PLAIN_ROUTES.items():
        for role, want in expected.items():
            r = await http.request(
                method, path, headers=auth(tokens[role]), json=BODIES.get(body or "")
            )
            assert r.status_code == want, (method, path, role, r.text)
    # A customer's complaint list is always its own, whatever it asks for.
    r = await http.get("/v1/complaints?customer_id=C2", headers=auth(tokens["customer"]))
    assert r.json()["customer_id"] == "C1"


async def test_the_360_shows_staff_more_than_the_customer(gateway):
    http, tokens, _ = gateway
    mine = (await http.get("/v1/customers/C1", headers=auth(tokens["customer"]))).json()
    staff = (await http.get("/v1/customers/C1", headers=auth(tokens["agent"]))).json()
    assert mine["tier"]["effective_tier"] == "GOLD"
    assert "profile" not in mine and "open_tasks" not in mine
    assert staff["profile"]["manager_id"] == "M1" and staff["open_tasks"][0]["task_id"] == "T-C1"


async def test_the_360_shows_full_numbers_only_to_the_staff_who_call_the_customer(gateway):
    http, tokens, _ = gateway
    seen = {}
    for role in ("agent", "manager", "supervisor", "admin"):
        r = await http.get("/v1/customers/C1", headers=auth(tokens[role]))
        assert r.status_code == 200
        seen[role] = r.json()["profile"]
    for role in ("agent", "manager"):
        assert (seen[role]["msisdns"], seen[role]["name"]) == (["13812348000"], "Wang Wu")
        assert seen[role]["masked"] is False
    for role in ("supervisor", "admin"):
        assert (seen[role]["msisdns"], seen[role]["name"]) == (["138****8000"], "W******")
        assert seen[role]["masked"] is True
        assert "13812348000" not in r.text


async def test_every_call_is_audited_refusals_and_writes_too_and_the_trail_cannot_be_changed(
    gateway,
):
    http, tokens, _ = gateway
    r = await http.get(
        "/v1/customers/C1/tier", headers=auth(tokens["agent"], **{"X-Request-Id": "req-abc-123"})
    )
    ours = r.headers["x-request-id"]
    assert ours != "req-abc-123"  # the stored request id is the gateway's, not the caller's
    await http.get("/v1/customers/C1/benefits", headers=auth(tokens["customer"]))
    await http.get("/v1/customers/C2/benefits", headers=auth(tokens["customer"]))  # refused
    await http.get("/v1/complaints/K2", headers=auth(tokens["customer"]))  # another's: 404
    await http.get("/v1/complaints", params={"customer_id": "C1"}, headers=auth(tokens["agent"]))
    await http.post(
        "/v1/complaints/K1/transitions",
        headers=auth(tokens["agent"]),
        json={"to": "ACKNOWLEDGED", "transition_id": "t-1"},
    )
    trail = (await http.get("/v1/audit?customer_id=C1", headers=auth(tokens["supervisor"]))).json()
    entries = {(e["role"], e["sub"], e["method"], e["route"]) for e in trail["items"]}
    assert ("agent", "agent-1", "GET", "/v1/customers/C1/tier") in entries
    assert ("customer", "app-c1", "GET", "/v1/customers/C1/benefits") in entries
    assert ("agent", "agent-1", "GET", "/v1/complaints") in entries  # a list names C1
    first = next(e for e in trail["items"] if e["caller_request_id"] == "req-abc-123")
    assert first["request_id"] == ours and first["status"] == 200 and first["at"]
    assert first["customer_ids"] == ["C1"] and first["client"]
    refused = (
        await http.get("/v1/audit?customer_id=C2", headers=auth(tokens["supervisor"]))
    ).json()
    statuses = {(e["route"], e["status"]) for e in refused["items"]}
    assert ("/v1/customers/C2/benefits", 403) in statuses  # a denial is recorded
    assert ("/v1/complaints/K2", 404) in statuses
    by_agent = (await http.get("/v1/audit?sub=agent-1", headers=auth(tokens["supervisor"]))).json()
    assert ("POST", "/v1/complaints/K1/transitions") in {
        (e["method"], e["route"]) for e in by_agent["items"]
    }
    r = await http.get("/v1/audit", headers=auth(tokens["supervisor"]))
    assert r.status_code == 422
    for method in ("DELETE", "PUT", "PATCH"):
        r = await http.request(method, "/v1/audit?customer_id=C1", headers=auth(tokens["admin"]))
        assert r.status_code == 405
    r = await http.delete("/v1/customers/C1", headers=auth(tokens["admin"]))
    assert r.status_code == 405


async def test_tokens_limits_and_bad_input(gateway, infra, tmp_path, stand_ins):
    http, tokens, settings = gateway
    r = await http.get("/v1/customers/C1/tier")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["x-request-id"]
    r = await http.get("/v1/customers/C1/tier", headers={"Authorization": "Bearer x.y.z"})
    assert r.status_code == 401
    big = "x" * (settings.max_body_bytes + 1)
    r = await http.post(
        "/v1/complaints",
        headers=auth(tokens["agent"], **{"content-type": "application/json"}),
        content=big,
    )
    assert r.status_code == 413 and r.json()["status"] == 413
    r = await http.post(
        "/v1/complaints/K1/transitions",
        headers=auth(tokens["agent"], **{"content-type": "application/json"}),
        content=b"{not json",
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    r = await http.get("/v1/customers/bad%20id/tier", headers=auth(tokens["agent"]))
    assert r.status_code == 422

    # A flood beyond the rate limit: 429 with Retry-After, per caller.
    limited = GatewaySettings(dev_mode=True, rate_limit_per_minute=5, **stand_ins)
    _, api = bootstrap(
        name="gateway-it-limit",
        hvc=HvcSettings(data_dir=str(tmp_path)),
        kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
        mongo=MongoSettings(uri=infra.mongo_uri, database=f"it_gw_limit_{uuid.uuid4().hex[:6]}"),
        settings=limited,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url="http://gw"
    ) as h2:
        token = mint(limited, role="integration", sub="flood")
        codes = [
            (await h2.get("/v1/customers/C1/tier", headers=auth(token))).status_code
            for _ in range(8)
        ]
        assert codes[:5] == [200] * 5 and set(codes[5:]) == {429}
        last = await h2.get("/v1/customers/C1/tier", headers=auth(token))
        assert int(last.headers["retry-after"]) >= 1
        other = mint(limited, role="integration", sub="quiet")
        assert (await h2.get("/v1/customers/C1/tier", headers=auth(other))).status_code == 200
    await api.state.upstreams.close()


async def test_filing_a_complaint_is_refused_to_the_wrong_roles_and_for_others(gateway):
    """(Allowed filings publish to the broker: see test_e2e.py.)"""
    http, tokens, _ = gateway
    body = {"customer_id": "C1", "channel": "APP_WEB", "category": "billing", "text": "x"}
    for role in ("manager", "admin"):
        r = await http.post("/v1/complaints", headers=auth(tokens[role]), json=body)
        assert r.status_code == 403, role
    other = {**body, "customer_id": "C2"}
    r = await http.post("/v1/complaints", headers=auth(tokens["customer"]), json=other)
    assert r.status_code == 403
    r = await http.post(
        "/v1/complaints", headers=auth(tokens["agent"]), json={**body, "channel": "FAX"}
    )
    assert r.status_code == 422


async def test_regulator_channels_are_filed_only_by_agents_and_integrations(gateway):
    """A customer (or a supervisor) cannot take the regulator's stricter SLA by naming its
    channel; an agent recording a MIIT complaint may (published: see test_e2e.py)."""
    http, tokens, _ = gateway
    for channel in ("MIIT", "CONSUMER_315", "MAYORS_MAILBOX"):
        body = {"customer_id": "C1", "channel": channel, "category": "billing", "text": "x"}
        for role in ("customer", "supervisor"):
            r = await http.post("/v1/complaints", headers=auth(tokens[role]), json=body)
            assert r.status_code == 403, (role, channel, r.text)
            assert channel in r.json()["detail"]


async def test_dot_only_ids_are_refused_and_answers_carry_security_headers(gateway):
    """`.` and `..` as an id were a path of their own upstream (another route's answer)."""
    http, tokens, _ = gateway
    for path in ("/v1/complaints/%2E", "/v1/complaints/%2E%2E", "/v1/customers/%2E%2E/tier"):
        r = await http.get(path, headers=auth(tokens["manager"]))
        assert r.status_code == 422, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["request_id"] == r.headers["x-request-id"]
    r = await http.get("/v1/customers/C1/tier", headers=auth(tokens["agent"]))
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in r.headers  # not served over TLS here


async def test_no_redirect_reflects_the_callers_host(gateway):
    http, tokens, _ = gateway
    r = await http.get("/v1/worklist/", headers={**auth(tokens["manager"]), "Host": "evil.example"})
    assert r.status_code == 404 and "location" not in r.headers


async def test_an_oversized_header_is_refused_before_it_is_read(gateway):
    http, _, _ = gateway
    r = await http.get("/v1/customers/C1/tier", headers={"Authorization": "Bearer " + "a" * 20_000})
    assert r.status_code == 431 and r.json()["status"] == 431


async def test_an_address_whose_tokens_keep_failing_is_limited_before_its_tokens_are_read(
    infra, tmp_path, stand_ins
):
    settings = GatewaySettings(dev_mode=True, failed_auth_per_minute=5, **stand_ins)
    _, api = bootstrap(
        name="gateway-it-failures",
        hvc=HvcSettings(data_dir=str(tmp_path)),
        kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
        mongo=MongoSettings(uri=infra.mongo_uri, database=f"it_gw_fail_{uuid.uuid4().hex[:6]}"),
        settings=settings,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api, client=("203.0.113.7", 4000)), base_url="http://gw"
    ) as flood:
        codes = [
            (await flood.get("/v1/customers/C1/tier", headers=auth("x.y.z"))).status_code
            for _ in range(8)
        ]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
        last = await flood.get("/v1/customers/C1/tier", headers=auth("x.y.z"))
        assert int(last.headers["retry-after"]) >= 1
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api, client=("198.51.100.9", 4000)), base_url="http://gw"
    ) as other:  # another address is not held by that one's failures
        token = mint(settings, role="integration", sub="ok")
        assert (await other.get("/v1/customers/C1/tier", headers=auth(token))).status_code == 200
    await api.state.upstreams.close()


async def test_an_idempotency_key_is_bound_to_its_caller_customer_and_body(gateway):
    http, tokens, _ = gateway
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex[:12]}"}
    first = await http.post(
        "/v1/customers/C1/benefits/BIRTHDAY_FREE/claims", headers=auth(tokens["agent"], **key)
    )
    assert first.status_code == 201, first.text
    again = await http.post(
        "/v1/customers/C1/benefits/BIRTHDAY_FREE/claims", headers=auth(tokens["agent"], **key)
    )
    assert again.status_code == 201
    other = await http.post(
        "/v1/customers/C1/benefits/LOUNGE/claims", headers=auth(tokens["agent"], **key)
    )
    assert other.status_code == 422 and "another request body" in other.json()["detail"]
    # The same key for another customer is another key: no refusal, no shared answer.
    elsewhere = await http.post(
        "/v1/customers/C2/benefits/LOUNGE/claims", headers=auth(tokens["agent"], **key)
    )
    assert elsewhere.status_code == 201
    body = {"customer_id": "C1", "channel": "APP_WEB", "category": "billing", "text": "x"}
    await http.post("/v1/complaints", headers=auth(tokens["customer"], **key), json=body)
    changed = {**body, "text": "another complaint"}
    r = await http.post("/v1/complaints", headers=auth(tokens["customer"], **key), json=changed)
    assert r.status_code == 422


async def test_the_rate_limit_holds_across_replicas_through_the_store(infra, tmp_path, stand_ins):
    """Two gateway processes on one store: 8 + 8 calls of one caller within a minute pass each
    process's own bucket (10 a minute), but not the limit they share once they have synced."""
    settings = GatewaySettings(dev_mode=True, rate_limit_per_minute=10, **stand_ins)
    db = f"it_gw_shared_{uuid.uuid4().hex[:6]}"
    apis = []
    for i in range(2):
        _, api = bootstrap(
            name=f"gateway-it-replica-{i}",
            hvc=HvcSettings(data_dir=str(tmp_path / str(i))),
            kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
            mongo=MongoSettings(uri=infra.mongo_uri, database=db),
            settings=settings,
        )
        api.state.shared_limit.clock = lambda: 1_800_000_030.0  # mid-window, for both
        apis.append(api)
    token = mint(settings, role="integration", sub="everywhere")
    codes: list[int] = []
    for api in apis:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://gw"
        ) as h:
            for _ in range(8):
                codes.append(
                    (await h.get("/v1/customers/C1/tier", headers=auth(token))).status_code
                )
    assert codes == [200] * 16  # each process alone allowed them
    for api in apis:
        await api.state.shared_limit.sync()
    for api in apis:
        await api.state.shared_limit.sync()  # both have read the total back
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://gw"
        ) as h:
            r = await h.get("/v1/customers/C1/tier", headers=auth(token))
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            other = mint(settings, role="integration", sub="someone-else")
            assert (await h.get("/v1/customers/C1/tier", headers=auth(other))).status_code == 200
        await api.state.upstreams.close()
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri)
    await client.drop_database(db)
    await client.close()


async def test_lookups_mask_per_role_and_keep_a_manager_to_its_portfolio(gateway):
    http, tokens, _ = gateway
    found = await http.get("/v1/customers?msisdn=8000", headers=auth(tokens["agent"]))
    assert [c["customer_id"] for c in found.json()["items"]] == ["C1", "C2"]
    assert found.json()["items"][0]["msisdns"] == ["13812348000"]  # an agent calls them
    mine = await http.get("/v1/customers?name=王", headers=auth(tokens["manager"]))
    assert [c["customer_id"] for c in mine.json()["items"]] == ["C1"]  # M1's only
    masked = await http.get("/v1/customers?msisdn=8000", headers=auth(tokens["supervisor"]))
    first = masked.json()["items"][0]
    assert (first["name"], first["msisdns"], first["masked"]) == ("王*", ["138****8000"], True)
    for bad in ("", "?msisdn=12", "?msisdn=8000&name=x", "?customer_id=../x"):
        r = await http.get(f"/v1/customers{bad}", headers=auth(tokens["agent"]))
        assert r.status_code in (400, 422), (bad, r.text)
    cases = await http.get(
        "/v1/worklist/cases?manager_id=M7&due=overdue", headers=auth(tokens["supervisor"])
    )
    assert cases.status_code == 200 and cases.json()["manager"] == "M7"
    case = cases.json()["items"][0]
    assert case["masked"] is True and case["msisdns"] == ["138****8000"]


async def test_the_vip_line_gets_tier_queue_manager_and_open_complaint(gateway):
    http, tokens, _ = gateway
    r = await http.get("/v1/callers/13812348000", headers=auth(tokens["integration"]))
    assert r.json() == {
        "found": True,
        "customer_id": "C1",
        "tier": "GOLD",
        "priority_queue": "P2",
        "manager_id": "M1",
        "do_not_disturb": False,
        "open_complaint": True,
        "open_complaints": [{"id": "K1", "status": "RECEIVED", "sla_state": "AT_RISK"}],
    }
    nobody = await http.get("/v1/callers/13900000000", headers=auth(tokens["agent"]))
    assert nobody.json() == {"found": False, "priority_queue": "P4"}
    trail = await http.get("/v1/audit?customer_id=C1", headers=auth(tokens["supervisor"]))
    calls = [e for e in trail.json()["items"] if e["request_id"] == r.headers["x-request-id"]]
    assert [(c["route"], c["status"]) for c in calls] == [("/v1/callers/13812348000", 200)]


async def test_the_vip_line_takes_the_open_complaints_the_warnings_answer_carries(gateway):
    """One upstream call: C7's lookup documents carry its open complaints, so the complaints
    service (which would answer 500 for C7) is not asked."""
    http, tokens, _ = gateway
    r = await http.get("/v1/callers/13812347777", headers=auth(tokens["integration"]))
    assert r.json() == {
        "found": True,
        "customer_id": "C7",
        "tier": "DIAMOND",
        "priority_queue": "P1",
        "manager_id": None,
        "do_not_disturb": False,
        "open_complaint": True,
        "open_complaints": [{"id": "K7", "status": "DISPATCHED", "sla_state": "ON_TRACK"}],
    }


async def test_the_vip_line_routes_by_tier_when_the_complaints_cannot_be_read(gateway):
    """The entry written ahead of the complaints call is the call's only one when the call
    answers as foreseen (200, the caller), and is followed by the call's own when not."""
    http, tokens, _ = gateway
    r = await http.get("/v1/callers/13812349999", headers=auth(tokens["integration"]))
    assert r.status_code == 200
    body = r.json()
    assert (body["customer_id"], body["priority_queue"]) == ("C9", "P2")
    assert (body["open_complaint"], body["open_complaints"]) == (None, [])
    assert "complaints" in body["complaints_error"]
    refused = await http.get("/v1/callers/13812348888", headers=auth(tokens["integration"]))
    assert refused.status_code == 404
    for customer, answered, statuses in (("C9", r, [200]), ("C8", refused, [200, 404])):
        trail = await http.get(
            f"/v1/audit?customer_id={customer}", headers=auth(tokens["supervisor"])
        )
        rid = answered.headers["x-request-id"]
        assert sorted(e["status"] for e in trail.json()["items"] if e["request_id"] == rid) == (
            statuses
        )


async def test_the_catalogue_and_the_sign_in_config_need_no_token(gateway):
    http, _, _ = gateway
    cat = await http.get("/v1/catalogue")
    assert cat.status_code == 200 and cat.json()["groups"]["tier"]["DIAMOND"]["zh"] == "钻石卡"
    config = (await http.get("/auth/config")).json()
    assert config["dev_mode"] is True and config["login_url"] is None
    dev = await http.post("/auth/dev-token", json={"role": "manager", "sub": "m-1"})
    assert dev.status_code == 400  # a manager signs in with its manager id
    ok = await http.post(
        "/auth/dev-token", json={"role": "manager", "sub": "m-1", "manager_id": "M1"}
    )
    token = ok.json()["access_token"]
    work = await http.get("/v1/worklist/cases", headers=auth(token))
    assert work.status_code == 200 and work.json()["manager"] == "M1"
    page = await http.get("/app/")
    assert page.status_code == 200 and "高价值客户工作台" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert (await http.get("/app/app.js")).headers["content-type"].startswith("text/javascript")
    assert (await http.get("/", follow_redirects=False)).headers["location"] == "/app/"
