"""Calls from the gateway to the services (issue 20, item 10): signed with the shared key,
checked by the service; health probes stay open."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from hvc.common import calls

KEY = b"k" * 32


def test_a_signature_binds_the_key_the_method_the_path_and_the_time():
    value = calls.sign(KEY, "GET", "/v1/customers/C1/tier", now=1000)
    assert calls.verify(KEY, value, "GET", "/v1/customers/C1/tier", now=1030)
    assert not calls.verify(KEY, value, "GET", "/v1/customers/C1/tier", now=1061)  # too old
    assert not calls.verify(KEY, value, "POST", "/v1/customers/C1/tier", now=1000)
    assert not calls.verify(KEY, value, "GET", "/v1/customers/C2/tier", now=1000)
    assert not calls.verify(b"x" * 32, value, "GET", "/v1/customers/C1/tier", now=1000)
    for bad in (None, "", "nodot", "abc.def", "1000."):
        assert not calls.verify(KEY, bad, "GET", "/v1/customers/C1/tier", now=1000)


@pytest.fixture
def app() -> FastAPI:
    api = FastAPI()

    @api.get("/v1/things/{x}")
    async def thing(x: str) -> dict[str, str]:
        return {"x": x}

    @api.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    api.add_middleware(calls.GatewayOnly, key=KEY)
    return api


async def test_a_service_takes_only_the_gateways_calls(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as h:
        r = await h.get("/v1/things/a")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        forged = calls.sign(b"y" * 32, "GET", "/v1/things/a")
        assert (await h.get("/v1/things/a", headers={calls.HEADER: forged})).status_code == 401
        other = calls.sign(KEY, "GET", "/v1/things/b")  # another path's signature
        assert (await h.get("/v1/things/a", headers={calls.HEADER: other})).status_code == 401
        ok = calls.sign(KEY, "GET", "/v1/things/a")
        r = await h.get("/v1/things/a", headers={calls.HEADER: ok})
        assert r.status_code == 200 and r.json() == {"x": "a"}
        assert (await h.get("/healthz")).status_code == 200  # the kubelet's probes
