"""Managers' worklists, closing tasks, contacts and reports, against the real store and broker;
assignment within the staffing caps under concurrency."""

from __future__ import annotations

import asyncio
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
from hvc.warnings.assignment import Assigner
from hvc.warnings.contacts import Contacts
from hvc.warnings.documents import task_doc, warning_doc
from hvc.warnings.domain.rules import DEFAULT_RULES, WarningRules, load_rules
from hvc.warnings.domain.signals import keep_number_suspension, port_out_query, zero_spend
from hvc.warnings.reports import Reports
from hvc.warnings.repository import Repository
from hvc.warnings.tasks import Tasks

pytestmark = pytest.mark.integration
UTC = dt.UTC


class Lookups:
    """The profiles and tiers the pipeline's `profiles` view would hold."""

    def __init__(self) -> None:
        self.profiles: dict[str, dict] = {}
        self.tiers: dict[str, str] = {}

    async def profile_of(self, customer_id: str) -> dict:
        return self.profiles.get(customer_id, {})

    async def profiles_of(self, ids: list[str]) -> dict[str, dict]:
        return {c: self.profiles.get(c, {}) for c in ids}

    async def tier_of(self, customer_id: str) -> str:
        return self.tiers.get(customer_id, "NONE")


async def raise_(
    repo: Repository,
    rules: WarningRules,
    lookups: Lookups,
    assigner: Assigner,
    cid: str,
    signal,
    at: dt.datetime,
) -> None:
    """A warning as the pipeline writes it: its document, and its task staffed by rule 003."""
    warning = warning_doc(cid, signal, at, await lookups.tier_of(cid), rules)
    manager = await assigner.manager_for(cid, await lookups.profile_of(cid))
    await repo.warnings.insert_one(warning)
    await repo.tasks.insert_one(task_doc(warning, manager, rules))


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
            directory = Lookups()
            directory.profiles[cid] = {"manager_id": f"M{tag}", "do_not_disturb": False}
            directory.profiles[f"{cid}dnd"] = {"manager_id": f"M{tag}", "do_not_disturb": True}
            directory.tiers[cid] = "GOLD"
            assigner = Assigner(client[db], rules)
            old = dt.datetime(2025, 3, 1, 4, tzinfo=UTC)
            seed = (repo, rules, directory, assigner, cid)
            await raise_(*seed, port_out_query("e1", "AUTH_CODE", old, rules), old)
            await raise_(*seed, zero_spend("2025-02", 0), old + dt.timedelta(hours=1))
            app = FastAPI()
            problems.install(app)
            contacts = Contacts(repo, rules, directory)
            app.include_router(make_router(Tasks(repo, send), contacts, Reports(repo, assigner)))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                work = (await http.get(f"/v1/managers/M{tag}/tasks")).json()
                assert work["total"] == 2
                assert [t["status"] for t in work["items"]] == ["OPEN", "OPEN"]
                assert all(t["overdue"] for t in work["items"])  # due in 2025
                task_id = work["items"][0]["task_id"]
                one = (await http.get(f"/v1/tasks/{task_id}")).json()
                assert one == work["items"][0] and one["manager_id"] == f"M{tag}"
                assert (await http.get("/v1/tasks/nope")).status_code == 404
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
                # The task is marked closed: the open ones are read by index. One closed
                # before the mark (OPEN on its document, a closure beside it) is marked by
                # `mark_closed`, once.
                assert (await repo.task(task_id))["status"] == "CLOSED"
                open_ids = [t["_id"] for t in await repo.open_candidates(f"M{tag}", 10)]
                assert task_id not in open_ids and len(open_ids) == 1
                await repo.tasks.update_one({"_id": task_id}, {"$set": {"status": "OPEN"}})
                assert await repo.mark_closed() == 1
                assert await repo.mark_closed() == 0
                assert (await repo.task(task_id))["status"] == "CLOSED"

                # Reports: by code/level/tier, by manager, retention by code.
                report = (await http.get("/v1/reports/warnings")).json()
                assert report["total"] == 2 and report["by_tier"] == {"GOLD": 2}
                assert {(i["code"], i["level"]) for i in report["items"]} == {
                    ("PORT_OUT_QUERY", 1),
                    ("ZERO_SPEND", 1),
                }
                by_manager = (await http.get("/v1/reports/tasks")).json()["items"]
                assert by_manager == [
                    {
                        "manager_id": f"M{tag}",
                        "open": 1,
                        "overdue": 1,
                        "closed": 1,
                        "portfolio": {"individuals": 1, "groups": 0},
                    }
                ]
                retention = (await http.get("/v1/reports/retention")).json()["items"]
                assert len(retention) == 1 and retention[0]["retention_rate"] == 1.0
            seen = await watch.wait_for(1)
        closed = [m for m in seen if m.WhichOneof("payload") == "task_closed"]
        assert len(closed) == 1
        assert closed[0].task_closed.outcome == warnings_pb2.TaskClosed.RETAINED
        assert closed[0].task_closed.task_id == task_id
    finally:
        await client.drop_database(db)
        await client.close()


async def test_contacts_respect_do_not_disturb_and_the_frequency_cap(infra):
    tag = uuid.uuid4().hex[:8]
    cid, db = f"K{tag}", f"it_contacts_{tag}"
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    repo = Repository(client[db])
    await repo.ensure_indexes()
    rules = load_rules(DEFAULT_RULES)
    sent: list[bytes] = []

    async def send(topic, key, value, headers):
        sent.append(value)

    try:
        directory = Lookups()
        directory.profiles[cid] = {"manager_id": "MK", "do_not_disturb": False}
        directory.profiles[f"{cid}q"] = {"manager_id": "MK", "do_not_disturb": True}
        assigner = Assigner(client[db], rules)
        t0 = dt.datetime(2025, 3, 1, 4, tzinfo=UTC)
        seed = (repo, rules, directory, assigner)
        await raise_(*seed, cid, keep_number_suspension("s1", t0, rules), t0)  # level 2
        await raise_(*seed, cid, port_out_query("p1", "AUTH_CODE", t0, rules), t0)  # level 1
        await raise_(*seed, f"{cid}q", port_out_query("p2", "AUTH_CODE", t0, rules), t0)
        tasks = {t["code"] + t["customer_id"][-1]: t["_id"] for t in await repo.all("tasks", {})}
        level2, level1, quiet = (
            tasks["KEEP_NUMBER_SUSPENSION" + cid[-1]],
            tasks["PORT_OUT_QUERY" + cid[-1]],
            tasks["PORT_OUT_QUERYq"],
        )
        app = FastAPI()
        problems.install(app)
        app.include_router(
            make_router(
                Tasks(repo, send), Contacts(repo, rules, directory, send), Reports(repo, assigner)
            )
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:

            def body(contact_id, at, **kw):
                return {
                    "contact_id": contact_id,
                    "channel": "PHONE",
                    "by": "MK",
                    "at": at.isoformat(),
                    **kw,
                }

            first = await http.post(f"/v1/tasks/{level2}/contacts", json=body("c1", t0))
            assert first.status_code == 201
            replay = await http.post(f"/v1/tasks/{level2}/contacts", json=body("c1", t0))
            assert replay.status_code == 200 and replay.json() == first.json()
            # A second outbound contact within 7 days for a level-2 task: refused, with when.
            day6 = t0 + dt.timedelta(days=6, hours=23, minutes=59)
            capped = await http.post(f"/v1/tasks/{level2}/contacts", json=body("c2", day6))
            assert capped.status_code == 429
            assert capped.headers["content-type"] == "application/problem+json"
            assert int(capped.headers["Retry-After"]) >= 1
            assert capped.json()["reason"] == "frequency-cap"
            assert capped.json()["next_allowed_at"] == (t0 + dt.timedelta(days=7)).isoformat()
            day7 = t0 + dt.timedelta(days=7)
            later = await http.post(f"/v1/tasks/{level2}/contacts", json=body("c3", day7))
            assert later.status_code == 201
            # Level 1 is exempt from the cap; inbound contacts are never capped.
            exempt = await http.post(f"/v1/tasks/{level1}/contacts", json=body("c4", day7))
            assert exempt.status_code == 201
            inbound = body("c5", day7, direction="INBOUND")
            assert (
                await http.post(f"/v1/tasks/{level2}/contacts", json=inbound)
            ).status_code == 201
            # Do-not-disturb: no outbound contact at all.
            dnd = await http.post(f"/v1/tasks/{quiet}/contacts", json=body("c6", t0))
            assert dnd.status_code == 409 and dnd.json()["reason"] == "do-not-disturb"
            taken = await http.post(f"/v1/tasks/{level1}/contacts", json=body("c1", t0))
            assert taken.status_code == 409
            naive = await http.post(
                f"/v1/tasks/{level1}/contacts", json={**body("c7", t0), "at": "2025-03-01T04:00"}
            )
            assert naive.status_code == 422
            history = (await http.get(f"/v1/customers/{cid}/contacts")).json()
            assert [c["contact_id"] for c in history["items"]] == ["c5", "c4", "c3", "c1"][
                : history["total"]
            ] or sorted(c["contact_id"] for c in history["items"]) == ["c1", "c3", "c4", "c5"]
            assert history["total"] == 4
            # The pipeline is told of each outbound contact recorded (its care touches' cap),
            # again on a replay; not of an inbound one nor of a refused one.
            logged = [warnings_pb2.WarningEvent.FromString(v) for v in sent]
            assert [
                (m.event_id, m.customer_id, m.contact_logged.channel)
                for m in logged
                if m.WhichOneof("payload") == "contact_logged"
            ] == [
                ("contact-c1", cid, "PHONE"),
                ("contact-c1", cid, "PHONE"),
                ("contact-c3", cid, "PHONE"),
                ("contact-c4", cid, "PHONE"),
            ]
    finally:
        await client.drop_database(db)
        await client.close()


async def test_assignment_keeps_every_manager_within_the_caps_under_concurrency(infra):
    tag = uuid.uuid4().hex[:8]
    db = f"it_assign_{tag}"
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    rules = load_rules(DEFAULT_RULES).model_copy(
        update={"manager_max_individuals": 3, "manager_max_groups": 1}
    )
    try:
        # Two processes' assigners, racing for the same two managers.
        a, b = Assigner(client[db], rules), Assigner(client[db], rules)
        for x in (a, b):
            x.note_manager("MA")
            x.note_manager("MB")

        async def assign(assigner, i, group):
            profile = {"manager_id": "MA", "is_group": group}  # a group account: kind G
            return await assigner.manager_for(f"C{i}", profile)

        calls = [assign(a if i % 2 else b, i, i >= 10) for i in range(14)]
        calls += [assign(b if i % 2 else a, i, i >= 10) for i in range(14)]  # the same again
        got = await asyncio.gather(*calls)
        stored = {d["_id"]: d["manager_id"] async for d in client[db]["assignments"].find({})}
        first = [stored.get(f"C{i}") for i in range(14)]
        for i, (x, y) in enumerate(zip(got[:14], got[14:], strict=True)):
            # One manager per customer, whoever asked; "no room" only for the unassigned.
            assert {x, y} - {None} <= {stored.get(f"C{i}")}
        individuals, groups = first[:10], first[10:]
        # Never past a cap, whatever races. (A racer that loses a customer gives its slot
        # back, and a racer's own count of slots skips it until it reloads; meanwhile another
        # customer may find no room and waits for its next warning or profile, so how full the
        # portfolios get in one burst of races is not promised: the room left is used when
        # asked again, below.)
        assert individuals.count("MA") <= 3 and individuals.count("MB") <= 3
        assert groups.count("MA") <= 1 and groups.count("MB") <= 1
        assert individuals.count("MA") + individuals.count("MB") >= 1
        assert groups.count(None) >= 2
        # The slots taken are exactly the assignments made: none leaked.
        loads = await a.loads()
        assert loads == {
            m: {"individuals": individuals.count(m), "groups": groups.count(m)}
            for m in ("MA", "MB")
            if m in first
        }
        # Asked again later, an unassigned customer gets a manager exactly when there is room.
        waiting = individuals.index(None)
        room = individuals.count("MA") + individuals.count("MB") < 6
        fresh = Assigner(client[db], rules)
        await fresh.load_state()
        again = await fresh.manager_for(f"C{waiting}", {"manager_id": "MA"})
        assert (again is not None) is room
    finally:
        await client.drop_database(db)
        await client.close()


async def test_a_slot_given_back_below_others_is_taken_again(infra):
    """A racer that lost its customer gave back slot 1 while slots 0 and 2 stay: the room is
    one slot, and the next assigner (counting 2 slots) finds it."""
    tag = uuid.uuid4().hex[:8]
    db = f"it_slots_{tag}"
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    rules = load_rules(DEFAULT_RULES).model_copy(update={"manager_max_individuals": 3})
    try:
        slots = client[db]["manager_slots"]
        for n in (0, 2):
            doc = {"_id": f"MA|I|{n:06d}", "manager_id": "MA", "kind": "I"}
            await slots.insert_one(doc)
        fresh = Assigner(client[db], rules)
        await fresh.load_state()
        assert await fresh.manager_for("C9", {"manager_id": "MA"}) == "MA"
        assert await fresh.manager_for("C10", {"manager_id": "MA"}) is None  # full now
        assert await slots.count_documents({"manager_id": "MA"}) == 3
    finally:
        await client.drop_database(db)
        await client.close()


async def test_staffing_assigns_a_checkpoints_new_customers_at_once_within_the_caps(infra):
    """The tasks' (and callbacks') staffing step: every task of a customer gets the same
    manager, the CRM's while it has room, another known manager past its cap, the staffing
    field gone; a group account is staffed against the groups' cap."""
    from hvc.common.streams import View
    from hvc.warnings.assignment import STAFFING_GROUP, Staffing

    db = f"it_staffing_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    rules = load_rules(DEFAULT_RULES).model_copy(update={"manager_max_individuals": 3})
    try:
        slot = {"manager_id": "MB", "kind": "I"}
        await client[db]["assignments"].insert_one({"_id": "C0", **slot, "slot": "MB|I|000000"})
        await client[db]["manager_slots"].insert_one(
            {"_id": "MB|I|000000", **slot, "customer_id": "C0"}
        )
        staffing = Staffing(rules)

        def task(n: int, cid: str) -> View:
            doc = {"customer_id": cid, "manager_id": "MA", STAFFING_GROUP: None, "n": n}
            return View("tasks", f"t{n}", doc, "insert")

        views = [task(n, f"C{n % 7}") for n in range(14)] + [View("tasks", "gone", None)]
        out = await staffing(client[db], views)
        assert [v.id for v in out] == [v.id for v in views]  # order and removals kept
        by_customer: dict[str, set[str | None]] = {}
        for v in out[:-1]:
            assert v.doc is not None and STAFFING_GROUP not in v.doc
            by_customer.setdefault(v.doc["customer_id"], set()).add(v.doc["manager_id"])
        assert all(len(m) == 1 for m in by_customer.values())  # one manager per customer
        managers = {c: next(iter(m)) for c, m in by_customer.items()}
        assert managers["C0"] == "MB"  # assigned before: sticky
        others = [managers[f"C{i}"] for i in range(1, 7)]
        assert others.count("MA") == 3  # the CRM's manager, up to its cap
        assert others.count("MB") == 2  # then the other known manager, to its own cap of 3
        assert others.count(None) == 1  # no room left anywhere
        # A group account's visit is staffed as a group (its own cap, not the individuals'),
        # and a later manager-only change of a planned callback is left as it is.
        visit = View(
            "callbacks",
            "VI-2026Q4-G1",
            {"customer_id": "G1", "manager_id": "MA", STAFFING_GROUP: True, "kind": "VISIT"},
            "insert",
        )
        bare = View("callbacks", "CB-2026Q4-C9", {"manager_id": "MA"}, "set")
        got = await staffing(client[db], [visit, bare])
        assert got[0].doc == {"customer_id": "G1", "manager_id": "MA", "kind": "VISIT"}
        assert got[1].doc == {"manager_id": "MA"}
        kinds = {d["_id"]: d["kind"] async for d in client[db]["assignments"].find({})}
        assert kinds["G1"] == "G" and kinds["C1"] == "I"
    finally:
        await client.drop_database(db)
        await client.close()


async def test_a_managers_open_tasks_are_cases_one_per_customer(infra):
    tag = uuid.uuid4().hex[:8]
    db, manager = f"it_cases_{tag}", f"M{tag}"
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    repo = Repository(client[db])
    await repo.ensure_indexes()
    rules = load_rules(DEFAULT_RULES)
    try:
        directory = Lookups()
        for cid, tier in (("A", "GOLD"), ("B", "DIAMOND"), ("C", "SILVER")):
            directory.profiles[cid] = {"manager_id": manager, "name": f"客户{cid}"}
            directory.tiers[cid] = tier
        assigner = Assigner(client[db], rules)
        now = dt.datetime.now(UTC).replace(microsecond=0)
        old = now - dt.timedelta(days=30)
        for cid, signal, when in (
            ("A", port_out_query("a1", "AUTH_CODE", old, rules), old),
            ("A", zero_spend("2025-02", 0), old),
            ("B", keep_number_suspension("b1", now, rules), now),
            ("C", port_out_query("c1", "AUTH_CODE", now, rules), now),
        ):
            await raise_(repo, rules, directory, assigner, cid, signal, when)
        # Tiering decided since: the case shows the tier now, not the one at the warning.
        directory.profiles["A"]["tier"] = "PLATINUM"
        app = FastAPI()
        problems.install(app)
        tasks = Tasks(repo, None)  # type: ignore[arg-type]  # nothing published here
        app.include_router(
            make_router(tasks, Contacts(repo, rules, directory), Reports(repo, assigner), directory)
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            [c_task] = (await http.get("/v1/customers/C/tasks")).json()["items"]
            await repo.close(
                {"_id": c_task["task_id"], "outcome": "RETAINED", "closed_at": now, "by": "x"}
            )

            async def cases(**params: str) -> list[str]:
                r = await http.get(f"/v1/managers/{manager}/cases", params=params)
                assert r.status_code == 200, r.text
                return [c["customer_id"] for c in r.json()["items"]]

            got = (await http.get(f"/v1/managers/{manager}/cases")).json()
            assert (got["total"], got["open_tasks"]) == (2, 3)
            a, b = got["items"]
            # Overdue first, though B's tier ranks higher; C's only task is closed.
            assert (a["customer_id"], a["overdue"], a["tier"]) == ("A", True, "PLATINUM")
            assert a["codes"] == ["PORT_OUT_QUERY", "ZERO_SPEND"] and a["name"] == "客户A"
            assert [t["summary"] for t in a["tasks"]] and a["tasks"][0]["figures"] is not None
            assert (b["customer_id"], b["overdue"], b["level"]) == ("B", False, 2)
            assert await cases(tier="DIAMOND") == ["B"]
            assert await cases(tier="PLATINUM") == ["A"]
            assert await cases(code="ZERO_SPEND") == ["A"]
            assert await cases(due="overdue") == ["A"]
            assert await cases(due="week") == ["A", "B"]
            assert await cases(due="today") == ["A"]  # B is due in 72 hours
            assert await cases(limit="1", offset="1") == ["B"]
            bad = await http.get(f"/v1/managers/{manager}/cases", params={"due": "later"})
            assert bad.status_code == 422
    finally:
        await client.drop_database(db)
        await client.close()


async def test_a_close_carries_what_retention_counts_and_the_report_reads_the_months(infra):
    tag = uuid.uuid4().hex[:8]
    db, manager, cid = f"it_retention_{tag}", f"M{tag}", f"R{tag}"
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    repo = Repository(client[db])
    await repo.ensure_indexes()
    rules = load_rules(DEFAULT_RULES)
    try:
        directory = Lookups()
        directory.profiles[cid] = {"manager_id": manager}
        directory.tiers[cid] = "GOLD"
        assigner = Assigner(client[db], rules)
        now = dt.datetime.now(UTC)
        await raise_(repo, rules, directory, assigner, cid, zero_spend("2025-02", 0), now)
        # The pipeline's monthly counts of closes, two partitions' documents of one month.
        month = "2025-06"
        await client[db]["retention_monthly"].insert_many(
            [
                {
                    "_id": f"{month} {p:03d}",
                    "month": month,
                    "partition": p,
                    "counts": {
                        "outcome:RETAINED": 2,
                        "outcome:CHURNED": p,
                        f"manager|outcome:{manager}|RETAINED": 2,
                        f"manager|outcome:{manager}|CHURNED": p,
                        "tier|outcome:GOLD|RETAINED": 2,
                        "tier|outcome:GOLD|CHURNED": p,
                    },
                }
                for p in (0, 2)
            ]
        )
        async with (
            producer(KafkaSettings(bootstrap_servers=infra.kafka_bootstrap)) as send,
            TopicWatch(
                infra.kafka_bootstrap, "hvc.warnings.v1", lambda m: m.customer_id == cid
            ) as watch,
        ):
            app = FastAPI()
            problems.install(app)
            app.include_router(
                make_router(
                    Tasks(repo, send),
                    Contacts(repo, rules, directory),
                    Reports(repo, assigner),
                    directory,
                )
            )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                [task] = (await http.get(f"/v1/customers/{cid}/tasks")).json()["items"]
                body = {"closed_by": manager, "note": "", "outcome": "RETAINED"}
                for _ in range(2):  # a repeat publishes nothing more
                    r = await http.post(f"/v1/tasks/{task['task_id']}/close", json=body)
                    assert r.status_code == 200, r.text
                got = await http.get(
                    "/v1/reports/monthly/retention", params={"from": month, "to": "2025-07"}
                )
                june, july = got.json()["items"]
                assert june["outcomes"] == {"RETAINED": 4, "CHURNED": 2}
                assert june["retention_rate"] == 0.6667
                assert june["by_manager"][manager]["CHURNED"] == 2
                assert june["by_tier"]["GOLD"]["RETAINED"] == 4
                assert july["outcomes"] == {} and july["retention_rate"] is None
                own = await http.get(
                    "/v1/reports/monthly/retention",
                    params={"from": month, "to": month, "manager_id": manager},
                )
                assert own.json()["items"][0]["outcomes"] == {"RETAINED": 4, "CHURNED": 2}
                other = await http.get(
                    "/v1/reports/monthly/retention",
                    params={"from": month, "to": month, "manager_id": "nobody"},
                )
                assert other.json()["items"][0]["outcomes"] == {}
                bad = await http.get(
                    "/v1/reports/monthly/retention", params={"from": "2025-13", "to": month}
                )
                assert bad.status_code == 422
                backwards = await http.get(
                    "/v1/reports/monthly/warnings", params={"from": "2025-05", "to": "2025-01"}
                )
                assert backwards.status_code == 400
            seen = await watch.wait_for(1)
        [closed] = [m for m in seen if m.WhichOneof("payload") == "task_closed"]
        c = closed.task_closed
        assert (c.manager_id, c.tier) == (manager, "GOLD")
        assert c.code == warnings_pb2.WarningRaised.ZERO_SPEND
    finally:
        await client.drop_database(db)
        await client.close()
