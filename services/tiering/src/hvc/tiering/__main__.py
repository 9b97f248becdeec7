"""Entry point: `serve` (default), `annual --year Y [--as-of D]`, `simulate --ruleset F`,
`rebuild-views` (the service stopped: its views written again from its input topics)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Any

from hvc.common.kafka import producer
from hvc.common.logging import configure_logging
from hvc.common.mongo import make_client
from hvc.common.service import rebuild_views_command
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.tiering.decisions import Commands, run_annual
from hvc.tiering.domain.rules import load_rulebook, parse_ruleset
from hvc.tiering.reports import simulate
from hvc.tiering.repository import Repository
from hvc.tiering.settings import TieringSettings


def _date(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


async def _offline(command: str, args: argparse.Namespace) -> dict[str, Any]:
    book = load_rulebook([TieringSettings().ruleset_dir])
    candidate = None
    if command == "simulate":
        candidate = parse_ruleset(
            await asyncio.to_thread(Path(args.ruleset).read_text), args.ruleset
        )
    mongo_settings = MongoSettings()
    client = make_client(mongo_settings, app_name="tiering-cli")
    repo = Repository(client[mongo_settings.database or "hvc_tiering"])
    try:
        as_of = args.as_of or dt.date(args.year + 1, 1, 1)
        if candidate is not None:
            return await simulate(repo, book, candidate, year=args.year, as_of=as_of)
        async with producer(KafkaSettings()) as send:
            stats = await run_annual(Commands(repo, book, send), args.year, as_of)
        return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in vars(stats).items()}
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hvc.tiering")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the stream service and its HTTP side (default)")
    annual = sub.add_parser("annual", help="annual evaluation: score, store, emit changes")
    annual.add_argument("--year", type=int, required=True)
    annual.add_argument("--as-of", type=_date, help="tenure date (default: 1 January after)")
    sim = sub.add_parser("simulate", help="dry run of a candidate rule set; emits nothing")
    sim.add_argument("--ruleset", required=True)
    sim.add_argument("--year", type=int, default=dt.date.today().year - 1)
    sim.add_argument("--as-of", type=_date)
    rebuild = sub.add_parser("rebuild-views", help="write the views again from the topics")
    rebuild.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.command in (None, "serve", "rebuild-views"):
        from hvc.tiering.bootstrap import bootstrap

        runtime, api = bootstrap()
        if args.command == "rebuild-views":
            return rebuild_views_command(runtime, args.idle_seconds)
        runtime.serve(api)
        return 0
    configure_logging("tiering", HvcSettings().log_level, sys.stderr)
    try:
        result = asyncio.run(_offline(args.command, args))
    except (ValueError, OSError) as exc:
        logging.getLogger("hvc.tiering").error("%s failed: %s", args.command, exc)
        return 2
    sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
