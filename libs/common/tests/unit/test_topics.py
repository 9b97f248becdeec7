"""The topic registry: one table, every contract topic with its dead-letter twin."""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest

from hvc.common import topics

GENERATED = pathlib.Path(__file__).resolve().parents[2] / "src" / "hvc" / "events" / "v1"


def test_every_contract_topic_has_a_dead_letter_topic():
    names = {t.name for t in topics.TOPICS}
    for t in topics.CONTRACT_TOPICS:
        assert t.dlq in names
        assert topics.spec(t.dlq).message is None
    assert len(topics.TOPICS) == 2 * len(topics.CONTRACT_TOPICS)


def test_topic_names_are_unique_and_versioned():
    names = [t.name for t in topics.TOPICS]
    assert len(names) == len(set(names))
    assert all(re.search(r"\.v\d+(\.dlq)?$", n) for n in names)


def test_each_topic_carries_a_distinct_message_type():
    """But a copy: the outages' fan-out carries network.outages.v1's records to every partition."""
    types = [t.message for t in topics.CONTRACT_TOPICS if t.name != topics.OUTAGES_FANOUT]
    assert len(types) == len(set(types))
    assert topics.spec(topics.OUTAGES_FANOUT).message is topics.spec(topics.OUTAGES).message


def test_every_top_level_event_message_of_the_protos_is_a_topic_type():
    """A message with an event_id that no topic carries would be contract drift."""
    carried = {
        t.message.DESCRIPTOR.full_name
        for t in topics.CONTRACT_TOPICS
        if t.message and t.name != topics.CLOCK  # the wall clock's ticks carry no event id
    }
    declared = set()
    for path in GENERATED.glob("*_pb2.py"):
        module = importlib.import_module(f"hvc.events.v1.{path.stem}")
        for desc in module.DESCRIPTOR.message_types_by_name.values():
            if "event_id" in desc.fields_by_name:
                declared.add(desc.full_name)
    assert len(declared) == 17
    assert declared == carried


def test_config_is_what_kafka_expects():
    cfg = topics.spec("billing.usage.v1").config()
    assert cfg["cleanup.policy"] == "delete"
    assert int(cfg["retention.ms"]) == 7 * topics.DAY_MS


def test_unknown_topic_is_a_clear_error():
    with pytest.raises(KeyError, match="not in the registry"):
        topics.spec("nope.v1")
