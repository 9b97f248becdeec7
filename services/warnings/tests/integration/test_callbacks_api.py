"""Quarterly callbacks on the real store: a manager's list as the pipeline's view writer lands
it (overdue first), an outcome recorded once (a replay answers the same, another outcome is
409) into the contact history, and the quarter's figures by manager."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from hvc.common import problems
from hvc.common.streams import MongoViews, View
from hvc.warnings.api.routes import make_router
from hvc.warnings.assignment import Assigner
from hvc.warnings.callback_desk import CallbackDesk
from hvc.warnings.callbacks import VIEW, callback_id
from hvc.warnings.contacts import Contacts
from hvc.warnings.directory import ViewDirectory
from hvc.warnings.domain.rules import DEFAULT_RULES, load_rules
from hvc.warnings.reports import Reports
from hvc.warnings.repository import Repository
from hvc.warnings.tasks import Tasks

pytestmark = pytest.mark.integration
UTC = dt.UTC


def planned(cid: str, manager: str, quarter: str, due: dt.datetime) -> View:
    doc = {
        "customer_id": cid,
        "manager_id": manager,
        "kind": "CALLBACK",
        "quarter": quarter,
        "reason": "TIER",
        "tier": "DIAMOND",
        "planned_on": (due - dt.timedelta(days=80)).date().isoformat(),
        "due_at": due,
        "status": "OPEN",
    }
    return View(VIEW, callback_id(quarter, cid), doc, "insert")


def visit(gid: str, manager: str, quarter: str, due: dt.datetime) -> View:
    doc = {
        "customer_id": gid,
        "manager_id": manager,
        "kind": "VISIT",
        "quarter": quarter,
        "reason": "GROUP_CLASS_A",
        "group_name": "江城供电局",
        "planned_on": (due - dt.timedelta(days=60)).date().isoformat(),
        "due_at": due,
        "status": "OPEN",
    }
    return View(VIEW, f"VI-{quarter}-{gid}", doc, "insert")


async def test_a_managers_callbacks_and_their_outcomes_once(infra: Any) -> None:
    name = f"it_callbacks_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    views = MongoViews(AsyncMongoClient(infra.mongo_uri), name)
    past = dt.datetime(2025, 4, 1, tzinfo=UTC)
    future = dt.datetime.now(UTC) + dt.timedelta(days=30)
    try:
        await asyncio.to_thread(
            views,
            VIEW,
            [
                planned("C1", "M1", "2025Q1", past),  # overdue
                planned("C2", "M1", "2099Q1", future),
                planned("C3", "M2", "2099Q1", future),
                visit("G9", "M1", "2099Q1", future),
            ],
        )
        db = client[name]
        repo = Repository(db)
        await repo.ensure_indexes()
        rules = load_rules(DEFAULT_RULES)
        directory = ViewDirectory(db)
        app = FastAPI()
        problems.install(app)
        desk = CallbackDesk(repo, ZoneInfo("Asia/Shanghai"))
        app.include_router(
            make_router(
                Tasks(repo, None),  # type: ignore[arg-type]  # no task is closed here
                Contacts(repo, rules, directory),
                Reports(repo, Assigner(db, rules)),
                directory,
                desk,
            )
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            listed = (await http.get("/v1/managers/M1/callbacks")).json()
            assert [i["callback_id"] for i in listed["items"]] == [
                "CB-2025Q1-C1",  # overdue first
                "CB-2099Q1-C2",
                "VI-2099Q1-G9",
            ]
            assert [i["overdue"] for i in listed["items"]] == [True, False, False]
            assert [i["kind"] for i in listed["items"]] == ["CALLBACK", "CALLBACK", "VISIT"]
            overdue = (await http.get("/v1/managers/M1/callbacks?status=overdue")).json()
            assert overdue["total"] == 1

            body = {"outcome": "REACHED", "notes": "客户对网络质量满意", "by": "m1"}
            done = await http.post("/v1/callbacks/CB-2025Q1-C1/done", json=body)
            assert done.status_code == 200, done.text
            assert (done.json()["status"], done.json()["outcome"]) == ("DONE", "REACHED")
            again = await http.post("/v1/callbacks/CB-2025Q1-C1/done", json=body)
            assert again.json()["done_at"] == done.json()["done_at"]  # a replay: the first
            other = await http.post(
                "/v1/callbacks/CB-2025Q1-C1/done", json={**body, "outcome": "DECLINED"}
            )
            assert other.status_code == 409
            assert other.headers["content-type"].startswith("application/problem+json")
            missing = await http.post("/v1/callbacks/CB-2025Q1-C9/done", json=body)
            assert missing.status_code == 404
            bad = await http.post("/v1/callbacks/nope/done", json=body)
            assert bad.status_code == 422

            history = (await http.get("/v1/customers/C1/contacts")).json()["items"]
            assert [(h["kind"], h["outcome"], h["content"]) for h in history] == [
                ("CALLBACK", "REACHED", "客户对网络质量满意")
            ]
            assert (await http.get("/v1/managers/M1/callbacks?status=overdue")).json()["total"] == 0
            report = (await http.get("/v1/reports/callbacks?quarter=2025Q1")).json()
            assert report["items"] == [
                {
                    "manager_id": "M1",
                    "planned": 1,
                    "visits": 0,
                    "done": 1,
                    "overdue": 0,
                    "outcomes": {"REACHED": 1},
                }
            ]
            # A visit: recorded the same way, into the group's contact history, on site.
            seen = {**body, "notes": "走访集团办公室"}
            assert (
                await http.post("/v1/callbacks/VI-2099Q1-G9/done", json=seen)
            ).status_code == 200
            group_history = (await http.get("/v1/customers/G9/contacts")).json()["items"]
            assert [(h["kind"], h["channel"]) for h in group_history] == [("VISIT", "ON_SITE")]
            later = (await http.get("/v1/reports/callbacks?quarter=2099Q1")).json()
            assert [
                (i["manager_id"], i["planned"], i["visits"], i["done"]) for i in later["items"]
            ] == [
                ("M1", 2, 1, 1),
                ("M2", 1, 0, 0),
            ]
    finally:
        await asyncio.to_thread(views.close)
        await client.drop_database(name)
        await client.close()
