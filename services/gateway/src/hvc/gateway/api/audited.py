"""One audit step for every `/v1` route (issue 20, item 3): the route class of the gateway's
router records each call of an authenticated caller once its answer is made and before it is
sent — answered, refused (403, 404, 409, 422…) or failed — with the customers the request
named and the answer returned. A call without a caller (401, or 429 before a token is read)
is not stored: the failed-authentication limit counts those.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from hvc.common.problems import Problem
from hvc.gateway.audit import Audit, customers_in

MAX_PARSED = 4 << 20  # an answer larger than this is not read for its customers


class AuditedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def audited(request: Request) -> Response:
            try:
                response = await handler(request)
            except Problem as p:
                await record(request, p.status, None)
                raise
            except HTTPException as exc:
                await record(request, exc.status_code, None)
                raise
            except RequestValidationError:
                await record(request, 422, None)
                raise
            except Exception:
                await record(request, 500, None)
                raise
            await record(request, response.status_code, response)
            return response

        return audited


async def record(request: Request, status: int, response: Response | None) -> None:
    who = getattr(request.state, "principal", None)
    if who is None:
        return
    audit: Audit = request.app.state.audit
    named = [
        *getattr(request.state, "customers", ()),  # what a route learnt on the way (note())
        request.path_params.get("customer_id"),
        request.query_params.get("customer_id"),
        _json(await request.body()) if request.method in ("POST", "PUT", "PATCH") else None,
        _json(response.body) if response is not None else None,
    ]
    await audit.record(
        who,
        customers_in(*(n for n in named if n is not None)),
        request.url.path,
        str(request.state.request_id),
        status,
        method=request.method,
        query=request.url.query,
        client=request.client.host if request.client else None,
        caller_request_id=getattr(request.state, "caller_request_id", None),
    )


def _json(raw: Any) -> Any:
    """A body parsed for its customers: not parsed when it names none (a report's year of
    counts by manager is 250 KB to parse and walk for nothing)."""
    if not isinstance(raw, bytes | bytearray | memoryview) or not 0 < len(raw) <= MAX_PARSED:
        return None
    data = bytes(raw)
    if b'"customer_id"' not in data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def note(request: Request, customer_id: Any) -> None:
    """A customer the call concerns that neither its path nor its answer names (a complaint
    refused to another customer: whose complaint it was)."""
    if isinstance(customer_id, str):
        request.state.customers = [*getattr(request.state, "customers", ()), customer_id]
