"""`python -m hvc.simulator`: play a synthetic operator into Kafka (deterministic per seed)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys

from hvc.simulator.feed import run
from hvc.simulator.world import Options, World


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hvc.simulator", description=__doc__)
    p.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2025, 1, 1))
    p.add_argument("--days", type=int, default=400, help="simulated days to play")
    p.add_argument(
        "--days-per-second",
        type=float,
        default=4.0,
        help="simulated days per real second (0: as fast as possible)",
    )
    p.add_argument(
        "--events-per-second",
        type=float,
        default=0.0,
        help="a fixed offered load instead of a pace in days (benchmarks)",
    )
    p.add_argument(
        "--seconds", type=float, default=0.0, help="with --events-per-second: stop after this"
    )
    p.add_argument("--usage-per-day", type=float, default=0.3)
    p.add_argument("--calls-per-day", type=float, default=0.2)
    p.add_argument("--showcase", action="store_true", help="print ids worth looking at and exit")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s simulator %(message)s"
    )
    world = World(
        Options(
            args.customers, args.seed, args.start, args.days, args.usage_per_day, args.calls_per_day
        )
    )
    if args.showcase:
        sys.stdout.write(json.dumps(world.showcase()) + "\n")
        return 0
    progress = asyncio.run(
        run(
            world,
            args.bootstrap,
            days_per_second=args.days_per_second,
            events_per_second=args.events_per_second,
            seconds=args.seconds,
        )
    )
    sys.stdout.write(json.dumps({"events": progress.events, "last_day": str(progress.day)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
