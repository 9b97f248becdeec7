"""`python -m hvc.gateway [serve]` serves the API; `python -m hvc.gateway token --role ROLE
--sub NAME [--customer ID] [--manager ID]` mints a development token (dev mode only)."""

from __future__ import annotations

import argparse
import sys

from hvc.gateway.auth import ROLES, mint
from hvc.gateway.settings import GatewaySettings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hvc.gateway")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the API (the default)")
    t = sub.add_parser("token", help="mint a development token (HVC_GATEWAY_DEV_MODE=true)")
    t.add_argument("--role", required=True, choices=ROLES)
    t.add_argument("--sub", required=True)
    t.add_argument("--customer")
    t.add_argument("--manager")
    t.add_argument("--hours", type=float, default=12.0)
    args = p.parse_args(argv)
    if args.command == "token":
        import datetime as dt

        try:
            settings = GatewaySettings()
            token = mint(
                settings,
                role=args.role,
                sub=args.sub,
                customer_id=args.customer,
                manager_id=args.manager,
                ttl=dt.timedelta(hours=args.hours),
            )
            sys.stdout.write(token + "\n")
        except ValueError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 2
        return 0
    from hvc.gateway.bootstrap import bootstrap

    runtime, api = bootstrap()
    runtime.serve(api)
    return 0


if __name__ == "__main__":
    sys.exit(main())
