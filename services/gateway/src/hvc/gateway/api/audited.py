"""One audit step for every `/v1` route (issue 20, item 3): the route class of the gateway's
router records each call of an authenticated caller once its answer is made and before it is
sent — answered, refused (403, 404, 409, 422…) or failed — with the customers the request
named and the answer returned. A call without a caller (401, or 429 before a token is read)
is not stored: the failed-authentication limit counts those. A route that knows its status
and customers before its answer is complete may start storing the entry early
(`record_ahead`); the answer still waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    named = [
        *getattr(request.state, "customers", ()),  # what a route learnt on the way (note())
        request.path_params.get("customer_id"),
        request.query_params.get("customer_id"),
        _json(await request.body()) if request.method in ("POST", "PUT", "PATCH") else None,
        _json(response.body) if response is not None else None,
    ]
    customers = customers_in(*(n for n in named if n is not None))
    early: tuple[int, list[str], asyncio.Task[None]] | None = getattr(
        request.state, "audit_early", None
    )
    if early is not None:
        if early[:2] == (status, customers):
            await early[2]  # the entry the route wrote ahead is this call's: it is stored
            return
        # The call ended otherwise than the route foresaw: its own entry follows that one.
        with contextlib.suppress(Exception):
            await early[2]
    await _store(request, who, status, customers)


def record_ahead(request: Request, status: int, customer_ids: list[str]) -> None:
    """Start storing the call's entry before its answer is complete, for a route that knows
    both already (the VIP line, once it knows the caller: it answers 200 naming that customer
    whatever the complaints service says), so that the store's round trip overlaps the route's
    last upstream call. The answer still waits for the entry; a call that ends with another
    status or other customers gets a second entry, its own."""
    who = getattr(request.state, "principal", None)
    if who is None:
        return
    customers = customers_in(*customer_ids)
    task = asyncio.ensure_future(_store(request, who, status, customers))
    request.state.audit_early = (status, customers, task)


async def _store(request: Request, who: Any, status: int, customers: list[str]) -> None:
    audit: Audit = request.app.state.audit
    await audit.record(
        who,
        customers,
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
