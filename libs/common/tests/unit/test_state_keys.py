"""Keyed state reaches the store with field names every store takes, and comes back exact."""

from __future__ import annotations

from hvc.common.keyed import _escape_keys, _unescape_keys


def test_keys_with_dots_percent_and_dollar_round_trip_and_are_safe_in_the_store():
    state = {
        "pays": {"v1-billing.accounts.v1-payment": [1, 2], "plain": 3},
        "$where": {"a%2Eb": "x", "c%25d": "y", "%24e": "z", "mid$dle": "w"},
        "list": [{"k.k": 1}, 2, "s.s"],
    }
    stored = _escape_keys(state)

    def names(v):
        if isinstance(v, dict):
            for k, x in v.items():
                yield k
                yield from names(x)
        elif isinstance(v, list):
            for x in v:
                yield from names(x)

    assert all("." not in k and not k.startswith("$") for k in names(stored))
    assert stored["list"][2] == "s.s"  # values are left alone
    assert _unescape_keys(stored) == state
