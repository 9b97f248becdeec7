import asyncio

from hvc.common import tracing


def test_a_bound_effect_publishes_with_its_cause_and_nothing_leaks_outside_it():
    seen: list[list[tuple[str, bytes]]] = []

    async def effect() -> None:
        seen.append(tracing.headers())

    cause = tracing.Cause("billing.usage.v1", 3, 41, 1_700_000_000_123)

    async def main() -> None:
        # Run as the keyed streams do: later, concurrently, in tasks of their own.
        await asyncio.gather(tracing.bind(effect, cause)(), effect())

    asyncio.run(main())
    assert seen[0] == [
        ("hvc-cause", b"billing.usage.v1/3/41"),
        ("hvc-cause-ts", b"1700000000123"),
    ]
    assert seen[1] == []
    assert tracing.headers() == []


def test_caused_by_none_hides_an_outer_cause_and_restores_it():
    outer = tracing.Cause("crm.customers.v1", 0, 7, 5)
    with tracing.caused_by(outer):
        with tracing.caused_by(None):
            assert tracing.headers() == []
        assert tracing.parse(tracing.headers()) == ("crm.customers.v1/0/7", 5)
    assert tracing.parse(tracing.headers()) is None


def test_a_timers_header_names_its_kind_and_due_time_and_a_records_output_has_none():
    header = tracing.due("monthly/close", 1_735_660_800_000)
    assert header == ("hvc-due", b"monthly/close/1735660800000")
    assert tracing.parse_due([header, ("hvc-cause", b"x/0/1")]) == (
        "monthly/close",
        1_735_660_800_000,
    )
    assert tracing.parse_due([("hvc-cause", b"x/0/1"), ("hvc-cause-ts", b"5")]) is None
    assert tracing.parse_due(None) is None
