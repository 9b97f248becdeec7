"""README stays true: its topic table matches the registry and the services' subscriptions."""

from __future__ import annotations

import importlib
import importlib.util
import pathlib
import re

from hvc.common.topics import CONTRACT_TOPICS, DAY_MS

ROOT = pathlib.Path(__file__).resolve().parents[2]
STREAM_SERVICES = ("tiering", "warnings", "benefits", "complaints")


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


def inputs(service: str) -> list[str]:
    """A service's subscriptions: its faust agents' or its keyed streams' INPUTS."""
    for module in ("agents", "streams"):
        if importlib.util.find_spec(f"hvc.{service}.{module}") is not None:
            return list(importlib.import_module(f"hvc.{service}.{module}").INPUTS)
    raise AssertionError(f"{service} declares no INPUTS")


def test_readme_consumers_are_the_services_subscriptions():
    rows = _readme_topics()
    for t in CONTRACT_TOPICS:
        subscribed = [s for s in STREAM_SERVICES if t.name in inputs(s)]
        listed = [c for c in rows[t.name][3].split(", ") if c in STREAM_SERVICES]
        assert listed == subscribed, t.name


def test_every_subscription_is_a_registry_topic():
    names = {t.name for t in CONTRACT_TOPICS}
    for s in STREAM_SERVICES:
        assert set(inputs(s)) <= names
