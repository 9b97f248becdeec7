"""Stand-ins for the four services behind the gateway, for the gateway's own rules (roles,
object-level checks, audit, limits). The services' behaviour is tested in their suites and
end to end; these answer by path with fixed shapes. Customers C1 and C2 belong to managers
M1 and M2; complaint K1 to C1 and K2 to C2; task T-M1 is M1's."""

from __future__ import annotations

import json

import httpx
import pytest


def _json(status: int, body: object) -> httpx.Response:
    ctype = "application/problem+json" if status >= 400 else "application/json"
    return httpx.Response(status, content=json.dumps(body), headers={"content-type": ctype})


def _tiering(r: httpx.Request) -> httpx.Response:
    p = r.url.path.split("/")
    if r.url.path == "/v1/tiering/simulations":
        return _json(200, {"matrix": {}, "customers": 0})
    if p[2] == "reports":
        return _json(200, {"report": p[3]})
    if r.method == "PUT":
        return _json(200, {"customer_id": p[3], "tier": "GOLD"})
    if r.url.path.endswith("/history"):
        return _json(200, {"items": [], "total": 0})
    return _json(
        200,
        {
            "customer_id": p[3],
            "effective_tier": "GOLD",
            "source": "ANNUAL",
            "ruleset_version": "2025.1",
            "reasons": [],
        },
    )


def _warnings(r: httpx.Request) -> httpx.Response:
    p = r.url.path.split("/")
    if p[2] == "reports":
        return _json(200, {"report": p[3]})
    if r.url.path.endswith("/profile"):
        manager = {"C1": "M1", "C2": "M2"}.get(p[3])
        return _json(
            200,
            {
                "customer_id": p[3],
                "manager_id": manager,
                "crm_manager_id": manager,
                "group_id": None,
                "do_not_disturb": False,
                "tier": "GOLD",
            },
        )
    if p[2] == "customers":
        return _json(
            200,
            {
                "items": [{"task_id": f"T-{p[3]}", "status": "OPEN", "customer_id": p[3]}],
                "total": 1,
            },
        )
    if p[2] == "managers":
        return _json(200, {"items": [{"task_id": f"T-{p[3]}", "status": "OPEN"}], "total": 1})
    if r.url.path.endswith("/contacts"):
        return _json(201, {"contact_id": json.loads(r.content)["contact_id"]})
    return _json(200, {"task_id": p[3], "status": "CLOSED"})


def _benefits(r: httpx.Request) -> httpx.Response:
    p = r.url.path.split("/")
    if r.method == "POST":
        return _json(201, {"claim_id": f"{p[3]}|{p[5]}|{r.headers['idempotency-key']}"})
    return _json(200, {"customer_id": p[3], "tier": "GOLD", "benefits": []})


def _complaints(r: httpx.Request) -> httpx.Response:
    p = r.url.path.split("/")
    if p[2] == "reports":
        return _json(200, {"report": p[3]})
    if r.url.path == "/v1/complaints":
        return _json(200, {"items": [], "total": 0, "customer_id": r.url.params.get("customer_id")})
    if len(p) > 4 and p[4] == "transitions":
        return _json(200, {"id": p[3], "status": json.loads(r.content)["to"]})
    owner = {"K1": "C1", "K2": "C2"}.get(p[3])
    if owner is None:
        return _json(404, {"type": "about:blank", "title": "Complaint not found", "status": 404})
    return _json(200, {"id": p[3], "customer_id": owner, "status": "RECEIVED"})


def transports() -> dict[str, httpx.AsyncBaseTransport]:
    return {
        "tiering": httpx.MockTransport(_tiering),
        "warnings": httpx.MockTransport(_warnings),
        "benefits": httpx.MockTransport(_benefits),
        "complaints": httpx.MockTransport(_complaints),
    }


@pytest.fixture
def fake_services() -> dict[str, httpx.AsyncBaseTransport]:
    return transports()


@pytest.fixture(scope="session")
def make_fake_services():
    return transports
