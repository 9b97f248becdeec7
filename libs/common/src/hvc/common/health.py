"""Liveness, readiness (broker, store, stream recovery) and Prometheus metrics over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

Check = Callable[[], Awaitable[None]]


class Readiness:
    """Named async checks; each raises when its dependency is not usable."""

    def __init__(self, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self._checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        self._checks[name] = check

    async def run(self) -> tuple[bool, dict[str, str]]:
        async def one(check: Check) -> str:
            try:
                await asyncio.wait_for(check(), self.timeout_s)
            except TimeoutError:
                return f"timeout after {self.timeout_s}s"
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"[:300]
            return "ok"

        names = list(self._checks)
        results = await asyncio.gather(*(one(self._checks[n]) for n in names))
        details = dict(zip(names, results, strict=True))
        return all(r == "ok" for r in results), details


def health_router(readiness: Readiness, metrics: bool = True) -> APIRouter:
    """`metrics`: serve /metrics here too (not when a port of its own serves them)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        ok, details = await readiness.run()
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": details},
            status_code=200 if ok else 503,
        )

    if metrics:

        @router.get("/metrics", include_in_schema=False)
        async def metrics_() -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
