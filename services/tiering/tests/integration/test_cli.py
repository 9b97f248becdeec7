"""`python -m hvc.tiering annual|simulate` as an operator runs them, against the real stack."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from hvc.common.codec import codec_for
from hvc.common.service import stream_group
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.devinfra.pytest_plugin import start_group_at_end
from hvc.events.v1 import accounts_pb2, common_pb2, customers_pb2
from hvc.tiering.bootstrap import bootstrap
from hvc.tiering.domain.rules import DEFAULT_RULESETS
from hvc.tiering.pipeline import INPUTS

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
    """The annual run beside the running service (its pipeline decides what the run sends)."""
    tag = uuid.uuid4().hex[:8]
    db, name = f"it_cli_{tag}", f"tiering-cli-{tag}"
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri)
    cid = f"K{tag}"
    await start_group_at_end(infra.kafka_bootstrap, stream_group(name, db), INPUTS)
    runtime, _ = bootstrap(
        name=name,
        hvc=HvcSettings(data_dir=str(tmp_path)),
        kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
        mongo=MongoSettings(uri=infra.mongo_uri, database=db),
    )
    await runtime.start()
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        u = customers_pb2.CustomerEvent(event_id=f"u-{tag}", customer_id=cid)
        u.occurred_at.FromDatetime(T)
        u.customer_upserted.name = "n"
        u.customer_upserted.joined_on.CopyFrom(common_pb2.Date(year=2010, month=1, day=1))
        b = accounts_pb2.AccountEvent(event_id=f"b-{tag}", customer_id=cid)
        b.occurred_at.FromDatetime(T)
        bi = b.bill_issued
        bi.bill_id, bi.period, bi.amount_fen, bi.countable_fen = "B", "2025-05", 400_000, 370_000
        for topic, m in (("crm.customers.v1", u), ("billing.accounts.v1", b)):
            await producer.send_and_wait(topic, codec_for(topic).serialize(m), key=cid.encode())
        for _ in range(150):  # the pipeline keeps the facts; its views have them
            doc = await client[db]["customers"].find_one({"_id": cid})
            if doc and await client[db]["ledger"].find_one({"_id": f"{cid} b B"}):
                break
            await asyncio.sleep(0.2)
        run = cli(infra, db, "annual", "--year", "2025", "--as-of", "2026-01-15")
        assert run.returncode == 0, run.stderr
        stats = json.loads(run.stdout)
        assert (stats["customers"], stats["decisions"], stats["by_tier"]) == (1, 1, {"DIAMOND": 1})
        for _ in range(150):  # the pipeline decides; its history view has it
            if await client[db]["tier_history"].count_documents({}):
                break
            await asyncio.sleep(0.2)
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
        await producer.stop()
        await runtime.stop()
        await client.drop_database(db)
        await client.close()
