"""The tiering service's reads and commands over HTTP (the gateway calls these)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from pydantic import AwareDatetime, BaseModel, Field

from hvc.common import monthly
from hvc.common.problems import Problem
from hvc.common.scans import Scans
from hvc.tiering.decisions import Commands
from hvc.tiering.domain.explain import explain
from hvc.tiering.domain.groups import group_file, indicators, period_bounds
from hvc.tiering.domain.model import Override
from hvc.tiering.domain.rules import RuleSet
from hvc.tiering.domain.tiers import TierName
from hvc.tiering.reports import REPORTS, report, simulate, tiers_by_month
from hvc.tiering.repository import group_from_doc

MONTH = monthly.PATTERN

CustomerId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")]


class OverrideRequest(BaseModel):
    tier: TierName
    reason: str = Field(min_length=3, max_length=500)
    expires_at: AwareDatetime
    set_by: str = Field(min_length=1, max_length=64)


class SimulationRequest(BaseModel):
    ruleset: RuleSet
    year: int = Field(ge=2000, le=2100)
    as_of: dt.date | None = None


def decision_view(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": d["event_id"],
        "effective_from": d["effective_from"].isoformat(),
        "old_tier": d["old_tier"],
        "new_tier": d["new_tier"],
        "source": d["source"],
        "ruleset_version": d["ruleset_version"],
        "detail": d.get("detail", ""),
        "score": d.get("score"),
        "decided_at": d["decided_at"].isoformat(),
        "seq": d["seq"],
    }


def _iso(v: dt.datetime | None) -> str | None:
    return None if v is None else v.replace(tzinfo=v.tzinfo or dt.UTC).isoformat()


def make_router(commands: Commands) -> APIRouter:
    scans = Scans.from_settings()
    router = APIRouter(prefix="/v1", tags=["tiering"])
    repo, book = commands.repo, commands.book

    def clock() -> dt.datetime:
        return commands.clock()  # read each time: a test sets it

    async def _explained(customer_id: str, at: dt.datetime) -> dict[str, Any]:
        facts = await repo.facts(customer_id)
        if facts is None:
            raise Problem(404, "Customer not found", f"no tiering facts for {customer_id}")
        return explain(facts, await repo.groups_for(facts), book, at)

    @router.get("/customers/{customer_id}/tier")
    async def get_tier(customer_id: CustomerId, at: AwareDatetime | None = None) -> dict[str, Any]:
        """Effective tier, its source, the score breakdown and what is missing for the next."""
        return await _explained(customer_id, at or clock())

    @router.get("/customers/{customer_id}/tier/history")
    async def get_history(
        customer_id: CustomerId,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        items, total = await repo.history_of(customer_id, limit, offset)
        return {
            "items": [decision_view(d) for d in items],
            "total": total,
            "limit": limit,
            "offset": offset,
        }

    @router.put("/customers/{customer_id}/tier/override")
    async def put_override(
        customer_id: CustomerId,
        body: OverrideRequest,
        idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
    ) -> dict[str, Any]:
        """A supervisor's manual floor, with reason and expiry: logged in override_log, then
        sent to the pipeline, which decides. The answer names the decisions it makes, as the
        pipeline publishes them, and the explanation with the override in force."""
        now = clock()
        if body.expires_at <= now:
            raise Problem(422, "Override already expired", "expires_at must be in the future")
        facts = await repo.facts(customer_id)
        if facts is None:
            raise Problem(404, "Customer not found", f"no tiering facts for {customer_id}")
        seed = f"{customer_id}|{idempotency_key}" if idempotency_key else str(uuid.uuid4())
        override_id = "ovr-" + hashlib.sha256(seed.encode()).hexdigest()[:24]
        o = Override(
            override_id,
            body.tier,
            now,
            body.expires_at.astimezone(dt.UTC),
            body.reason,
            body.set_by,
        )
        created, logged = await repo.log_override(customer_id, o)
        if logged is None:
            raise Problem(409, "Idempotency-Key reused", "the key was used for another customer")
        # Sent again on a repeat: its first try may have been logged and never sent.
        await commands.override(customer_id, logged)
        if all(x.override_id != logged.override_id for x in facts.overrides):
            facts.overrides.append(logged)
        decisions = await commands.expected(customer_id, facts)
        return {
            "override_id": override_id,
            "created": created,
            "decisions": [d.event_id for d in decisions],
            "explanation": explain(facts, await repo.groups_for(facts), book, now),
        }

    @router.get("/tiering/rulesets/current")
    async def current_ruleset() -> dict[str, Any]:
        """The rule set in force now (the starting point of a candidate's dry run)."""
        out: dict[str, Any] = book.at(clock()).model_dump(mode="json")
        return out

    @router.post("/tiering/simulations")
    async def post_simulation(body: SimulationRequest) -> dict[str, Any]:
        """Dry run of a candidate rule set: tier moves, nothing emitted or stored."""
        as_of = body.as_of or dt.date(body.year + 1, 1, 1)
        async with scans.slot():
            return await simulate(repo, book, body.ruleset, year=body.year, as_of=as_of)

    @router.get("/reports/monthly/tiers")
    async def tiers_monthly(
        first: Annotated[str, Query(alias="from", pattern=MONTH)],
        last: Annotated[str, Query(alias="to", pattern=MONTH)],
    ) -> dict[str, Any]:
        """Month by month: the tier distribution at each month's end, the moves between tiers
        and the decisions' sources (pre-aggregated by the pipeline)."""
        try:
            return await tiers_by_month(repo, first, last)
        except ValueError as exc:
            raise Problem(400, "Bad range", str(exc)) from None

    @router.get("/groups/{group_id}")
    async def group(
        group_id: CustomerId, members: Annotated[int, Query(ge=0, le=1000)] = 200
    ) -> dict[str, Any]:
        """A group's file (集团客户档案): its latest snapshot and class, its members (key
        persons first, at most `members` of them), key persons and manager, and whether the
        file is complete."""
        doc = await repo.group(group_id)
        if doc is None:
            raise Problem(404, "Group not found", f"no group {group_id}")
        rules = book.at(clock())
        file = group_file(doc, group_from_doc(doc), rules)
        listed = await repo.members_of(group_id, members) if members else []
        return {
            **file.as_dict(),
            "ruleset_version": rules.version,
            "member_list": [
                {
                    "customer_id": m["customer_id"],
                    "key_person": bool(m.get("key_person")),
                    "manager_id": m.get("manager_id"),
                    "since": _iso(m["stints"][-1]["from"]) if m.get("stints") else None,
                }
                for m in listed
            ],
        }

    @router.get("/reports/group-indicators")
    async def group_indicators(
        period: Annotated[str, Query(pattern=r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$")],
    ) -> dict[str, Any]:
        """The group customer department's indicators (003): filing rate by class and member
        coverage as the files are now, stability over `period` (YYYY, YYYY-MM or YYYY-Qn in
        the operator's zone), staffing against one manager per 50 groups."""
        rules = book.at(clock())
        start, end = period_bounds(period, book.zone)
        async with scans.slot():
            files = [group_file(d, group_from_doc(d), rules) for d in await repo.group_docs()]
            stints = await repo.member_stints()
        return {
            "period": period,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "ruleset_version": rules.version,
            **indicators(files, stints, rules, start, end),
        }

    @router.get("/reports/{name}")
    async def get_report(
        name: str,
        at: AwareDatetime | None = None,
        period: Annotated[str | None, Query(pattern=MONTH)] = None,
        year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    ) -> dict[str, Any]:
        """Segmentation: tiers, group-classes, high-end, arpu-bands, vip-by-arpu, rfm."""
        if name not in REPORTS:
            raise Problem(404, "Unknown report", f"reports: {', '.join(REPORTS)}")
        when = at or clock()
        local = when.astimezone(book.zone).date()
        async with scans.slot():
            return await report(
                repo,
                book,
                name,
                at=when,
                period=period or f"{local.year:04d}-{local.month:02d}",
                year=year or local.year - 1,
            )

    return router
