"""Schemathesis against the gateway's published OpenAPI schema, served for real (uvicorn on a
local port, its audit store the real one; the services behind it are the stand-ins of
conftest.py): zero server errors and zero responses that break the schema, for every route,
with a supervisor's token (who may call everything) and without one."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.gateway.auth import mint
from hvc.gateway.bootstrap import bootstrap
from hvc.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(infra, tmp_path_factory, stand_ins, serve_in_thread) -> Iterator[tuple[str, str]]:
    db = f"it_gw_schema_{uuid.uuid4().hex[:8]}"
    gw = GatewaySettings(dev_mode=True, rate_limit_per_minute=1_000_000, **stand_ins)
    _, api = bootstrap(
        name="gateway-schema",
        hvc=HvcSettings(data_dir=str(tmp_path_factory.mktemp("gw"))),
        kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
        mongo=MongoSettings(uri=infra.mongo_uri, database=db),
        settings=gw,
    )
    with serve_in_thread(api) as base:
        yield base, mint(gw, role="supervisor", sub="schemathesis")
    client: MongoClient = MongoClient(infra.mongo_uri)
    client.drop_database(db)
    client.close()


CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"


@pytest.mark.parametrize("with_token", [True, False], ids=["supervisor", "no-token"])
def test_no_server_errors_and_no_schema_violations(served, with_token, tmp_path):
    """`schemathesis run` (its own CLI: the pytest plugin of this release predates pytest 9)."""
    base, token = served
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{base}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        "12",
        "--seed",
        "20261123",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    if with_token:
        cmd += ["--header", f"Authorization: Bearer {token}"]
    # In a temporary folder: the CLI keeps a cache in its working directory.
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    tail = run.stdout[-4000:]
    assert run.returncode == 0, tail
    assert " passed" in tail or "No issues found" in tail, tail
