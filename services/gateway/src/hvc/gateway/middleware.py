"""Request ids, request size limits and response security headers, as plain ASGI middleware
(before any routing)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RID = re.compile(r"^[A-Za-z0-9_\-.:]{8,64}$")
# The workbench's pages (/app/, hvc.gateway.workbench) may load only what the gateway serves
# and talk only to it; nothing frames them.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


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
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
        ],
    }
    return start, body


MAX_HEADER_BYTES = 8192  # one header's value (a token is at most this: auth.Verifier)
MAX_HEADERS_BYTES = 32768  # all of them


class RequestIdAndLimits:
    """Every response carries X-Request-Id (made here: the caller's own is kept apart) and
    the security headers (no caching of answers that hold customer data, no MIME sniffing,
    HSTS when served over TLS in production); a body over `max_body_bytes` is refused with
    413 before it is read in full, a header over 8 KiB (or 32 KiB of them) with 431 before
    anything reads it."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, hsts: bool = False) -> None:
        self.app, self.max = app, max_body_bytes
        self.security = [
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            *([(b"strict-transport-security", b"max-age=31536000")] if hsts else []),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("headers") or []
        headers = dict(raw)
        # The request id is ours, always (the audit trail's key: a caller must not choose it);
        # a well-formed one the caller sent is kept beside it, to find its own requests by.
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        state["caller_request_id"] = given if RID.match(given) else None
        sizes = [len(k) + len(v) for k, v in raw]
        if sizes and (max(sizes) > MAX_HEADER_BYTES or sum(sizes) > MAX_HEADERS_BYTES):
            start, body = _problem(
                431,
                "Request header fields too large",
                f"a header is limited to {MAX_HEADER_BYTES} bytes, all to {MAX_HEADERS_BYTES}",
                rid,
            )
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
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

        # The workbench's pages: a content security policy of their own (hvc.gateway.workbench).
        app_page = str(scope.get("path", "")).startswith("/app/")
        page = [(b"content-security-policy", CSP.encode())] if app_page else []

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    (k, v) for k, v in message["headers"] if k.lower() != b"x-request-id"
                ] + [(b"x-request-id", rid.encode()), *self.security, *page]
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
