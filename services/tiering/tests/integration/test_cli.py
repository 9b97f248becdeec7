"""`python -m hvc.tiering annual|simulate` as an operator runs them, against the real stack."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid

import pytest
from pymongo import AsyncMongoClient

from hvc.tiering.domain.model import Bill, CustomerFacts, Profile
from hvc.tiering.domain.rules import DEFAULT_RULESETS
from hvc.tiering.repository import customer_doc

pytestmark = pytest.mark.integration
T = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def cli(infra, db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "MONGO_URI": infra.mongo_uri,
        "MONGO_DATABASE": db,
    }
    return subprocess.run(
        [sys.executable, "-m", "hvc.tiering", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_annual_and_simulate_commands(infra, tmp_path):
    db = f"it_cli_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri)
    f = CustomerFacts("K1", profiles=[Profile("u", T, dt.date(2010, 1, 1), None, False)])
    f.bills["B"] = Bill("B", "2025-05", 400_000, 370_000, T)
    await client[db]["customers"].insert_one(customer_doc(f))
    try:
        run = cli(infra, db, "annual", "--year", "2025", "--as-of", "2026-01-15")
        assert run.returncode == 0, run.stderr
        stats = json.loads(run.stdout)
        assert (stats["customers"], stats["decisions"], stats["by_tier"]) == (1, 1, {"DIAMOND": 1})
        again = json.loads(cli(infra, db, "annual", "--year", "2025").stdout)
        assert again["decisions"] == 0 and again["changed_results"] == 0

        rules = json.loads((DEFAULT_RULESETS / "2025.1.json").read_text())
        rules |= {
            "version": "trial",
            "effective_from": "2026-01-01",
            "thresholds": {
                "DIAMOND": 5000,
                "PLATINUM": 2000,
                "GOLD": 1000,
                "SILVER": 500,
                "VIP": 200,
            },
        }
        path = tmp_path / "trial.json"
        path.write_text(json.dumps(rules))
        sim = cli(infra, db, "simulate", "--ruleset", str(path), "--year", "2025")
        assert sim.returncode == 0, sim.stderr
        assert json.loads(sim.stdout)["matrix"]["DIAMOND"]["PLATINUM"] == 1
        history = await client[db]["tier_history"].count_documents({})
        assert history == 1  # the dry run emitted and stored nothing

        path.write_text(json.dumps(rules | {"thresholds": {"DIAMOND": 1}}))
        bad = cli(infra, db, "simulate", "--ruleset", str(path))
        assert bad.returncode == 2
        assert "invalid rule set" in bad.stdout + bad.stderr
    finally:
        await client.drop_database(db)
        await client.close()
