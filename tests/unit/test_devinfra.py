"""The local bootstrap's pure helpers."""

from __future__ import annotations

import uuid

import pytest

from hvc.devinfra import local


def test_a_cluster_id_never_begins_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xF8 makes the first base64 character "-"; the second draw does not.
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" + bytes(15))])
    monkeypatch.setattr(local.uuid, "uuid4", lambda: next(draws))
    found = local._kafka_cluster_id()
    assert not found.startswith("-")
    assert len(found) == 22
    assert found == "EAAAAAAAAAAAAAAAAAAAAA"


def test_stored_documents_are_compared_beyond_what_arrival_order_decides() -> None:
    from hvc.devinfra.chaos import compare_documents

    ignore = {
        "w.warnings": frozenset({"tier"}),
        "w.monthly": frozenset({"counts.tier:"}),
        "w.callbacks": frozenset({"*"}),
    }
    ref = {
        "w.profiles": {"'C1'": {"_id": "C1", "spend": 5}, "'C2'": {"_id": "C2", "spend": 1}},
        "w.warnings": {"'W1'": {"_id": "W1", "tier": "GOLD", "code": "OVERDUE"}},
        "w.monthly": {"'M'": {"_id": "M", "counts": '{"total":2,"tier:GOLD":2}'}},
        "w.callbacks": {"'B1'": {"_id": "B1"}},
    }
    # the same, a stale profile, a warning with another tier, counts in another order and
    # with other tiers, a callback planned in one run only
    got = {
        "w.profiles": {"'C1'": {"_id": "C1", "spend": 0}, "'C2'": {"_id": "C2", "spend": 1}},
        "w.warnings": {"'W1'": {"_id": "W1", "tier": "NONE", "code": "OVERDUE"}},
        "w.monthly": {"'M'": {"_id": "M", "counts": '{"tier:NONE":2,"total":2}'}},
        "w.callbacks": {},
    }
    rows = {r["collection"]: r for r in compare_documents(ref, got, ignore)}
    assert rows["w.profiles"]["differing"] == ["'C1'"] and rows["w.profiles"]["documents"] == 2
    assert rows["w.warnings"]["differing"] == [] and rows["w.warnings"]["arrival_order"] == 1
    assert rows["w.monthly"]["differing"] == [] and rows["w.monthly"]["arrival_order"] == 1
    assert rows["w.callbacks"]["missing"] == ["'B1'"] and rows["w.callbacks"]["free"]
    # a count that is not a tier's differs
    got["w.monthly"]["'M'"]["counts"] = '{"total":3,"tier:GOLD":2}'
    rows = {r["collection"]: r for r in compare_documents(ref, got, ignore)}
    assert rows["w.monthly"]["differing"] == ["'M'"]
