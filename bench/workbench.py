"""The workbench's reads through the gateway at 100,000 customers (default): the VIP line's
lookup by calling number (优先接入, DOMAIN §6), the search by the last digits of a number, and
the reports month by month over a year.

The read side as the streams leave it: the warnings service's `profiles` view and its
`lookup` view (a number key and a name key per customer) and the complaints service's
`open_complaints` view (a tenth of the customers with an open complaint), inserted in bulk as
the engine's view writer inserts them. Then warnings, complaints and the gateway run as
processes, and a client offers the lookups at a fixed rate (open loop: a slow answer does not
slow the offer), each a call of an `integration` client (the IVR), audited like any other.

Every lookup is: token, role, the warnings service (one read: the `lookup` range by `_id`,
whose documents carry tier, managers, do-not-disturb and open complaints), and the audit
entry; p50/p99 are printed against the target (p99 <= 10 ms). The complaints service's
`open_complaints` view is loaded too (the gateway asks it for a document written before
the open complaints were carried); its read is timed alone as a stage.

The monthly reports read the services' monthly views: three years of months, one document per
month and partition (24), with the counts 100,000 customers' decisions, warnings, filings
and closes leave (the number of documents does not grow with the population; their counts
do), closes by 250 managers. Target: <= 200 ms.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from typing import Any

import httpx

from hvc.common.service import settle_heap
from hvc.devinfra import chaos, local
from hvc.gateway.auth import mint
from hvc.gateway.settings import GatewaySettings
from hvc.warnings.directory import LOOKUP, MANAGER, caller_doc, is_number_key, lookup_keys

SERVICES = ("tiering", "warnings", "complaints", "gateway")
DBS = {s: f"bench_vip_{s}" for s in ("tiering", *SERVICES)}
TIERS = ("DIAMOND", "PLATINUM", "GOLD", "SILVER", "VIP", "NONE")
BATCH = 5_000


def number(i: int) -> str:
    return f"139{(i * 7919) % 100_000_000:08d}"  # distinct for i < 100,000,000


async def load(uri: str, n: int) -> None:
    from pymongo import AsyncMongoClient

    await chaos.drop_databases(uri, DBS.values())
    client: Any = AsyncMongoClient(uri)
    try:
        warnings, complaints = client[DBS["warnings"]], client[DBS["complaints"]]
        for start in range(0, n, BATCH):
            profiles, keys, open_ = [], [], []
            for i in range(start, min(n, start + BATCH)):
                cid = f"C{i:08d}"
                p = {
                    "_id": cid,
                    "name": f"客户{i}",
                    "msisdns": [number(i)],
                    "manager_id": f"M{i % 250:04d}",
                    "do_not_disturb": i % 20 == 0,
                    "tier": TIERS[i % len(TIERS)],
                }
                profiles.append(p)
                # As the pipeline and the view writer's staffing step write them: a number's
                # carries what the VIP line answers (a retention manager for a customer in
                # three; the open complaints, a customer in ten with one), a name's the
                # customer alone.
                complained = (
                    [{"id": f"K{i}", "status": "RECEIVED", "sla_state": "ON_TRACK"}]
                    if i % 10 == 0
                    else []
                )
                caller = {
                    **caller_doc(cid, p, complained),
                    MANAGER: f"R{i % 250:04d}" if i % 3 == 0 else None,
                }
                keys += [
                    {"_id": k, **caller} if is_number_key(k) else {"_id": k, "customer_id": cid}
                    for k in lookup_keys(cid, p)
                ]
                if complained:
                    open_.append({"_id": cid, "customer_id": cid, "open": complained})
            await warnings["profiles"].insert_many(profiles, ordered=False)
            await warnings[LOOKUP].insert_many(keys, ordered=False)
            if open_:
                await complaints["open_complaints"].insert_many(open_, ordered=False)
        await load_months(client, n)
    finally:
        await client.close()


def _months(n: int) -> list[str]:
    return [f"{2024 + i // 12}-{i % 12 + 1:02d}" for i in range(n)]


async def load_months(client: Any, n: int) -> None:
    """Three years of monthly documents, as the pipelines leave them for `n` customers."""
    rng = random.Random(5)
    parts = 24
    per = max(1, n // parts)  # customers per partition
    codes = ("OVERDUE", "PAYMENT_DUE_SOON", "DATA_DROP", "SPEND_DROP", "PORT_OUT_QUERY")
    rows: dict[str, list[dict[str, int]]] = {"tiering": [], "warnings": [], "complaints": []}
    for _month in _months(36):
        for _p in range(parts):
            moves = {t: rng.randint(0, per // 50) for t in TIERS[:5]}
            rows["tiering"].append(
                {
                    **{f"move:NONE>{t}": k for t, k in moves.items()},
                    **{f"in:{t}": k for t, k in moves.items()},
                    "out:NONE": sum(moves.values()),
                    "source:PLAN": sum(moves.values()),
                }
            )
            w = {f"code:{c}": rng.randint(0, per // 20) for c in codes}
            rows["warnings"].append({**w, "total": sum(w.values()), "level:1": sum(w.values())})
            filed = rng.randint(0, per // 100 + 1)
            rows["complaints"].append(
                {
                    "filed": filed,
                    "filed|tier:GOLD": filed,
                    "breached": filed // 10,
                    "breached|tier:GOLD": filed // 10,
                    "satisfaction:5": filed // 2,
                }
            )
    names = {"tiering": "tiers_monthly", "warnings": "warnings_monthly"}
    names["complaints"] = "complaints_monthly"
    for service, counts in rows.items():
        docs = []
        for i, c in enumerate(counts):
            month, p = _months(36)[i // parts], i % parts
            raw = json.dumps(c, separators=(",", ":"))  # as hvc.common.monthly writes them
            docs.append({"_id": f"{month} {p:03d}", "month": month, "partition": p, "counts": raw})
        await client[DBS[service]][names[service]].insert_many(docs, ordered=False)
    retention = []
    for month in _months(36):
        for p in range(parts):
            counts: dict[str, int] = {}
            for m in rng.sample(range(250), 40):  # the managers this partition's closes name
                for outcome in ("RETAINED", "CHURNED", "UNREACHABLE"):
                    k = rng.randint(0, per // 400 + 1)
                    counts[f"manager|outcome:M{m:04d}|{outcome}"] = k
                    counts[f"outcome:{outcome}"] = counts.get(f"outcome:{outcome}", 0) + k
                    key = f"tier|outcome:{TIERS[m % 6]}|{outcome}"
                    counts[key] = counts.get(key, 0) + k
            raw = json.dumps(counts, separators=(",", ":"))
            retention.append(
                {"_id": f"{month} {p:03d}", "month": month, "partition": p, "counts": raw}
            )
    await client[DBS["warnings"]]["retention_monthly"].insert_many(retention, ordered=False)


async def at_rate(
    url: str, token: str, paths: list[str], rate: float, seconds: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        timeout=30, limits=limits, headers={"Authorization": f"Bearer {token}"}
    ) as http:

        async def one(path: str) -> None:
            nonlocal errors
            t0 = time.perf_counter()
            try:
                r = await http.get(url + path)
                ok = r.status_code == 200 and r.json().get("found", True) is not False
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - t0)
            if not ok:
                errors += 1

        tasks = []
        start = time.perf_counter()
        for i in range(max(1, int(rate * seconds))):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(random.choice(paths))))
        await asyncio.gather(*tasks)
    return latencies, errors


async def upstream_stages(
    inst: local.Instance, callers: list[str]
) -> dict[str, tuple[float, float]]:
    """The lookup's two upstream calls, alone and one at a time (signed as the gateway signs
    them): where the time goes."""
    from hvc.common import calls

    key = local.service_key(inst).encode()
    out: dict[str, tuple[float, float]] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        for stage, service, paths in (
            ("warnings_caller", "warnings", callers[:300]),
            (
                "complaints_open",
                "complaints",
                [f"/v1/customers/C{i:08d}/open-complaints" for i in range(300)],
            ),
        ):
            times = []
            for path in paths:
                signed = calls.sign(key, "GET", path)
                t0 = time.perf_counter()
                await http.get(
                    f"http://127.0.0.1:{inst.http_port(service)}{path}",
                    headers={calls.HEADER: signed},
                )
                times.append(time.perf_counter() - t0)
            out[stage] = _pq(times)
    return out


def _pq(latencies: list[float]) -> tuple[float, float]:
    if len(latencies) < 2:
        return float("nan"), float("nan")
    q = statistics.quantiles(latencies, n=100)
    return q[49] * 1000, q[98] * 1000


def run(
    kafka: str, mongo: str, customers: int, rate: float = 100.0, seconds: float = 30.0
) -> dict[str, float]:
    random.seed(11)
    t0 = time.perf_counter()
    asyncio.run(load(mongo, customers))
    print(f"workbench: loaded {customers:,} customers' views in {time.perf_counter() - t0:.0f}s")
    inst = local.Instance.named("bench")
    asyncio.run(chaos.groups_at_end(kafka, ("tiering", "warnings", "complaints"), databases=DBS))
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka, "MONGO_URI": mongo, "HVC_LOG_LEVEL": "WARNING"}
    try:
        for s in SERVICES:
            extra = chaos.service_env(s, DBS)
            if s == "gateway":
                extra |= {"HVC_GATEWAY_RATE_LIMIT_PER_MINUTE": "100000000"}
            local.start_service(inst, s, env_overrides={**env, **extra})
        for s in SERVICES:
            local.wait_ready(inst, s, timeout_s=180)
        url = f"http://127.0.0.1:{inst.http_port('gateway')}"
        ivr = mint(GatewaySettings(dev_mode=True), role="integration", sub="ivr")
        agent = mint(GatewaySettings(dev_mode=True), role="agent", sub="bench")
        callers = [f"/v1/callers/{number(i)}" for i in random.sample(range(customers), 5_000)]
        settle_heap()
        asyncio.run(at_rate(url, ivr, callers, rate, 5))  # warm up
        low, low_errors = asyncio.run(at_rate(url, ivr, callers, 10, seconds))
        lat, errors = asyncio.run(at_rate(url, ivr, callers, rate, seconds))
        stages = asyncio.run(upstream_stages(inst, callers))
        tails = [
            f"/v1/customers?msisdn={number(i)[-6:]}" for i in random.sample(range(customers), 2_000)
        ]
        search, search_errors = asyncio.run(at_rate(url, agent, tails, rate / 4, seconds))
        sup = mint(GatewaySettings(dev_mode=True), role="supervisor", sub="bench")
        reports = {}
        for name in ("tiers", "warnings", "retention", "sla", "satisfaction"):
            path = f"/v1/reports/monthly/{name}?from=2025-07&to=2026-06"
            reports[name] = asyncio.run(at_rate(url, sup, [path], 5, 10))
    finally:
        for s in SERVICES:
            local.stop(inst, s)
    p50, p99 = _pq(lat)
    l50, l99 = _pq(low)
    s50, s99 = _pq(search)
    print(
        f"workbench: VIP line, {len(low):,} lookups at 10/s: p50 {l50:.1f} ms, p99 {l99:.1f} ms "
        f"({low_errors} errors)"
    )
    for stage, (m50, m99) in stages.items():
        print(
            f"workbench:   stage {stage} alone, one at a time: p50 {m50:.1f} ms, p99 {m99:.1f} ms"
        )
    print(
        f"workbench: VIP line, {len(lat):,} lookups by calling number at {rate:g}/s over "
        f"{customers:,} customers: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({errors} errors) "
        "(target p99 <= 10 ms)"
    )
    print(
        f"workbench: {len(search):,} searches by the last 6 digits at {rate / 4:g}/s: "
        f"p50 {s50:.1f} ms, p99 {s99:.1f} ms ({search_errors} errors)"
    )
    figures: dict[str, float] = {}
    for name, (times, errs) in reports.items():
        r50, r99 = _pq(times)
        print(
            f"workbench: monthly report {name} over 12 months: p50 {r50:.0f} ms, "
            f"p99 {r99:.0f} ms ({errs} errors) (target <= 200 ms)"
        )
        figures |= {f"monthly_{name}_p50_ms": r50, f"monthly_{name}_p99_ms": r99}
    return {
        **figures,
        "vip_line_customers": customers,
        "vip_line_rate_per_s": rate,
        "vip_line_10_per_s_p50_ms": l50,
        "vip_line_10_per_s_p99_ms": l99,
        **{f"vip_stage_{k}_p50_ms": v[0] for k, v in stages.items()},
        **{f"vip_stage_{k}_p99_ms": v[1] for k, v in stages.items()},
        "vip_line_p50_ms": p50,
        "vip_line_p99_ms": p99,
        "vip_line_errors": errors,
        "number_search_p50_ms": s50,
        "number_search_p99_ms": s99,
        "number_search_errors": search_errors,
    }
