"""Entry point: `python -m hvc.warnings` (or `serve`) serves the warnings stream app and its HTTP
side; `rebuild-views` writes its views again from its input topics (the service stopped)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from hvc.common.logging import configure_logging
from hvc.common.settings import HvcSettings
from hvc.warnings.bootstrap import bootstrap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hvc.warnings")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the stream service and its HTTP side (default)")
    rebuild = sub.add_parser("rebuild-views", help="write the views again from the topics")
    rebuild.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    runtime, api = bootstrap()
    if args.command in (None, "serve"):
        runtime.serve(api)
        return 0
    configure_logging("warnings", HvcSettings().log_level, sys.stderr)
    try:
        stats = asyncio.run(runtime.rebuild_views(args.idle_seconds))
    except RuntimeError as exc:
        logging.getLogger("hvc.warnings").error("rebuild-views refused: %s", exc)
        return 2
    sys.stdout.write(json.dumps(stats, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
