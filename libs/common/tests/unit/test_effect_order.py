"""Effects of one batch run concurrently, except those made in order for the same key."""

from __future__ import annotations

import asyncio

from hvc.common.keyed import InOrder, KeyedStream


def _stream() -> KeyedStream:
    async def dead_letter(*_):
        raise AssertionError("no dead letters here")

    return KeyedStream(
        "t",
        "g",
        [],
        None,  # type: ignore[arg-type]  # the log is not touched by a drain
        consumer_kwargs={},
        bootstrap_servers="unused:9092",
        dead_letter=dead_letter,
    )


async def test_effects_of_one_key_run_in_the_order_made_and_others_alongside():
    seen: list[str] = []

    def effect(name: str, delay: float):
        async def run():
            seen.append(f"start {name}")
            await asyncio.sleep(delay)
            seen.append(f"end {name}")

        return run

    s = _stream()
    s._pending = [
        InOrder("c1", effect("grant", 0.05)),
        effect("free", 0.01),
        InOrder("c2", effect("other", 0.0)),
        InOrder("c1", effect("notice", 0.0)),
    ]
    await s._drain()
    # The notice starts only after the grant of the same customer has ended ...
    assert seen.index("start notice") > seen.index("end grant")
    # ... while the effects of other keys, and unkeyed ones, did not wait for it.
    assert seen.index("end free") < seen.index("end grant")
    assert seen.index("end other") < seen.index("end grant")
    assert sorted(seen) == sorted(
        f"{w} {n}" for n in ("grant", "free", "other", "notice") for w in ("start", "end")
    )
    assert s._pending == []
