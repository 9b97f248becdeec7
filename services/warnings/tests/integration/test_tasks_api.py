"""Managers' worklists and closing tasks, against the real store and broker."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from hvc.common import problems
from hvc.common.kafka import producer
from hvc.common.settings import KafkaSettings
from hvc.devinfra.pytest_plugin import TopicWatch
from hvc.events.v1 import warnings_pb2
from hvc.warnings.api.routes import make_router
from hvc.warnings.domain.rules import DEFAULT_RULES, load_rules
from hvc.warnings.domain.signals import port_out_query, zero_spend
from hvc.warnings.raiser import Raiser
from hvc.warnings.repository import Repository
from hvc.warnings.tasks import Tasks

pytestmark = pytest.mark.integration
UTC = dt.UTC


async def test_worklist_and_closing_a_task_once(infra):
    tag = uuid.uuid4().hex[:8]
    cid, db = f"T{tag}", f"it_tasks_{tag}"
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    repo = Repository(client[db])
    await repo.ensure_indexes()
    rules = load_rules(DEFAULT_RULES)
    try:
        async with (
            producer(KafkaSettings(bootstrap_servers=infra.kafka_bootstrap)) as send,
            TopicWatch(
                infra.kafka_bootstrap, "hvc.warnings.v1", lambda m: m.customer_id == cid
            ) as watch,
        ):
            await repo.put_profile(
                cid, {"at": dt.datetime(2025, 1, 1, tzinfo=UTC), "manager_id": f"M{tag}"}
            )
            raiser = Raiser(repo, rules, send)
            old = dt.datetime(2025, 3, 1, 4, tzinfo=UTC)
            await raiser.raise_(cid, port_out_query("e1", "AUTH_CODE", old, rules), old)
            await raiser.raise_(cid, zero_spend("2025-02", 0), old + dt.timedelta(hours=1))
            app = FastAPI()
            problems.install(app)
            app.include_router(make_router(Tasks(repo, send)))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                work = (await http.get(f"/v1/managers/M{tag}/tasks")).json()
                assert work["total"] == 2
                assert [t["status"] for t in work["items"]] == ["OPEN", "OPEN"]
                assert all(t["overdue"] for t in work["items"])  # due in 2025
                task_id = work["items"][0]["task_id"]
                body = {"outcome": "RETAINED", "closed_by": f"M{tag}", "note": "offer accepted"}
                first = await http.post(f"/v1/tasks/{task_id}/close", json=body)
                assert first.status_code == 200 and first.json()["status"] == "CLOSED"
                replay = await http.post(f"/v1/tasks/{task_id}/close", json=body)
                assert replay.json() == first.json()
                other = await http.post(
                    f"/v1/tasks/{task_id}/close", json={**body, "outcome": "CHURNED"}
                )
                assert other.status_code == 409 and other.json()["outcome"] == "RETAINED"
                missing = await http.post("/v1/tasks/nope/close", json=body)
                assert missing.status_code == 404
                bad = await http.post(f"/v1/tasks/{task_id}/close", json={**body, "outcome": "X"})
                assert bad.status_code == 422
                work = (await http.get(f"/v1/managers/M{tag}/tasks")).json()
                assert sorted(t["status"] for t in work["items"]) == ["CLOSED", "OPEN"]
            seen = await watch.wait_for(3)
        closed = [m for m in seen if m.WhichOneof("payload") == "task_closed"]
        assert len(closed) == 1
        assert closed[0].task_closed.outcome == warnings_pb2.TaskClosed.RETAINED
        assert closed[0].task_closed.task_id == task_id
    finally:
        await client.drop_database(db)
        await client.close()
