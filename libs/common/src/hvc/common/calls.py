"""Calls between the gateway and the services behind it (issue 20, item 10): the services take
API calls only from the gateway. With a shared key (`HVC_SERVICE_KEY`, a Kubernetes Secret;
`make run` makes one per local instance), the gateway signs each call — an HMAC-SHA256 of
the time, the method and the path, in `X-Hvc-Call` — and a service refuses a call without a
valid signature made within `SKEW_S`, with a 401 problem. Health probes are open (the
kubelet's); metrics are served on a port of their own (`HVC_METRICS_PORT`), which the
NetworkPolicy admits Prometheus to, and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

HEADER = "X-Hvc-Call"
SKEW_S = 60.0
OPEN = ("/healthz", "/readyz", "/metrics")


def _mac(key: bytes, at: int, method: str, path: str) -> str:
    return hmac.new(key, f"{at}\n{method.upper()}\n{path}".encode(), hashlib.sha256).hexdigest()


def sign(key: bytes, method: str, path: str, now: float | None = None) -> str:
    """The header value for a call of `method` on `path` (without its query)."""
    at = int(time.time() if now is None else now)
    return f"{at}.{_mac(key, at, method, path)}"


def verify(key: bytes, value: str | None, method: str, path: str, now: float | None = None) -> bool:
    if not value or "." not in value:
        return False
    at_s, mac = value.split(".", 1)
    if not at_s.isdigit():
        return False
    at = int(at_s)
    if abs((time.time() if now is None else now) - at) > SKEW_S:
        return False
    return hmac.compare_digest(mac, _mac(key, at, method, path))


class GatewayOnly:
    """ASGI middleware of a service: API calls must carry the gateway's signature."""

    def __init__(self, app: ASGIApp, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self.app, self.key, self.clock = app, key, clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN:
            await self.app(scope, receive, send)
            return
        value = dict(scope.get("headers") or []).get(HEADER.lower().encode(), b"")
        if verify(self.key, value.decode("latin-1"), scope["method"], scope["path"], self.clock()):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Unauthorized",
                "status": 401,
                "detail": "this service takes calls from the gateway only",
                "instance": scope["path"],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
