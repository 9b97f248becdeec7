"""Finding customers by number (full or last digits) or name through the warnings API, on the
real store, from the `lookup` and `profiles` views as the engine's view writer lands them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from hvc.common import problems
from hvc.common.streams import MongoViews, View
from hvc.warnings.api.routes import make_router
from hvc.warnings.assignment import STAFFING_GROUP, STAFFING_KEYS, Assigner, Staffing
from hvc.warnings.contacts import Contacts
from hvc.warnings.directory import LOOKUP, ViewDirectory, caller_doc, lookup_keys
from hvc.warnings.domain.rules import DEFAULT_RULES, load_rules
from hvc.warnings.reports import Reports
from hvc.warnings.repository import Repository
from hvc.warnings.tasks import Tasks

pytestmark = pytest.mark.integration

PROFILES = {
    "C1": {"name": "张三", "msisdns": ["13812348000"], "manager_id": "M1", "tier": "GOLD"},
    "C10": {"name": "张三丰", "msisdns": ["13912348000"], "manager_id": "M2", "tier": "NONE"},
    "C2": {"name": "李四", "msisdns": ["+8613812340000", "15000008000"], "tier": "DIAMOND"},
    "C3": {"name": "王五", "msisdns": ["13812349000"], "tier": "SILVER"},
}


async def test_numbers_and_names_find_their_customers(infra: Any) -> None:
    name = f"it_lookup_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    views = MongoViews(AsyncMongoClient(infra.mongo_uri), name)
    try:
        await asyncio.to_thread(
            views, "profiles", [View("profiles", c, p, "fresh") for c, p in PROFILES.items()]
        )
        keys = [k for c, p in PROFILES.items() for k in lookup_keys(c, p)]
        # C4 gave 13812349000 up (to C3): its key is still there, its profile no longer has it.
        keys += list(lookup_keys("C4", {"msisdns": ["13812349000"]}))
        await asyncio.to_thread(
            views,
            "profiles",
            [View("profiles", "C4", {"name": "赵六", "msisdns": ["15900001111"]}, "fresh")],
        )
        await asyncio.to_thread(
            views,
            LOOKUP,
            [View(LOOKUP, k, {"customer_id": k.rsplit(" ", 1)[1]}, "insert") for k in keys],
        )
        db = client[name]
        repo = Repository(db)
        rules = load_rules(DEFAULT_RULES)
        directory = ViewDirectory(db)
        app = FastAPI()
        problems.install(app)
        app.include_router(
            make_router(
                Tasks(repo, None),  # type: ignore[arg-type]  # no task is closed here
                Contacts(repo, rules, directory),
                Reports(repo, Assigner(db, rules)),
                directory,
            )
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:

            async def found(**params: str) -> list[str]:
                r = await http.get("/v1/customers", params=params)
                assert r.status_code == 200, r.text
                return sorted(i["customer_id"] for i in r.json()["items"])

            # A page of cases' profiles in one read: each asked for once, those without `{}`.
            some = await directory.profiles_of(["C2", "C1", "C9", "C1"])
            assert list(some) == ["C2", "C1", "C9"]
            assert (some["C2"]["name"], some["C1"]["tier"], some["C9"]) == ("李四", "GOLD", {})

            assert await found(msisdn="13812348000") == ["C1"]
            assert await found(msisdn="8000") == ["C1", "C10", "C2"]
            assert await found(msisdn="2348000") == ["C1", "C10"]
            assert await found(msisdn="13812340000") == ["C2"]  # stored with +86
            assert await found(msisdn="7777") == []
            assert await found(name="张三") == ["C1", "C10"]
            assert await found(name="张三丰") == ["C10"]
            assert await found(name="王") == ["C3"]
            one = (await http.get("/v1/customers", params={"msisdn": "9000"})).json()["items"]
            assert one == [
                {
                    "customer_id": "C3",
                    "name": "王五",
                    "msisdns": ["13812349000"],
                    "crm_manager_id": None,
                    "manager_id": None,
                    "group_id": None,
                    "tier": "SILVER",
                }
            ]

            # The VIP line: exactly the calling number, with or without the country code; a
            # number that moved on lists only the customer whose profile holds it now.
            async def callers(number: str) -> list[str]:
                r = await http.get(f"/v1/callers/{number}")
                assert r.status_code == 200, r.text
                return [i["customer_id"] for i in r.json()["items"]]

            assert await callers("13812348000") == ["C1"]
            assert await callers("+8613812340000") == ["C2"]
            assert await callers("13812340000") == ["C2"]
            assert await callers("8000") == []  # last digits are a search, not a caller
            assert await callers("13812349000") == ["C3"]  # C4's key is stale
            [c3] = (await http.get("/v1/callers/13812349000")).json()["items"]
            assert (c3["tier"], c3["do_not_disturb"]) == ("SILVER", False)
            assert (await http.get("/v1/callers/12ab")).status_code == 400
            limited = await http.get("/v1/customers", params={"msisdn": "8000", "limit": 2})
            assert limited.json()["total"] == 2
            for bad in ({"msisdn": "12ab"}, {}, {"msisdn": "8000", "name": "张"}):
                r = await http.get("/v1/customers", params=bad)
                assert r.status_code in (400, 422), (bad, r.text)
                assert r.headers["content-type"].startswith("application/problem+json")
    finally:
        await asyncio.to_thread(views.close)
        await client.drop_database(name)
        await client.close()


async def test_the_vip_line_is_answered_from_the_lookup_documents_with_their_manager(
    infra: Any,
) -> None:
    """The `lookup` documents as the pipeline and the view writer's staffing step write them:
    each carries the tier, CRM manager, do-not-disturb and the retention manager (added as a
    document is written, and written into a number's documents when staffing gives a
    manager), and a caller is answered from them alone (no profile is read: here there is
    none)."""
    name = f"it_callers_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    rules = load_rules(DEFAULT_RULES)
    staffing = Staffing(rules)
    views = MongoViews(
        AsyncMongoClient(infra.mongo_uri),
        name,
        before_write={"tasks": staffing, LOOKUP: staffing.callers},
    )
    profiles = {
        "C5": {"msisdns": ["13700005555"], "manager_id": "M1", "tier": "DIAMOND"},
        "C6": {"msisdns": ["13700006666"], "manager_id": "M2", "do_not_disturb": True},
        "C7": {"msisdns": ["13700007777"], "tier": "GOLD"},
    }
    try:
        db = client[name]
        # C7 was assigned by a process that held its partition before (not known here).
        await db["assignments"].insert_one({"_id": "C7", "manager_id": "M9", "kind": "I"})
        # The profiles' documents, then a checkpoint with C5's first task naming its number's
        # key (and one gone since, not recreated): staffing gives C5 the CRM's manager and
        # writes it into that document.
        docs = [
            View(LOOKUP, k, caller_doc(c, p, []), "fresh")
            for c, p in profiles.items()
            for k in lookup_keys(c, p)
        ]
        await asyncio.to_thread(views, LOOKUP, docs)
        [c5_key] = lookup_keys("C5", profiles["C5"])
        task = {
            "customer_id": "C5",
            "manager_id": "M1",
            STAFFING_GROUP: False,
            STAFFING_KEYS: [c5_key, "n 99990000731 C5"],
        }
        await asyncio.to_thread(views, "tasks", [View("tasks", "T5", task, "insert")])
        stored = await db["tasks"].find_one({"_id": "T5"})
        assert stored is not None and stored["manager_id"] == "M1"
        assert STAFFING_KEYS not in stored and STAFFING_GROUP not in stored
        assert await db[LOOKUP].find_one({"_id": "n 99990000731 C5"}) is None
        directory = ViewDirectory(db)
        assigner = Assigner(db, rules)

        async def caller(number: str) -> list[dict[str, Any]]:
            return await directory.callers(number, assigner.manager_of)

        assert await caller("13700005555") == [
            {
                "customer_id": "C5",
                "tier": "DIAMOND",
                "crm_manager_id": "M1",
                "manager_id": "M1",
                "do_not_disturb": False,
                "open_complaints": [],
            }
        ]
        [c6] = await caller("+8613700006666")
        assert (c6["tier"], c6["manager_id"], c6["do_not_disturb"]) == ("NONE", None, True)
        [c7] = await caller("13700007777")
        assert (c7["tier"], c7["crm_manager_id"], c7["manager_id"]) == ("GOLD", None, "M9")
        assert await caller("13700008888") == []
        with pytest.raises(ValueError):
            await caller("12ab")
        # A document written again (a new tier, a complaint opened) keeps the manager: the
        # step adds it each time.
        k1 = {"id": "K1", "status": "RECEIVED", "sla_state": "ON_TRACK"}
        again = caller_doc("C5", {**profiles["C5"], "tier": "GOLD"}, [k1])
        await asyncio.to_thread(views, LOOKUP, [View(LOOKUP, c5_key, again, "replace")])
        [c5] = await caller("13700005555")
        assert (c5["tier"], c5["manager_id"], c5["open_complaints"]) == ("GOLD", "M1", [k1])
    finally:
        await asyncio.to_thread(views.close)
        await client.drop_database(name)
        await client.close()
