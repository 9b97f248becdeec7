"""Annual evaluation over a generated population vs a plain cursor read of the same data.

The run goes through the real CLI (`python -m hvc.tiering annual`) in its own process, so its
peak RSS is its own; the target is at least half the plain read rate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import resource
import subprocess
import sys
import time
from typing import Any

from pymongo import AsyncMongoClient

from hvc.tiering.domain.model import Bill, CustomerFacts, PlanVersion, Profile
from hvc.tiering.repository import LEDGER, customer_doc, ledger_docs

DB = "bench_tiering"
UTC = dt.UTC


def population(n: int, seed: int = 2025) -> Any:
    rng = random.Random(seed)
    fees = [0, 0, 0, 12_800, 18_800, 28_800, 38_800, 58_800]
    t = dt.datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(n):
        cid = f"C{i:08d}"
        joined = dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(0, 9300))
        f = CustomerFacts(cid, profiles=[Profile(f"u{i}", t, joined, None, False)])
        fee = rng.choice(fees)
        if fee:
            f.plans.append(PlanVersion(f"p{i}", f"P{fee}", fee, True, t, None, t))
        monthly = int(rng.lognormvariate(9.3, 0.9))  # long tail around 100 yuan
        for m in range(1, 13):
            amount = max(0, int(monthly * rng.uniform(0.7, 1.3)))
            f.bills[f"B{i}-{m}"] = Bill(f"B{i}-{m}", f"2025-{m:02d}", amount, amount * 9 // 10, t)
        yield customer_doc(f), ledger_docs(f)


async def load(uri: str, n: int, db: str = DB) -> float:
    """A fresh database `db` holding the population's customer and ledger documents (as the
    pipeline writes its views); customers/s."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    await client.drop_database(db)
    customers, ledger = client[db]["customers"], client[db][LEDGER]
    t0 = time.perf_counter()
    batch: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for doc, more in population(n):
        batch.append(doc)
        entries.extend(more)
        if len(batch) == 2000:
            await customers.insert_many(batch, ordered=False)
            await ledger.insert_many(entries, ordered=False)
            batch, entries = [], []
    if batch:
        await customers.insert_many(batch, ordered=False)
    if entries:
        await ledger.insert_many(entries, ordered=False)
    elapsed = time.perf_counter() - t0
    await client.close()
    return n / elapsed


async def plain_read(uri: str) -> tuple[int, float]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    t0 = time.perf_counter()
    n = 0
    async for _ in client[DB]["customers"].find({}, batch_size=2000):
        n += 1
    async for _ in client[DB][LEDGER].find({}, batch_size=2000):
        pass  # the same data: its bills too
    elapsed = time.perf_counter() - t0
    await client.close()
    return n, n / elapsed


def annual_run(kafka: str, uri: str, db: str = DB) -> tuple[float, float]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "MONGO_URI": uri,
        "MONGO_DATABASE": db,
        "HVC_LOG_LEVEL": "WARNING",
    }
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "hvc.tiering", "annual", "--year", "2025", "--as-of", "2026-01-15"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return elapsed, rss


def run(kafka: str, uri: str, customers: int, annual_runs: int = 2) -> dict[str, float]:
    load_rate = asyncio.run(load(uri, customers))
    n, read_rate = asyncio.run(plain_read(uri))
    first_s, rss = annual_run(kafka, uri)
    # The re-run (which must emit nothing) reads the results and decisions too.
    second_s, rss2 = annual_run(kafka, uri) if annual_runs > 1 else (float("nan"), rss)
    return {
        "tiering_customers": n,
        "tiering_load_docs_per_s": load_rate,
        "tiering_plain_read_per_s": read_rate,
        "tiering_annual_first_run_per_s": n / first_s,
        "tiering_annual_rerun_per_s": n / second_s,
        "tiering_annual_vs_read": (n / first_s) / read_rate,
        "tiering_annual_peak_rss_mib": max(rss, rss2),
    }
