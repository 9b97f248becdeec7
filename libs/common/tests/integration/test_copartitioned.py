"""A service refuses inputs that the broker has with different partition counts."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hvc.common.service import ServiceRuntime
from hvc.common.settings import KafkaSettings, MongoSettings
from hvc.common.topics import (
    InputsMissing,
    NotCoPartitioned,
    broker_partitions,
    wait_for_topics,
)

pytestmark = pytest.mark.integration


async def _topics(bootstrap: str, **counts: int) -> dict[str, str]:
    run = uuid.uuid4().hex[:8]
    names = {k: f"test.copart.{run}.{k}" for k in counts}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(names[k], n, 1) for k, n in counts.items()])
    finally:
        await admin.close()
    # a created topic reaches the metadata a moment later (a new broker: seconds)
    shown = await wait_for_topics(bootstrap, names.values(), wait_s=30)
    assert len(shown) == len(names), "topics never showed"
    return names


async def test_the_runtime_names_inputs_the_broker_has_with_other_counts(infra):
    names = await _topics(infra.kafka_bootstrap, profiles=12, usage=6, calls=12)
    counts = await broker_partitions(infra.kafka_bootstrap, [*names.values(), "absent.topic"])
    assert counts == {names["profiles"]: 12, names["usage"]: 6, names["calls"]: 12}

    runtime = ServiceRuntime(
        "copart",
        kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
        mongo=MongoSettings(uri=infra.mongo_uri),
    )
    try:
        runtime.inputs = [names["profiles"], names["calls"]]
        assert await runtime.check_copartitioned() == 12
        runtime.inputs.append(names["usage"])
        with pytest.raises(NotCoPartitioned, match=rf"{names['usage']}: 6"):
            await runtime.check_copartitioned()
        # an input the broker does not have is refused, not left to the engine to create
        absent = f"{names['calls']}.absent"
        runtime.inputs = [names["profiles"], absent]
        with pytest.raises(InputsMissing, match=rf"missing on the broker: {absent} "):
            await runtime.check_copartitioned(wait_s=1.0)
        counts = await broker_partitions(infra.kafka_bootstrap, [absent])
        assert counts == {}  # and nothing created it meanwhile
    finally:
        await runtime.mongo.close()
