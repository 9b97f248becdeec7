"""Stand-ins for the four services behind the gateway, for the gateway's own rules (roles,
object-level checks, audit, limits). The services' behaviour is tested in their suites and
end to end; these answer by path with fixed shapes. Customers C1 and C2 belong to managers
M1 and M2; complaint K1 to C1 and K2 to C2; task T-M1 is M1's.

They are served over real HTTP on a loopback port (one server, a path prefix per service),
so the gateway's own upstream client is the one under test."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
import uvicorn


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
                "name": "Wang Wu",
                "msisdns": ["13812348000"],
                "manager_id": manager,
                "crm_manager_id": manager,
                "group_id": None,
                "do_not_disturb": False,
                "tier": "GOLD",
            },
        )
    if r.url.path == "/v1/customers":  # a search: one customer of each manager
        return _json(
            200,
            {
                "items": [
                    {
                        "customer_id": c,
                        "name": "王五",
                        "msisdns": ["13812348000"],
                        "manager_id": m,
                        "crm_manager_id": m,
                        "group_id": None,
                        "tier": "GOLD",
                    }
                    for c, m in (("C1", "M1"), ("C2", "M2"))
                ],
                "total": 2,
            },
        )
    if p[2] == "managers" and len(p) > 4 and p[4] == "callbacks":
        return _json(200, {"items": [{"callback_id": "CB-2026Q4-C1"}], "total": 1})
    if p[2] == "callbacks":  # CB-<quarter>-C1: M1's, C2: M2's; any other: nobody's
        if not p[3].endswith(("-C1", "-C2")):
            return _json(404, {"title": "Unknown callback", "status": 404})
        manager = "M" + p[3][-1]
        return _json(200, {"callback_id": p[3], "manager_id": manager, "status": "DONE"})
    if p[2] == "outages":
        return _json(200, {"outage_id": p[3], "affected": 3, "sent": 2})
    if p[2] == "callers":
        # C8's and C9's open complaints cannot be read (below): 404 and 500.
        holder = {"13812348000": "C1", "13812348888": "C8", "13812349999": "C9"}.get(p[3])
        items = [{"customer_id": holder, "tier": "GOLD", "manager_id": "M1"}] if holder else []
        if p[3] == "13812347777":  # C7's documents carry its open complaints (C7's cannot
            # be read from the complaints service: it must not be asked)
            k7 = {"id": "K7", "status": "DISPATCHED", "sla_state": "ON_TRACK"}
            items = [{"customer_id": "C7", "tier": "DIAMOND", "open_complaints": [k7]}]
        return _json(200, {"msisdn": p[3], "items": items})
    if p[2] == "customers" and len(p) > 4 and p[4] == "contacts":
        return _json(200, {"items": [{"contact_id": "x", "customer_id": p[3]}], "total": 1})
    if p[2] == "managers" and len(p) > 4 and p[4] == "cases":
        case = {"customer_id": "C1", "name": "王五", "msisdns": ["13812348000"], "tasks": []}
        return _json(200, {"items": [case], "total": 1, "manager": p[3]})
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
    if r.method == "GET" and p[2] == "tasks":  # T-<manager>: that manager's task
        return _json(200, {"task_id": p[3], "manager_id": p[3][2:], "status": "OPEN"})
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
    if r.url.path.endswith("/open-complaints") and p[3] in ("C7", "C8", "C9"):
        status = 404 if p[3] == "C8" else 500
        return _json(status, {"type": "about:blank", "title": "Failed", "status": status})
    if r.url.path.endswith("/open-complaints"):
        open_ = [{"id": "K1", "status": "RECEIVED", "sla_state": "AT_RISK"}] if p[3] == "C1" else []
        return _json(200, {"customer_id": p[3], "open": open_})
    if r.url.path == "/v1/complaints":
        return _json(200, {"items": [], "total": 0, "customer_id": r.url.params.get("customer_id")})
    if len(p) > 4 and p[4] == "transitions":
        return _json(200, {"id": p[3], "status": json.loads(r.content)["to"]})
    owner = {"K1": "C1", "K2": "C2"}.get(p[3])
    if owner is None:
        return _json(404, {"type": "about:blank", "title": "Complaint not found", "status": 404})
    return _json(200, {"id": p[3], "customer_id": owner, "status": "RECEIVED"})


HANDLERS: dict[str, Callable[[httpx.Request], httpx.Response]] = {
    "tiering": _tiering,
    "warnings": _warnings,
    "benefits": _benefits,
    "complaints": _complaints,
}


async def _stand_ins(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app: /<service>/<path> answered by that service's stand-in."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    service, _, path = scope["path"].lstrip("/").partition("/")
    query = scope["query_string"].decode()
    request = httpx.Request(
        scope["method"],
        f"http://{service}/{path}" + (f"?{query}" if query else ""),
        headers=[(k.decode(), v.decode()) for k, v in scope["headers"]],
        content=body,
    )
    r = HANDLERS[service](request)
    await send(
        {
            "type": "http.response.start",
            "status": r.status_code,
            "headers": [(b"content-type", r.headers["content-type"].encode())],
        }
    )
    await send({"type": "http.response.body", "body": r.content})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving_in_thread(app: Any, lifespan: str = "on") -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread of its own; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan=lifespan, log_config=None)
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@asynccontextmanager
async def serving_here(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app on this event loop (its clients belong to this loop), no lifespan."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="session")
def stand_ins() -> Iterator[dict[str, str]]:
    """The gateway settings' service URLs, pointing at the served stand-ins."""
    with serving_in_thread(_stand_ins) as base:
        yield {f"{name}_url": f"{base}/{name}" for name in HANDLERS}


@pytest.fixture(scope="session")
def serve_in_thread() -> Callable[..., Any]:
    return serving_in_thread


@pytest.fixture(scope="session")
def serve_here() -> Callable[..., Any]:
    return serving_here
