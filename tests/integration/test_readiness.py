"""Readiness names the dependency that is down, and recovers when it is back."""

from __future__ import annotations

import pytest

from hvc.common.service import ServiceRuntime
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings

pytestmark = pytest.mark.integration


async def test_readiness_fails_on_an_unreachable_store_and_names_it(infra, tmp_path):
    runtime = ServiceRuntime(
        "readiness-test",
        hvc=HvcSettings(data_dir=str(tmp_path)),
        kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
        mongo=MongoSettings(uri="mongodb://127.0.0.1:1/", server_selection_timeout_ms=300),
    )
    try:
        ok, checks = await runtime.readiness.run()
    finally:
        await runtime.mongo.close()
    assert not ok
    assert checks["kafka"] == "ok"
    assert checks["mongodb"] != "ok"
    assert checks["stream"] == "RuntimeError: stream app not started"


async def test_readiness_fails_on_an_unreachable_broker(infra, tmp_path):
    runtime = ServiceRuntime(
        "readiness-test",
        hvc=HvcSettings(data_dir=str(tmp_path)),
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
        mongo=MongoSettings(uri=infra.mongo_uri),
    )
    try:
        ok, checks = await runtime.readiness.run()
    finally:
        await runtime.mongo.close()
    assert not ok
    assert checks["mongodb"] == "ok"
    assert checks["kafka"] != "ok"
