"""The services behind the gateway, over HTTP. Their problems pass through; an unreachable or
failing service is a 502/503 problem, never a gateway crash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from hvc.common.problems import Problem
from hvc.gateway.settings import GatewaySettings

SERVICES = ("tiering", "warnings", "benefits", "complaints")


class Upstreams:
    def __init__(
        self,
        settings: GatewaySettings,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.clients = {
            name: httpx.AsyncClient(
                base_url=getattr(settings, f"{name}_url"),
                timeout=settings.upstream_timeout_s,
                transport=(transports or {}).get(name),
            )
            for name in SERVICES
        }

    async def close(self) -> None:
        for c in self.clients.values():
            await c.aclose()

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        request_id: str = "",
    ) -> tuple[int, Any]:
        h = {"X-Request-Id": request_id, **(headers or {})}
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            r = await self.clients[service].request(
                method, path, params=clean, json=json, headers=h
            )
        except httpx.TimeoutException:
            raise Problem(
                504, "Upstream timeout", f"the {service} service did not answer"
            ) from None
        except httpx.HTTPError:
            raise Problem(
                503, "Upstream unavailable", f"the {service} service is unreachable"
            ) from None
        if r.status_code >= 500:
            raise Problem(502, "Upstream error", f"the {service} service failed ({r.status_code})")
        try:
            body = r.json()
        except ValueError:
            raise Problem(
                502, "Upstream error", f"the {service} service answered non-JSON"
            ) from None
        return r.status_code, body

    async def forward(self, service: str, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        """Call and raise the upstream's problem as ours when it is not 2xx."""
        status, body = await self.call(service, method, path, **kw)
        if status >= 400:
            raise passthrough(status, body)
        return status, body

    async def get(self, service: str, path: str, **kw: Any) -> Any:
        """GET and raise the upstream's problem as ours when it is not 2xx."""
        status, body = await self.call(service, "GET", path, **kw)
        if status >= 400:
            raise passthrough(status, body)
        return body


def passthrough(status: int, body: Any) -> Problem:
    b = body if isinstance(body, dict) else {}
    extra = {
        k: v for k, v in b.items() if k not in ("type", "title", "status", "detail", "instance")
    }
    return Problem(
        status, str(b.get("title", "Upstream refused")), str(b.get("detail", "")), **extra
    )
