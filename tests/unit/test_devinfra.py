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
