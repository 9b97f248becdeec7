"""Request ids and request size limits, as plain ASGI middleware (before any routing)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RID = re.compile(r"^[A-Za-z0-9_\-.:]{8,64}$")


def _problem(status: int, title: str, detail: str, rid: str) -> tuple[dict[str, Any], bytes]:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "request_id": rid,
        }
    ).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", rid.encode()),
        ],
    }
    return start, body


class RequestIdAndLimits:
    """Every response carries X-Request-Id (the caller's if well formed, else a new one);
    a body over `max_body_bytes` is refused with 413 before it is read in full."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app, self.max = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if RID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max):
            start, body = _problem(
                413, "Request too large", f"request bodies are limited to {self.max} bytes", rid
            )
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max:
                    raise _TooLarge
            return message

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    (k, v) for k, v in message["headers"] if k.lower() != b"x-request-id"
                ] + [(b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, limited, with_id)
        except _TooLarge:
            start, body = _problem(
                413, "Request too large", f"request bodies are limited to {self.max} bytes", rid
            )
            await send(start)
            await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
