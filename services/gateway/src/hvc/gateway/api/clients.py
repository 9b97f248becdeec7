"""Typed clients of the four services behind the gateway, over its one upstream pool
(hvc.gateway.upstream): each call is a method, its path built in one place."""

from __future__ import annotations

from typing import Any

from hvc.gateway.upstream import Upstreams

Doc = dict[str, Any]


class _Client:
    service = ""

    def __init__(self, up: Upstreams) -> None:
        self.up = up

    async def report(self, name: str, params: dict[str, str], rid: str) -> Any:
        return await self.up.get(self.service, f"/v1/reports/{name}", params=params, request_id=rid)


class Tiering(_Client):
    service = "tiering"

    async def tier(self, customer_id: str, at: str | None, rid: str) -> Doc:
        out: Doc = await self.up.get(
            self.service, f"/v1/customers/{customer_id}/tier", params={"at": at}, request_id=rid
        )
        return out

    async def history(self, customer_id: str, limit: int, offset: int, rid: str) -> Doc:
        out: Doc = await self.up.get(
            self.service,
            f"/v1/customers/{customer_id}/tier/history",
            params={"limit": limit, "offset": offset},
            request_id=rid,
        )
        return out

    async def override(
        self, customer_id: str, payload: Doc, idempotency_key: str | None, rid: str
    ) -> tuple[int, Any]:
        return await self.up.forward(
            self.service,
            "PUT",
            f"/v1/customers/{customer_id}/tier/override",
            json=payload,
            headers={"Idempotency-Key": idempotency_key} if idempotency_key else None,
            request_id=rid,
        )

    async def group(self, group_id: str, members: int, rid: str) -> Doc:
        out: Doc = await self.up.get(
            self.service, f"/v1/groups/{group_id}", params={"members": members}, request_id=rid
        )
        return out

    async def simulate(self, body: Doc, rid: str) -> Any:
        _status, out = await self.up.forward(
            self.service, "POST", "/v1/tiering/simulations", json=body, request_id=rid
        )
        return out


class Warnings(_Client):
    service = "warnings"

    async def profile(self, customer_id: str, rid: str) -> Doc:
        out: Doc = await self.up.get(
            self.service, f"/v1/customers/{customer_id}/profile", request_id=rid
        )
        return out

    async def tasks_of(self, customer_id: str, rid: str) -> Doc:
        out: Doc = await self.up.get(
            self.service, f"/v1/customers/{customer_id}/tasks", request_id=rid
        )
        return out

    async def group_tasks(self, group_id: str, limit: int, rid: str) -> Doc:
        out: Doc = await self.up.get(
            self.service,
            f"/v1/groups/{group_id}/open-tasks",
            params={"limit": limit},
            request_id=rid,
        )
        return out

    async def worklist(self, manager_id: str, limit: int, offset: int, rid: str) -> Any:
        return await self.up.get(
            self.service,
            f"/v1/managers/{manager_id}/tasks",
            params={"limit": limit, "offset": offset},
            request_id=rid,
        )

    async def find(self, params: dict[str, Any], rid: str) -> Doc:
        out: Doc = await self.up.get(self.service, "/v1/customers", params=params, request_id=rid)
        return out

    async def caller(self, msisdn: str, rid: str) -> Doc:
        out: Doc = await self.up.get(self.service, f"/v1/callers/{msisdn}", request_id=rid)
        return out

    async def cases(self, manager_id: str, params: dict[str, Any], rid: str) -> Doc:
        out: Doc = await self.up.get(
            self.service, f"/v1/managers/{manager_id}/cases", params=params, request_id=rid
        )
        return out

    async def contacts(self, customer_id: str, limit: int, offset: int, rid: str) -> Doc:
        out: Doc = await self.up.get(
            self.service,
            f"/v1/customers/{customer_id}/contacts",
            params={"limit": limit, "offset": offset},
            request_id=rid,
        )
        return out

    async def task(self, task_id: str, rid: str) -> Doc:
        out: Doc = await self.up.get(self.service, f"/v1/tasks/{task_id}", request_id=rid)
        return out

    async def contact(self, task_id: str, body: Doc, rid: str) -> tuple[int, Any]:
        return await self.up.forward(
            self.service, "POST", f"/v1/tasks/{task_id}/contacts", json=body, request_id=rid
        )

    async def close(self, task_id: str, body: Doc, rid: str) -> Any:
        _status, out = await self.up.forward(
            self.service, "POST", f"/v1/tasks/{task_id}/close", json=body, request_id=rid
        )
        return out

    async def callbacks(self, manager_id: str, params: dict[str, Any], rid: str) -> Doc:
        out: Doc = await self.up.get(
            self.service, f"/v1/managers/{manager_id}/callbacks", params=params, request_id=rid
        )
        return out

    async def callback(self, callback_id: str, rid: str) -> Doc:
        out: Doc = await self.up.get(self.service, f"/v1/callbacks/{callback_id}", request_id=rid)
        return out

    async def callback_done(self, callback_id: str, body: Doc, rid: str) -> Any:
        _status, out = await self.up.forward(
            self.service, "POST", f"/v1/callbacks/{callback_id}/done", json=body, request_id=rid
        )
        return out


class Benefits(_Client):
    service = "benefits"

    async def balances(self, customer_id: str, rid: str) -> Doc:
        out: Doc = await self.up.get(
            self.service, f"/v1/customers/{customer_id}/benefits", request_id=rid
        )
        return out

    async def claim(
        self, customer_id: str, code: str, idempotency_key: str, rid: str
    ) -> tuple[int, Any]:
        return await self.up.forward(
            self.service,
            "POST",
            f"/v1/customers/{customer_id}/benefits/{code}/claims",
            headers={"Idempotency-Key": idempotency_key},
            request_id=rid,
        )


class Complaints(_Client):
    service = "complaints"

    async def one(self, complaint_id: str, rid: str) -> Doc:
        out: Doc = await self.up.get(self.service, f"/v1/complaints/{complaint_id}", request_id=rid)
        return out

    async def open_of(self, customer_id: str, rid: str) -> Doc:
        out: Doc = await self.up.get(
            self.service, f"/v1/customers/{customer_id}/open-complaints", request_id=rid
        )
        return out

    async def search(self, params: dict[str, Any], rid: str) -> Doc:
        out: Doc = await self.up.get(self.service, "/v1/complaints", params=params, request_id=rid)
        return out

    async def open_of_many(self, customer_ids: list[str], rid: str) -> Doc:
        _status, out = await self.up.forward(
            self.service,
            "POST",
            "/v1/open-complaints/search",
            json={"customer_ids": customer_ids},
            request_id=rid,
        )
        return dict(out)

    async def transition(self, complaint_id: str, body: Doc, rid: str) -> tuple[int, Any]:
        return await self.up.forward(
            self.service,
            "POST",
            f"/v1/complaints/{complaint_id}/transitions",
            json=body,
            request_id=rid,
        )
