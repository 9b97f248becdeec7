"""All five services start as processes against the real broker and store, answer their
health endpoints, and stop cleanly by pid."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request

import pytest

from hvc.devinfra import chaos, local

pytestmark = pytest.mark.e2e


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback only
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture(scope="module")
def platform(infra, tmp_path_factory):
    # Its own instance directory and ports, pointed at whatever infrastructure the suite has.
    inst = local.attached("e2e", int(os.environ.get("HVC_E2E_HTTP_PORT", "18180")))
    env_overrides = {"KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap, "MONGO_URI": infra.mongo_uri}
    # The services' groups start at the topics' end: this test is about start-up and health,
    # not about digesting whatever history the suite's broker holds.
    asyncio.run(chaos.groups_at_end(infra.kafka_bootstrap))
    try:
        for s in local.SERVICES:
            local.start_service(inst, s, env_overrides=env_overrides)
        for s in local.SERVICES:
            local.wait_ready(inst, s, timeout_s=120)
        yield inst
    finally:
        for s in local.SERVICES:
            local.stop(inst, s)


def test_every_service_is_ready_with_broker_store_and_stream_checks(platform):
    for s in local.SERVICES:
        status, body = _get(f"http://127.0.0.1:{platform.http_port(s)}/readyz")
        assert status == 200, (s, body)
        assert json.loads(body)["checks"] == {"kafka": "ok", "mongodb": "ok", "stream": "ok"}


def test_every_service_answers_liveness_and_metrics(platform):
    for s in local.SERVICES:
        status, body = _get(f"http://127.0.0.1:{platform.http_port(s)}/healthz")
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        status, body = _get(f"http://127.0.0.1:{platform.http_port(s)}/metrics")
        assert status == 200
        assert b"python_info" in body


def test_services_log_json_lines_with_their_name(platform):
    for s in ("tiering", "gateway"):
        lines = (platform.logs / f"{s}.log").read_text().splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert records, f"{s} logged no JSON line"
        assert {r["service"] for r in records} == {s}


def test_stopping_by_pid_leaves_nothing_running(platform):
    for s in local.SERVICES:
        assert local.running_pid(platform, s) is not None
    local.stop(platform, "complaints")
    assert local.running_pid(platform, "complaints") is None
    with pytest.raises(urllib.error.URLError):
        _get(f"http://127.0.0.1:{platform.http_port('complaints')}/healthz")
