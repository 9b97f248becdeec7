"""Soak: the whole platform with the demo feed, the annual evaluation run again and again by a
second process, report reads and gateway 360s, for a bounded time (HVC_SOAK_SECONDS: 180 in
`make test`, 1,800 in `make soak`); then every annual run completed, no read hung or failed,
every service is ready, the store answers and holds no open cursor, and memory stayed flat."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest

from hvc.devinfra import chaos, local

from .conftest import LINES

pytestmark = pytest.mark.e2e

SECONDS = float(os.environ.get("HVC_SOAK_SECONDS", "180"))
ANNUAL_EVERY = float(os.environ.get("HVC_SOAK_ANNUAL_EVERY_SECONDS", "60"))
CUSTOMERS = int(os.environ.get("HVC_SOAK_CUSTOMERS", "500"))
REPORTS = ("tiers", "warnings", "tasks", "retention", "sla", "high-end")


def _rss_mib(pid: int | None) -> float:
    if pid is None:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Reader(threading.Thread):
    """Reads through the gateway as staff do: one report a second and a few 360s."""

    def __init__(self, gateway: str, token: str, customers: list[str]) -> None:
        super().__init__(daemon=True)
        self.gateway, self.token, self.customers = gateway, token, customers
        self.stop = threading.Event()
        self.statuses: Counter[str] = Counter()
        self.slowest_s = 0.0

    def _get(self, path: str) -> None:
        req = urllib.request.Request(  # noqa: S310 - loopback only
            self.gateway + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310
                r.read()
                self.statuses[str(r.status)] += 1
        except urllib.error.HTTPError as err:
            self.statuses[str(err.code)] += 1
        except OSError as err:
            self.statuses[f"no answer ({type(err).__name__})"] += 1
        self.slowest_s = max(self.slowest_s, time.monotonic() - t0)

    def run(self) -> None:
        i = 0
        while not self.stop.wait(1.0):
            self._get(f"/v1/reports/{REPORTS[i % len(REPORTS)]}")
            for c in self.customers[(i * 3) % len(self.customers) :][:3]:
                self._get(f"/v1/customers/{c}")
            i += 1


@pytest.mark.timeout(SECONDS + 600)
def test_the_platform_soaks_with_annual_runs_and_reads_without_a_hang(infra):
    inst = local.attached("soak", int(os.environ.get("HVC_SOAK_HTTP_PORT", "18380")))
    tag = uuid.uuid4().hex[:8]
    dbs = {s: f"soak_{s}_{tag}" for s in local.SERVICES}
    env = {"KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap, "MONGO_URI": infra.mongo_uri}
    asyncio.run(chaos.groups_at_end(infra.kafka_bootstrap, databases=dbs))
    from hvc.gateway.auth import mint
    from hvc.gateway.settings import GatewaySettings

    token = mint(GatewaySettings(dev_mode=True), role="supervisor", sub="soak")
    customers = [f"SIM{i:07d}" for i in range(0, CUSTOMERS, max(1, CUSTOMERS // 30))]
    reader = Reader(f"http://127.0.0.1:{inst.http_port('gateway')}", token, customers)
    annual_env = {**os.environ, **env, "MONGO_DATABASE": dbs["tiering"]}
    annual_runs: list[tuple[int, float]] = []
    rss: dict[str, list[float]] = {s: [] for s in local.SERVICES}
    try:
        for s in local.SERVICES:
            local.start_service(inst, s, env_overrides={**env, **chaos.service_env(s, dbs)})
        for s in local.SERVICES:
            local.wait_ready(inst, s, timeout_s=120)
        pace = 400 / (SECONDS * 0.8)  # the feed's 400 days over most of the run
        local.start_feed(inst, local.Feed(CUSTOMERS, 400, pace, 7), bootstrap=infra.kafka_bootstrap)
        reader.start()
        t0 = time.monotonic()
        next_annual = t0 + min(30.0, ANNUAL_EVERY / 2)
        while time.monotonic() - t0 < SECONDS:
            if time.monotonic() >= next_annual:
                # A second process against the live store, which is what used to hang it.
                started = time.monotonic()
                proc = subprocess.run(
                    [sys.executable, "-m", "hvc.tiering", "annual", "--year", "2025"],
                    env=annual_env,
                    capture_output=True,
                    timeout=max(ANNUAL_EVERY, 60),
                    check=False,
                )
                annual_runs.append((proc.returncode, time.monotonic() - started))
                assert proc.returncode == 0, proc.stderr.decode()[-2000:]
                next_annual = started + ANNUAL_EVERY
            for s in local.SERVICES:
                rss[s].append(_rss_mib(local.running_pid(inst, s)))
            time.sleep(5)
        reader.stop.set()
        reader.join(timeout=90)
        answers = {s: local.readiness(inst, s, 5.0) for s in local.SERVICES}
        not_ready = {s: body for s, (ok, body) in answers.items() if not ok}
        store = local.Instance.named("test")
        store_ok, why = local.store_answers(store, 5.0) if infra.source == "local" else (True, "")
        left_open: dict[str, int] = {}
        if infra.source == "local":
            deadline = time.monotonic() + 60  # reads still under way finish
            while time.monotonic() < deadline:
                left_open = {
                    k: n
                    for k, n in local.open_cursors(store).items()
                    if k.split(".")[0] in dbs.values()
                }
                if not left_open:
                    break
                time.sleep(2)
    finally:
        reader.stop.set()
        local.stop(inst, "simulator")
        for s in local.SERVICES:
            local.stop(inst, s)
        with contextlib.suppress(Exception):  # cleanup: never hide how the run ended
            asyncio.run(chaos.drop_databases(infra.mongo_uri, list(dbs.values())))

    third = max(1, len(rss["tiering"]) // 3)
    LINES.append(
        f"{SECONDS:.0f} s, {CUSTOMERS} customers' feed, annual every {ANNUAL_EVERY:.0f} s: "
        f"{len(annual_runs)} runs, took " + ", ".join(f"{took:.1f} s" for _, took in annual_runs)
    )
    LINES.append(f"gateway reads: {dict(reader.statuses)}, slowest {reader.slowest_s:.1f} s")
    for s, samples in rss.items():
        LINES.append(
            f"{s:<11} RSS MiB at 1/3 {samples[third - 1]:.0f}, peak {max(samples):.0f}, "
            f"end {samples[-1]:.0f}"
        )
    LINES.append(f"open cursors on the store at the end: {left_open or 'none'}")

    assert len(annual_runs) >= max(1, int(SECONDS // ANNUAL_EVERY) - 1)
    assert all(rc == 0 for rc, _ in annual_runs)
    assert not_ready == {}, not_ready
    assert store_ok, why
    assert left_open == {}
    # 404: a customer the feed has not brought yet; 503: a report refused a slot in time.
    failed = {k: n for k, n in reader.statuses.items() if not k.startswith(("2", "404", "503"))}
    assert failed == {}, f"reads that failed or got no answer: {failed}"
    assert reader.statuses["200"] > 0
    for s, samples in rss.items():
        # Flat: what the services hold grows with the customers the feed brings, not with
        # time or with the reads; the end within 1.5 x (+64 MiB) of a third of the way in.
        assert samples[-1] <= 1.5 * samples[third - 1] + 64, (s, samples)
