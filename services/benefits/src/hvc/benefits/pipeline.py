"""The benefits service on hvc.common.streams (issue 19): one pipeline over its co-partitioned
inputs, each customer's profile, tier timeline, suspension episode, birthday usage and claims
in one state, next to the partition that feeds it.

- crm.customers.v1: birthday and credit-rating restoration hours. A customer with a birthday
  has a timer at its next local midnight plus the grace for late events (event time): the
  close grants BIRTHDAY_FREE (WaiveCharges and a notice) if the tier in force then carries it,
  and the next midnight's timer sends the notice with the amount waived;
- hvc.tier-decisions.v1: the tier timeline; each decision grants what the new tier carries and
  revokes what the old one left unclaimed; the timeline is the `tiers` view the HTTP side
  reads (claims, balances);
- billing.accounts.v1: arrears suspension episodes; one RestoreService per episode;
- billing.usage.v1: the waivable usage of customers on their birthday;
- hvc.benefits.v1: the claims the HTTP side made (BenefitClaimed; the rest of the topic is this
  pipeline's own output, passed over): counted for revocations, and a timer at each claim's
  end of validity sends BenefitExpired.

Every effect is an output and a `ledger` view entry whose `_id` names its cause, decided once:
the state remembers what it sent (a birthday's grant, an episode's restoration, recent grants
and revocations), so a redelivered record sends nothing new, and a replay after a crash sends
the same ids again (consumers de-duplicate by event id).

A tier decision is published when tiering decided (wall time), and may reach this pipeline
after a birthday midnight or a suspension it is in force by: those are then decided again
with the tier now known (a late upgrade grants; a late downgrade takes nothing back).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hvc.benefits import events
from hvc.benefits.domain import rules
from hvc.benefits.domain.catalogue import Catalogue
from hvc.benefits.entitlements import period_of, stamp
from hvc.common.calendar import midnight
from hvc.common.clock import EventClock
from hvc.common.codec import instant
from hvc.common.streams import Context, Record, State
from hvc.events.v1 import accounts_pb2, common_pb2, usage_pb2

CUSTOMERS, TIERS, ACCOUNTS, USAGE = (
    "crm.customers.v1",
    "hvc.tier-decisions.v1",
    "billing.accounts.v1",
    "billing.usage.v1",
)
INPUTS = [CUSTOMERS, TIERS, ACCOUNTS, USAGE, events.BENEFITS]
BIRTHDAY, WAIVED, EXPIRE = "birthday", "waived", "expire"
LEDGER, TIER_VIEW = "ledger", "tiers"
KEEP_BIRTHDAYS = 2  # birthday usage sums kept
KEEP_TIMELINE = 24  # tier decisions kept
KEEP_SENT = 64  # grant and revocation ids kept against a redelivered or repeated decision
KEEP_PERIODS = 16  # (benefit, period) claim counts kept
Usage = usage_pb2.UsageRecorded


class BenefitsHandler:
    def __init__(self, catalogue: Catalogue, grace_s: int, clock: EventClock | None = None):
        self.cat = catalogue
        self.grace_s = grace_s
        # The HTTP side's clock in event-time mode (a replayed feed): the latest event time
        # this process saw. Wall mode ignores it.
        self.clock = clock or EventClock()

    # -- the pipeline's handler --------------------------------------------------------------

    def event_time_ms(self, topic: str, message: Any, record: Record) -> int:
        if topic in (TIERS, events.BENEFITS):
            # Not the feed's time: a decision's or a claim's occurred_at is when tiering or
            # the HTTP side acted (wall time); they move no clock.
            return 0
        ms = int(message.occurred_at.ToMilliseconds())
        self.clock.saw(instant(message.occurred_at))
        return ms

    def handle(self, ctx: Context, topic: str, message: Any) -> None:
        cid = str(message.customer_id)
        if not cid:
            return
        st = ctx.state(cid)
        if topic == CUSTOMERS:
            self._profile(ctx, cid, st, message)
        elif topic == TIERS:
            self._decided(ctx, cid, st, message)
        elif topic == ACCOUNTS:
            self._account(ctx, cid, st, message)
        elif topic == USAGE:
            self._usage(st, message)
        elif message.WhichOneof("payload") == "benefit_claimed":
            self._claimed(ctx, cid, st, message)

    def fire(self, ctx: Context, key: str, what: str, arg: Any) -> None:
        st = ctx.state(key)
        if what == BIRTHDAY:
            self._birthday_close(ctx, key, st, str(arg))
        elif what == WAIVED:
            closed = st.get("bday_closed")
            if closed and closed[0] == arg:
                closed[2] = True
                self._waived_notice(ctx, key, st)
        elif what == EXPIRE:
            self._expire(ctx, key, st, arg)

    # -- profiles and birthdays ----------------------------------------------------------------

    def _profile(self, ctx: Context, cid: str, st: State, event: Any) -> None:
        if event.WhichOneof("payload") != "customer_upserted":
            return
        if st.get("at", 0) > event.occurred_at.seconds:
            return  # an older profile arriving late
        u = event.customer_upserted
        st["at"] = event.occurred_at.seconds
        st["credit_hours"] = u.credit_restore_hours
        if u.HasField("birthday") and u.birthday.month:
            st["birthday"] = [u.birthday.month, u.birthday.day]
            self._schedule_birthday(ctx, cid, st)

    def _schedule_birthday(self, ctx: Context, cid: str, st: State) -> None:
        """A timer at the next birthday's local midnight not yet closed, plus the grace; one
        pending at a time (`bday_next`): a timer whose day is no longer the next birthday (the
        profile changed it) does nothing when it fires."""
        m, d = st["birthday"]
        not_before = ctx.now_ms // 1000 - self.grace_s  # midnights up to here are closed
        year = dt.datetime.fromtimestamp(not_before, self.cat.zone).year
        for y in (year, year + 1):
            day = rules.birthday_in(y, m, d)
            at = int(midnight(day, self.cat.zone).timestamp())
            if at > not_before:
                break
        if st.get("bday_next") == str(day):
            return
        st["bday_next"] = str(day)
        ctx.schedule((at + self.grace_s) * 1000, cid, BIRTHDAY, str(day))

    def _birthday_close(self, ctx: Context, cid: str, st: State, day_iso: str) -> None:
        if st.get("bday_next") != day_iso:
            return  # the profile moved the birthday since this timer was set
        st.pop("bday_next")
        day = dt.date.fromisoformat(day_iso)
        at = midnight(day, self.cat.zone)
        # Kept: a decision in force by this midnight that comes later decides it again.
        st["bday_closed"] = [day_iso, int(at.timestamp()), False]
        self._birthday(ctx, cid, st)
        next_midnight = midnight(day + dt.timedelta(days=1), self.cat.zone)
        ctx.schedule((int(next_midnight.timestamp()) + self.grace_s) * 1000, cid, WAIVED, day_iso)
        self._schedule_birthday(ctx, cid, st)

    def _birthday(self, ctx: Context, cid: str, st: State) -> None:
        """The closed birthday's grant, command and notice, if the tier in force at its
        midnight carries it and they were not sent."""
        day_iso, midnight_s, _ = st["bday_closed"]
        at = dt.datetime.fromtimestamp(midnight_s, dt.UTC)
        tier = self._tier(st, midnight_s)
        if st.get("granted") == day_iso or not self.cat.benefits["BIRTHDAY_FREE"].eligible(tier):
            return
        st["granted"] = day_iso
        day = dt.date.fromisoformat(day_iso)
        gid = f"{cid}|GRANT|BIRTHDAY_FREE|{day_iso}"
        self._record(
            ctx,
            {
                "_id": gid,
                "kind": "GRANT",
                "customer_id": cid,
                "code": "BIRTHDAY_FREE",
                "period": day_iso,
                "tier": tier,
                "quantity": 1,
                "at": at,
            },
            events.BENEFITS,
            events.benefit(
                "benefit_granted",
                gid,
                cid,
                at,
                grant_id=gid,
                code="BIRTHDAY_FREE",
                tier=tier,
                quantity=1,
                valid_from=at,
                valid_to=at + dt.timedelta(days=1),
            ),
        )
        wid = f"{cid}|COMMAND|WAIVE|{day_iso}"
        self._record(
            ctx,
            {
                "_id": wid,
                "kind": "COMMAND",
                "customer_id": cid,
                "code": "BIRTHDAY_FREE",
                "command": "WaiveCharges",
                "day": day_iso,
                "at": at,
            },
            events.COMMANDS,
            events.waive(wid, cid, at, day),
        )
        nid = f"{cid}|NOTICE|BIRTHDAY|{day_iso}"
        self._record(
            ctx,
            {
                "_id": nid,
                "kind": "NOTICE",
                "customer_id": cid,
                "template": "birthday-free",
                "at": at,
            },
            events.NOTIFICATIONS,
            events.notice(nid, cid, at, "birthday-free", {"date": day_iso, "tier": tier}),
        )
        if st["bday_closed"][2]:  # its day has ended too: the amount waived
            self._waived_notice(ctx, cid, st)

    def _waived_notice(self, ctx: Context, cid: str, st: State) -> None:
        day_iso = st["bday_closed"][0]
        if st.get("granted") != day_iso or st.get("waived") == day_iso:
            return  # not eligible that day (nothing was waived), or sent
        st["waived"] = day_iso
        day = dt.date.fromisoformat(day_iso)
        at = midnight(day + dt.timedelta(days=1), self.cat.zone)
        fen = int(st.get("bday", {}).get(day_iso, 0))
        nid = f"{cid}|NOTICE|BIRTHDAY_WAIVED|{day_iso}"
        self._record(
            ctx,
            {
                "_id": nid,
                "kind": "NOTICE",
                "customer_id": cid,
                "template": "birthday-waived",
                "amount_fen": fen,
                "at": at,
            },
            events.NOTIFICATIONS,
            events.notice(
                nid, cid, at, "birthday-waived", {"date": day_iso, "amount_fen": str(fen)}
            ),
        )

    def _usage(self, st: State, event: Any) -> None:
        bd = st.get("birthday")
        day = dt.datetime.fromtimestamp(event.occurred_at.seconds, self.cat.zone).date()
        if bd is not None and rules.birthday_in(day.year, bd[0], bd[1]) != day:
            return  # the hot path: most usage is on no one's birthday
        # A customer whose profile has not come yet: the day is kept as if it were the
        # birthday, since it may turn out to be one; the days kept are bounded as birthdays.
        if not rules.waivable(
            Usage.Kind.Name(event.kind),
            Usage.Roaming.Name(event.roaming),
            event.premium,
            event.forwarded,
        ):
            return
        key, sums = str(day), st.get("bday", {})
        if key not in sums and len(sums) >= KEEP_BIRTHDAYS and key < min(sums):
            return  # older than the birthdays kept: closed, its details sent long ago
        counted: dict[str, list[str]] = st.setdefault("bday_ids", {})
        if event.event_id in counted.get(key, ()):
            return  # redelivered
        counted.setdefault(key, []).append(event.event_id)
        st["bday"] = sums
        sums[key] = sums.get(key, 0) + event.charged_fen
        for old in sorted(sums)[:-KEEP_BIRTHDAYS]:
            del sums[old]
            counted.pop(old, None)

    # -- tiers ---------------------------------------------------------------------------------

    @staticmethod
    def _timeline(st: State) -> list[tuple[int, str]]:
        return sorted((int(t), tier) for t, tier in st.get("timeline", {}).items())

    def _tier(self, st: State, at_s: int) -> str:
        return rules.tier_at(self._timeline(st), at_s)[0]

    def _decided(self, ctx: Context, cid: str, st: State, event: Any) -> None:
        eff = event.effective_from.seconds
        new = common_pb2.Tier.Name(event.new_tier)
        # {effective_from seconds (as text: a document key): tier}; FerretDB v1 keeps no
        # nested arrays, and the view is this map as it is.
        timeline: dict[str, str] = st.setdefault("timeline", {})
        if timeline.get(str(eff)) == new:
            return  # redelivered
        first = not timeline  # the customer's first: its view document is new
        old = self._tier(st, eff - 1)
        timeline[str(eff)] = new
        for stale in sorted(timeline, key=int)[:-KEEP_TIMELINE]:
            del timeline[stale]
        ctx.view(TIER_VIEW, cid, {"timeline": dict(timeline)}, "fresh" if first else "replace")
        self._tier_changed(ctx, cid, st, old, new, instant(event.effective_from), event.event_id)
        # In force by a birthday midnight or a suspension already decided: decided again.
        closed = st.get("bday_closed")
        if closed is not None and eff <= closed[1]:
            self._birthday(ctx, cid, st)
        episode = st.get("last_episode")
        if episode is not None and eff <= episode[1]:
            self._restore(ctx, cid, st, episode[0], episode[1])

    def _tier_changed(
        self,
        ctx: Context,
        cid: str,
        st: State,
        old: str,
        new: str,
        effective: dt.datetime,
        cause: str,
    ) -> None:
        """Grant what the new tier carries for its period; revoke the unclaimed rest of what
        the old tier carried and the new one does not. Claimed grants stay valid."""
        effective = effective.replace(microsecond=effective.microsecond // 1000 * 1000)
        since = int(effective.timestamp())
        for code, b in sorted(self.cat.benefits.items()):
            if b.kind not in ("yearly_quota", "per_tier_period"):
                continue
            if b.eligible(new):
                qty = b.quota.get(new, 0) if b.kind == "yearly_quota" else b.quantity[new]
                period = period_of(self.cat, code, new, since, effective)
                gid = f"{cid}|GRANT|{code}|{period}|{new}"
                if not self._first(st, gid):
                    continue
                self._record(
                    ctx,
                    {
                        "_id": gid,
                        "kind": "GRANT",
                        "customer_id": cid,
                        "code": code,
                        "period": period,
                        "tier": new,
                        "quantity": qty,
                        "at": effective,
                        "cause": cause,
                    },
                    events.BENEFITS,
                    events.benefit(
                        "benefit_granted",
                        gid,
                        cid,
                        effective,
                        grant_id=gid,
                        code=code,
                        tier=new,
                        quantity=qty,
                        valid_from=effective,
                    ),
                )
            elif b.eligible(old):
                earlier = [t for t, _ in self._timeline(st) if t < since]
                period = period_of(self.cat, code, old, max(earlier, default=0), effective)
                limit = b.quota.get(old, 0) if b.kind == "yearly_quota" else 1
                used = len(st.get("claims", {}).get(f"{code}|{period}", ()))
                left = max(0, limit - used)
                gid = f"{cid}|GRANT|{code}|{period}|{old}"
                rid = f"{cid}|REVOKE|{code}|{period}|{old}|{stamp(since)}"
                if not self._first(st, rid):
                    continue
                self._record(
                    ctx,
                    {
                        "_id": rid,
                        "kind": "REVOKE",
                        "customer_id": cid,
                        "code": code,
                        "period": period,
                        "tier": old,
                        "quantity": left,
                        "grant_id": gid,
                        "at": effective,
                        "cause": cause,
                    },
                    events.BENEFITS,
                    events.benefit(
                        "benefit_revoked",
                        rid,
                        cid,
                        effective,
                        grant_id=gid,
                        code=code,
                        tier=old,
                        quantity=left,
                    ),
                )

    @staticmethod
    def _first(st: State, entry_id: str) -> bool:
        """Whether `entry_id` (a grant or revocation) was not sent yet; it is from now on."""
        sent: list[str] = st.setdefault("sent", [])
        if entry_id in sent:
            return False
        sent.append(entry_id)
        del sent[:-KEEP_SENT]
        return True

    # -- suspensions ---------------------------------------------------------------------------

    def _account(self, ctx: Context, cid: str, st: State, event: Any) -> None:
        kind = event.WhichOneof("payload")
        if kind == "account_resumed":
            st.pop("episode", None)
            return
        if kind != "account_suspended":
            return
        if event.account_suspended.reason != accounts_pb2.AccountSuspended.ARREARS:
            return
        if st.get("episode"):
            return  # suspended again within an episode: its restoration stands
        st["episode"] = event.event_id
        # Kept past the episode's end: a decision in force by then that comes later decides
        # the restoration again.
        st["last_episode"] = [event.event_id, event.occurred_at.seconds]
        self._restore(ctx, cid, st, event.event_id, event.occurred_at.seconds)

    def _restore(self, ctx: Context, cid: str, st: State, episode: str, at_s: int) -> None:
        tier = self._tier(st, at_s)
        hours = rules.restore_hours(self.cat, tier, int(st.get("credit_hours", 0)))
        if hours is None or st.get("restored") == episode:
            return
        st["restored"] = episode
        at = dt.datetime.fromtimestamp(at_s, dt.UTC)
        rid = f"{cid}|COMMAND|RESTORE|{episode}"
        self._record(
            ctx,
            {
                "_id": rid,
                "kind": "COMMAND",
                "customer_id": cid,
                "code": "EMERGENCY_RESTORE",
                "command": "RestoreService",
                "hours": hours,
                "tier": tier,
                "episode": episode,
                "at": at,
            },
            events.COMMANDS,
            events.restore(rid, cid, at, hours),
        )

    # -- claims --------------------------------------------------------------------------------

    def _claimed(self, ctx: Context, cid: str, st: State, event: Any) -> None:
        c = event.benefit_claimed
        slot = c.grant_id
        parts = slot.split("|")
        if len(parts) == 5:  # "<customer>|CLAIM|<code>|<period>|<n>": a quota's slot
            claims: dict[str, list[str]] = st.setdefault("claims", {})
            counted = claims.setdefault(f"{parts[2]}|{parts[3]}", [])
            if slot not in counted:
                counted.append(slot)
            for stale in list(claims)[:-KEEP_PERIODS]:
                del claims[stale]
        if c.HasField("valid_to"):
            expiring: dict[str, Any] = st.setdefault("expiring", {})
            if slot in expiring or slot in st.get("expired", ()):
                return  # redelivered
            valid_to_ms = int(c.valid_to.ToMilliseconds())
            expiring[slot] = [c.code, common_pb2.Tier.Name(c.tier), valid_to_ms]
            ctx.schedule(valid_to_ms, cid, EXPIRE, slot)

    def _expire(self, ctx: Context, cid: str, st: State, slot: str) -> None:
        entry = st.get("expiring", {}).pop(slot, None)
        if entry is None:
            return
        code, tier, valid_to_ms = entry
        expired: list[str] = st.setdefault("expired", [])
        expired.append(slot)
        del expired[:-KEEP_SENT]
        valid_to = dt.datetime.fromtimestamp(valid_to_ms / 1000, dt.UTC)
        eid = f"{cid}|EXPIRE|{slot.split('|', 2)[2]}"
        self._record(
            ctx,
            {
                "_id": eid,
                "kind": "EXPIRE",
                "customer_id": cid,
                "code": code,
                "claim_id": slot,
                "at": valid_to,
            },
            events.BENEFITS,
            events.benefit(
                "benefit_expired",
                eid,
                cid,
                valid_to,
                grant_id=slot,
                code=code,
                tier=tier,
                quantity=1,
                valid_to=valid_to,
            ),
        )

    # -- effects -------------------------------------------------------------------------------

    @staticmethod
    def _record(ctx: Context, entry: dict[str, Any], topic: str, message: bytes) -> None:
        """A ledger entry (written once: its `_id` names its cause) and its message."""
        ctx.view(LEDGER, entry["_id"], entry, "insert")
        ctx.emit(topic, entry["customer_id"], message)
