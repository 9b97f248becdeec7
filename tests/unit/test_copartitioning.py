"""What a service joins is co-partitioned by construction: one partition count for every
customer-keyed topic in the registry, every stream service's inputs on it, and the runtime
refusing to start on a broker where they differ."""

from __future__ import annotations

import pytest

from hvc.common.topics import (
    CONTRACT_TOPICS,
    PARTITIONS,
    NotCoPartitioned,
    copartitioned,
    spec,
)


def test_every_contract_topic_has_the_one_partition_count():
    assert {t.name: t.partitions for t in CONTRACT_TOPICS} == {
        t.name: PARTITIONS for t in CONTRACT_TOPICS
    }


@pytest.mark.parametrize("service", ["tiering", "warnings", "benefits", "complaints"])
def test_a_services_inputs_are_co_partitioned(service, service_inputs):
    counts = {t: spec(t).partitions for t in service_inputs(service)}
    assert len(counts) >= 2  # each of them joins at least two topics
    assert copartitioned(counts) == PARTITIONS


def test_inputs_with_different_counts_are_refused_by_name():
    with pytest.raises(NotCoPartitioned, match=r"billing\.usage\.v1: 24"):
        copartitioned({"crm.customers.v1": 12, "billing.usage.v1": 24})
    assert copartitioned({"a": 6, "b": 6}) == 6
