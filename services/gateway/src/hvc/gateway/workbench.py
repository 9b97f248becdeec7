"""The workbench: the web application agents, account managers and supervisors use (Chinese
first, an English switch), served by the gateway itself from its package (`web/`: plain
HTML, CSS and JavaScript, no build step and no CDN), over the same /v1 API, roles and audit.

Besides the files it serves what the application needs before a token: the display-name
catalogue (`GET /v1/catalogue`, no customer data) and how to sign in (`GET /auth/config`):
the identity provider's authorize URL in production (OAuth 2 with the token returned in the
URL fragment), and in development mode a chooser of demo staff whose tokens the gateway mints
(`POST /auth/dev-token`, HS256; refused outside development mode, as every HS256 token is)."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any, Literal

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from hvc.common.problems import Problem, problem_responses
from hvc.gateway.api.models import ID
from hvc.gateway.auth import mint
from hvc.gateway.catalogue import catalogue
from hvc.gateway.settings import GatewaySettings

WEB = resources.files("hvc.gateway").joinpath("web")
DEV_TTL = dt.timedelta(hours=8)  # a working day


class DevLogin(BaseModel):
    role: Literal["agent", "manager", "supervisor", "admin"]
    sub: str = Field(min_length=1, max_length=64, pattern=ID)
    manager_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=ID)


def install(api: FastAPI, settings: GatewaySettings) -> None:
    router = APIRouter(
        redirect_slashes=False, tags=["workbench"], responses=problem_responses(400, 404, 422)
    )

    @router.get("/v1/catalogue")
    async def display_names() -> dict[str, Any]:
        """Display names of tiers, benefits, warning codes, states, channels and complaint
        categories, in Chinese and English."""
        return catalogue()

    @router.get("/auth/config")
    async def auth_config() -> dict[str, Any]:
        """How the workbench signs its users in."""
        return {
            "dev_mode": settings.dev_mode,
            "login_url": settings.workbench_login_url,
            "audience": settings.audience,
        }

    @router.post("/auth/dev-token")
    async def dev_token(body: DevLogin) -> dict[str, Any]:
        """A development token for a demo member of staff (development mode only)."""
        if not settings.dev_mode:
            raise Problem(404, "Not found", "development sign-in is off")
        if body.role == "manager" and not body.manager_id:
            raise Problem(400, "Manager id required", "a manager signs in with its manager_id")
        token = mint(
            settings,
            role=body.role,
            sub=body.sub,
            manager_id=body.manager_id if body.role == "manager" else None,
            ttl=DEV_TTL,
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(DEV_TTL.total_seconds()),
        }

    @router.get("/", include_in_schema=False)
    @router.get("/app", include_in_schema=False)
    async def to_app() -> RedirectResponse:
        return RedirectResponse("/app/", status_code=308)

    api.include_router(router)
    api.mount("/app/", StaticFiles(directory=str(WEB), html=True), name="workbench")
