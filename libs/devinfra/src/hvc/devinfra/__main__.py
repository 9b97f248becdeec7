"""`python -m hvc.devinfra [--instance run|test] fetch|up|services-up|down|status|heal|...`."""

from __future__ import annotations

import argparse
import logging
import sys

from hvc.devinfra import local


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hvc.devinfra", description=__doc__)
    parser.add_argument("--instance", default="run", help="run (make run) or test (the suite)")
    parser.add_argument(
        "command",
        choices=["fetch", "up", "services-up", "down", "status", "heal", "cursors", "env"],
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s devinfra %(message)s")
    inst = local.Instance.named(args.instance)
    log = logging.getLogger("hvc.devinfra")
    try:
        if args.command == "fetch":
            local.fetch(inst)
        elif args.command == "up":
            local.up(inst)
        elif args.command == "services-up":
            local.services_up(inst)
            _announce(inst)
        elif args.command == "down":
            stopped = local.down(inst)
            log.info("stopped: %s", ", ".join(stopped) if stopped else "nothing was running")
        elif args.command == "status":
            return _status(inst, log)
        elif args.command == "heal":
            log.info("%s", local.heal_store(inst))
        elif args.command == "cursors":
            for name, n in local.open_cursors(inst).items():
                log.info("%6d open cursors on %s", n, name)
        elif args.command == "env":
            sys.stdout.write(
                f"KAFKA_BOOTSTRAP={inst.kafka_bootstrap}\nMONGO_URI={inst.mongo_uri}\n"
            )
    except local.InfraError as exc:
        log.error("%s", exc)
        return 1
    return 0


def _status(inst: local.Instance, log: logging.Logger) -> int:
    """Each process, and whether it answers: the store within 5 s, a service's /readyz with
    the check that fails. Exit 1 when something started does not answer."""
    bad = False
    for name, pid in local.status(inst).items():
        if pid is None:
            log.info("%-11s stopped", name)
            continue
        answer = ""
        if name == "ferretdb":
            ok, why = local.store_answers(inst)
            answer = "answers" if ok else f"NOT ANSWERING ({why}): python -m hvc.devinfra heal"
            bad |= not ok
        elif name in local.SERVICES:
            ok, body = local.readiness(inst, name, timeout_s=5.0)
            answer = "ready" if ok else f"NOT READY {body}"
            bad |= not ok
        log.info("%-11s running (pid %d) %s", name, pid, answer)
    return 1 if bad else 0


def _announce(inst: local.Instance) -> None:
    gw = inst.http_port("gateway")
    lines = [
        "",
        "hvc is running.",
        f"  gateway:        http://127.0.0.1:{gw}   (API docs: http://127.0.0.1:{gw}/docs)",
        f"  kafka:          {inst.kafka_bootstrap}",
        f"  mongodb (wire): {inst.mongo_uri}",
        f"  logs:           {inst.logs}/",
    ]
    for s in local.SERVICES:
        lines.append(f"  {s:<15} http://127.0.0.1:{inst.http_port(s)}/readyz")
    feed = local.Feed.from_env()
    from hvc.simulator.world import Options, World

    show = World(Options(customers=feed.customers, seed=feed.seed)).showcase()
    tier = f"http://127.0.0.1:{inst.http_port('tiering')}"
    gw_url = f"http://127.0.0.1:{gw}"

    def token(role: str, sub: str, manager: str | None = None) -> str:
        from hvc.gateway.auth import mint
        from hvc.gateway.settings import GatewaySettings

        return mint(GatewaySettings(dev_mode=True), role=role, sub=sub, manager_id=manager)

    warn = f"http://127.0.0.1:{inst.http_port('warnings')}"
    comp = f"http://127.0.0.1:{inst.http_port('complaints')}"
    lines += [
        "",
        f"Demo feed: {feed.customers:,} customers, {feed.days} simulated days at "
        f"{feed.days_per_second:g} days/s (log: {inst.logs}/simulator.log).",
        "Try, as the feed plays (the local store digests it at its own pace), through the",
        "gateway with development tokens (python -m hvc.gateway token --help):",
        f"  export T={token('supervisor', 'demo-supervisor')}",
        f'  curl -s -H "Authorization: Bearer $T" {gw_url}/v1/customers/{show["diamond_customer"]}'
        "   # a DIAMOND customer's 360",
        f'  curl -s -H "Authorization: Bearer $T" '
        f"'{gw_url}/v1/complaints?sla_state=BREACHED&limit=1'   # a breached complaint",
        f'  curl -s -H "Authorization: Bearer $T" {gw_url}/v1/reports/warnings',
        f'  curl -s -H "Authorization: Bearer $T" {gw_url}/v1/outages/{show["outage"]}/notices'
        "   # an outage's notices (the first one is announced within the first simulated weeks)",
        f'  curl -s -H "Authorization: Bearer $T" {gw_url}/v1/groups/{show["group"]}'
        "   # a group customer's 360 (集团客户)",
        f'  curl -s -H "Authorization: Bearer $T" '
        f"'{gw_url}/v1/reports/group-indicators?period=2025'   # 建档率, coverage, stability",
        f"  export M={token('manager', 'demo-manager', manager=show['manager'])}",
        f"  curl -s -H \"Authorization: Bearer $M\" '{gw_url}/v1/worklist?limit=5'"
        "   # a manager's worklist",
        f"  curl -s -H \"Authorization: Bearer $M\" '{gw_url}/v1/worklist/callbacks?limit=5'"
        "   # its quarterly callbacks (回访)",
        "The services answer directly too (no token): "
        f"{tier}/v1/customers/{show['diamond_customer']}/tier, {warn}/v1/reports/tasks, "
        f"{comp}/v1/reports/sla",
        "",
        "Stop it with: make down",
        "",
    ]
    sys.stdout.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
