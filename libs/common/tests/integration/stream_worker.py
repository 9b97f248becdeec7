"""A process of a toy service on hvc.common.streams, for test_streams.py: a customer's spend
from usage, joined with the manager from profiles (two co-partitioned topics), a reminder a day
after the first usage (a timer), a view per customer and dead letters.

`python stream_worker.py '<json spec>'`; runs until SIGTERM (or is killed)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from pymongo import AsyncMongoClient

from hvc.common.codec import InvalidEvent
from hvc.common.streams import Context, EngineSettings, MongoViews, Pipeline, Record, StreamApp
from hvc.events.v1 import customers_pb2, notifications_pb2, usage_pb2

DAY_MS = 86_400_000


class Spender:
    def __init__(self, profiles: str, out: str) -> None:
        self.profiles, self.out = profiles, out

    def event_time_ms(self, topic: str, message: Any, record: Record) -> int:
        return int(message.occurred_at.ToMilliseconds())

    def handle(self, ctx: Context, topic: str, m: Any) -> None:
        st = ctx.state(m.customer_id)
        seen: list[str] = st.setdefault("ids", [])
        if m.event_id in seen:  # delivered again: counted once
            return
        if topic == self.profiles:
            st["m"] = m.customer_upserted.manager_id
        else:
            if m.charged_fen == 13:
                raise InvalidEvent("charged_fen 13 is refused by this rule")
            st["fen"] = st.get("fen", 0) + m.charged_fen
            if "m" not in st:
                st["without"] = st.get("without", 0) + 1
            if "due" not in st:
                st["due"] = ctx.now_ms + DAY_MS
                ctx.schedule(st["due"], m.customer_id, "remind", m.event_id)
        seen.append(m.event_id)
        self._view(ctx, m.customer_id, st)

    def fire(self, ctx: Context, key: str, what: str, arg: Any) -> None:
        st = ctx.state(key)
        st["reminded"] = arg
        ctx.emit(
            self.out,
            key,
            notifications_pb2.NotificationRequested(
                notification_id=f"remind-{key}", customer_id=key, template=str(arg)
            ),
        )
        self._view(ctx, key, st)

    @staticmethod
    def _view(ctx: Context, key: str, st: dict[str, Any]) -> None:
        doc = {"fen": st.get("fen", 0), "m": st.get("m"), "without": st.get("without", 0)}
        ctx.view("spend", key, {**doc, "reminded": st.get("reminded"), "events": len(st["ids"])})


def main() -> None:
    # The engine's own account of assignments, recoveries and pauses goes to the log the
    # test shows when it fails (a partition that stopped being read, say).
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("quixstreams").setLevel(logging.INFO)
    spec = json.loads(sys.argv[1])
    t = spec["topics"]
    pipeline = Pipeline(
        "toy",
        {t["profiles"]: customers_pb2.CustomerEvent, t["usage"]: usage_pb2.UsageRecorded},
        Spender(t["profiles"], t["out"]),
    )
    views = MongoViews(AsyncMongoClient(spec["mongo"]), spec["database"])
    app = StreamApp(
        pipeline,
        EngineSettings(
            bootstrap_servers=spec["bootstrap"],
            consumer_group=spec["group"],
            state_dir=spec["state_dir"],
            commit_interval_s=0.5,
        ),
        views,
    )
    try:
        app.run()
    finally:
        views.close()


if __name__ == "__main__":
    main()
