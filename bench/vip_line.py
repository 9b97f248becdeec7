"""The VIP line's lookup by calling number (优先接入, DOMAIN §6) through the gateway, and the
workbench's search by the last digits of a number, at 100,000 customers (default).

The read side as the streams leave it: the warnings service's `profiles` view and its
`lookup` view (a number key and a name key per customer) and the complaints service's
`open_complaints` view (a tenth of the customers with an open complaint), inserted in bulk as
the engine's view writer inserts them. Then warnings, complaints and the gateway run as
processes, and a client offers the lookups at a fixed rate (open loop: a slow answer does not
slow the offer), each a call of an `integration` client (the IVR), audited like any other.

Every lookup is: token, role, the warnings service (the `lookup` range by `_id`, the profile
by `_id`, the retention manager), then the complaints service (one document by `_id`), then
the audit entry; p50/p99 are printed against the target (p99 <= 10 ms).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from typing import Any

import httpx

from hvc.common.service import settle_heap
from hvc.devinfra import chaos, local
from hvc.gateway.auth import mint
from hvc.gateway.settings import GatewaySettings
from hvc.warnings.directory import LOOKUP, lookup_keys

SERVICES = ("warnings", "complaints", "gateway")
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
                keys += [{"_id": k, "customer_id": cid} for k in lookup_keys(cid, p)]
                if i % 10 == 0:
                    item = {"id": f"K{i}", "status": "RECEIVED", "sla_state": "ON_TRACK"}
                    open_.append({"_id": cid, "customer_id": cid, "open": [item]})
            await warnings["profiles"].insert_many(profiles, ordered=False)
            await warnings[LOOKUP].insert_many(keys, ordered=False)
            if open_:
                await complaints["open_complaints"].insert_many(open_, ordered=False)
    finally:
        await client.close()


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
    print(f"vip line: loaded {customers:,} customers' views in {time.perf_counter() - t0:.0f}s")
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
        lat, errors = asyncio.run(at_rate(url, ivr, callers, rate, seconds))
        tails = [
            f"/v1/customers?msisdn={number(i)[-6:]}" for i in random.sample(range(customers), 2_000)
        ]
        search, search_errors = asyncio.run(at_rate(url, agent, tails, rate / 4, seconds))
    finally:
        for s in SERVICES:
            local.stop(inst, s)
    p50, p99 = _pq(lat)
    s50, s99 = _pq(search)
    print(
        f"vip line: {len(lat):,} lookups by calling number at {rate:g}/s over {customers:,} "
        f"customers: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({errors} errors) (target p99 <= 10 ms)"
    )
    print(
        f"vip line: {len(search):,} searches by the last 6 digits at {rate / 4:g}/s: "
        f"p50 {s50:.1f} ms, p99 {s99:.1f} ms ({search_errors} errors)"
    )
    return {
        "vip_line_customers": customers,
        "vip_line_rate_per_s": rate,
        "vip_line_p50_ms": p50,
        "vip_line_p99_ms": p99,
        "vip_line_errors": errors,
        "number_search_p50_ms": s50,
        "number_search_p99_ms": s99,
        "number_search_errors": search_errors,
    }
