"""`GET /v1/customers/{id}` through the gateway: saturation requests/s on one gateway worker,
then p50/p99 latency at half that rate, with the tiering store holding a generated population
(100,000 by default) with its annual evaluation done (results in force, tier decisions), and
all five services running as processes against the same broker and store (the other
services' stores hold what the population's events left: nothing here).

Every request is a staff 360: the gateway verifies the token, checks the role, calls
tiering, benefits, complaints and warnings (twice) concurrently, composes, and audits.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time

import httpx

from hvc.common import calls
from hvc.common.service import settle_heap
from hvc.devinfra import chaos, local
from hvc.gateway.auth import mint
from hvc.gateway.settings import GatewaySettings

SERVICES = ("tiering", "warnings", "benefits", "complaints", "gateway")


async def load(uri: str, n: int) -> None:
    import tiering_annual

    # Fresh stores: a keyed state log would resume an earlier run's offsets.
    await chaos.drop_databases(uri, [f"bench_gw_{s}" for s in SERVICES])
    await tiering_annual.load(uri, n, db="bench_gw_tiering")


async def saturate(url: str, token: str, ids: list[str], seconds: float, workers: int) -> float:
    done = 0
    stop = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:

        async def one() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                try:
                    r = await http.get(f"{url}/v1/customers/{random.choice(ids)}")
                except httpx.HTTPError:
                    continue
                if r.status_code == 200:
                    done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(workers)))
        return done / (time.perf_counter() - t0)


async def at_rate(
    url: str, token: str, ids: list[str], rate: float, seconds: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:

        async def one() -> None:
            nonlocal errors
            t0 = time.perf_counter()
            try:
                r = await http.get(f"{url}/v1/customers/{random.choice(ids)}")
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            if not ok:
                errors += 1
            latencies.append(time.perf_counter() - t0)

        tasks = []
        start = time.perf_counter()
        n = max(1, int(rate * seconds))
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return latencies, errors


async def upstream_stages(inst: local.Instance, ids: list[str]) -> dict[str, float]:
    """Each call the 360 makes, alone and one at a time: where the time goes."""
    stages = {
        "tiering_tier": ("tiering", "/v1/customers/{c}/tier"),
        "benefits": ("benefits", "/v1/customers/{c}/benefits"),
        "complaints": ("complaints", "/v1/complaints?customer_id={c}&limit=50"),
        "warnings_profile": ("warnings", "/v1/customers/{c}/profile"),
        "warnings_tasks": ("warnings", "/v1/customers/{c}/tasks"),
    }
    out = {}
    async with httpx.AsyncClient(timeout=60) as http:
        for name, (service, path) in stages.items():
            times = []
            for _ in range(5):
                target = path.format(c=random.choice(ids))
                url = f"http://127.0.0.1:{inst.http_port(service)}" + target
                # signed as the gateway signs it (the services take no other call)
                key = local.service_key(inst).encode()
                signed = calls.sign(key, "GET", target.split("?")[0])
                t0 = time.perf_counter()
                await http.get(url, headers={calls.HEADER: signed})
                times.append((time.perf_counter() - t0) * 1000)
            out[name] = statistics.median(times)
    return out


def run(kafka: str, mongo: str, customers: int, seconds: float = 20.0) -> dict[str, float]:
    random.seed(7)
    t0 = time.perf_counter()
    asyncio.run(load(mongo, customers))
    print(f"gateway bench: loaded {customers:,} customers in {time.perf_counter() - t0:.0f}s")
    import tiering_annual

    # Annual results in force and tier decisions, as the store holds them in production.
    annual_s, _ = tiering_annual.annual_run(kafka, mongo, db="bench_gw_tiering")
    print(f"gateway bench: annual evaluation of the population in {annual_s:.0f}s")
    inst = local.Instance.named("bench")
    asyncio.run(
        chaos.groups_at_end(kafka, databases={s: f"bench_gw_{s}" for s in SERVICES})
    )  # measure the API, not the digestion of old bench topics
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka, "MONGO_URI": mongo, "HVC_LOG_LEVEL": "WARNING"}
    try:
        for s in SERVICES:
            extra = chaos.service_env(s, {x: f"bench_gw_{x}" for x in SERVICES})
            if s == "gateway":
                extra |= {
                    "HVC_GATEWAY_RATE_LIMIT_PER_MINUTE": "100000000",
                    "HVC_GATEWAY_UPSTREAM_TIMEOUT_S": "60",
                }
            local.start_service(inst, s, env_overrides={**env, **extra})
        for s in SERVICES:
            local.wait_ready(inst, s, timeout_s=180)
        url = f"http://127.0.0.1:{inst.http_port('gateway')}"
        token = mint(GatewaySettings(dev_mode=True), role="agent", sub="bench")
        ids = [f"C{i:08d}" for i in range(customers)]
        settle_heap()  # nor the client's own full collections in the latencies it measures
        asyncio.run(saturate(url, token, ids, 3, 4))  # warm up
        rate = asyncio.run(saturate(url, token, ids, seconds, 8))
        latencies, errors = (
            asyncio.run(at_rate(url, token, ids, rate / 2, seconds)) if rate > 0 else ([], 0)
        )
        stages = asyncio.run(upstream_stages(inst, ids))
    finally:
        for s in SERVICES:
            local.stop(inst, s)
    if len(latencies) >= 2:
        q = statistics.quantiles(latencies, n=100)
        p50, p99 = q[49] * 1000, q[98] * 1000
    else:  # no request completed within the saturation window
        p50 = p99 = float("nan")
    print(
        f"gateway bench: 360 saturates at {rate:,.1f} req/s; at {rate / 2:,.1f} req/s "
        f"p50 {p50:,.0f} ms, p99 {p99:,.0f} ms ({errors} errors) (target p99 <= 50 ms)"
    )
    for name, ms in stages.items():
        print(f"gateway bench:   stage {name}: median {ms:,.0f} ms alone")
    return {
        **{f"gateway_360_stage_{k}_ms": v for k, v in stages.items()},
        "gateway_360_customers": customers,
        "gateway_360_saturation_req_per_s": rate,
        "gateway_360_half_rate_p50_ms": p50,
        "gateway_360_half_rate_p99_ms": p99,
        "gateway_360_half_rate_errors": errors,
    }
