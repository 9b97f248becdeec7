"""README stays true: its topic table matches the registry and the services' subscriptions."""

from __future__ import annotations

import pathlib
import re

from hvc.common.topics import CONTRACT_TOPICS, DAY_MS

ROOT = pathlib.Path(__file__).resolve().parents[2]
STREAM_SERVICES = ("tiering", "warnings", "benefits", "complaints")  # as in conftest


def _readme_topics() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `([a-z.\-0-9]+)` \| (.+) \|$", text, re.M)
    return {name: [c.strip().strip("`") for c in rest.split(" | ")] for name, rest in rows}


def test_readme_lists_every_contract_topic_with_registry_settings():
    rows = _readme_topics()
    assert set(rows) == {t.name for t in CONTRACT_TOPICS}
    for t in CONTRACT_TOPICS:
        message, key, producers, _consumers, partitions, retention = rows[t.name]
        assert t.message is not None
        assert message == t.message.DESCRIPTOR.name
        assert key == t.key
        assert producers == ", ".join(t.producers)
        assert int(partitions) == t.partitions
        assert retention == f"{t.retention_ms // DAY_MS} d"


def test_readme_consumers_are_the_services_subscriptions(service_inputs):
    rows = _readme_topics()
    for t in CONTRACT_TOPICS:
        subscribed = [s for s in STREAM_SERVICES if t.name in service_inputs(s)]
        listed = [c for c in rows[t.name][3].split(", ") if c in STREAM_SERVICES]
        assert listed == subscribed, t.name


def test_every_subscription_is_a_registry_topic(service_inputs):
    names = {t.name for t in CONTRACT_TOPICS}
    for s in STREAM_SERVICES:
        assert set(service_inputs(s)) <= names
