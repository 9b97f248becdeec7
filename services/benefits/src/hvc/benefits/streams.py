"""The benefits service's inputs as keyed-state processors (hvc.common.keyed), one per topic.

- crm.customers.v1: birthday and credit-rating restoration hours; its daily close (local
  midnight on the partition's event-time watermark) grants BIRTHDAY_FREE (WaiveCharges and a
  notice) and, the next midnight, sends the notice with the amount waived;
- hvc.tier-decisions.v1: the tier timeline; each decision grants and revokes entitlements;
- billing.accounts.v1: arrears suspension episodes; one RestoreService per episode;
- billing.usage.v1: the waivable usage of customers on their birthday.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from hvc.benefits import events
from hvc.benefits.directory import Directory
from hvc.benefits.domain import rules
from hvc.benefits.domain.catalogue import Catalogue
from hvc.benefits.entitlements import Entitlements
from hvc.benefits.ledger import Ledger
from hvc.common import calendar
from hvc.common.calendar import Midnights
from hvc.common.clock import EventClock
from hvc.common.codec import instant
from hvc.common.keyed import Effect, InOrder, Meta, Processor, State
from hvc.events.v1 import accounts_pb2, common_pb2, customers_pb2, tiering_pb2, usage_pb2

KEEP_BIRTHDAYS = 2
Usage = usage_pb2.UsageRecorded


@dataclass
class _Base:
    ent: Entitlements
    clock: EventClock
    grace_s: int
    midnights: Midnights = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.midnights = Midnights(self.cat.zone)

    @property
    def cat(self) -> Catalogue:
        return self.ent.catalogue

    @property
    def ledger(self) -> Ledger:
        return self.ent.ledger

    @property
    def directory(self) -> Directory:
        return self.ent.directory

    def key(self, event: Any) -> str | None:
        return str(event.customer_id) or None

    async def _birthday(self, cid: str, day: dt.date, at: dt.datetime) -> None:
        tier, _ = self.directory.tier(cid, at)
        if not self.cat.benefits["BIRTHDAY_FREE"].eligible(tier):
            return
        gid = f"{cid}|GRANT|BIRTHDAY_FREE|{day}"
        await self.ledger.record(
            {
                "_id": gid,
                "kind": "GRANT",
                "customer_id": cid,
                "code": "BIRTHDAY_FREE",
                "period": str(day),
                "tier": tier,
                "quantity": 1,
                "at": at,
            },
            events.BENEFITS,
            cid,
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
        wid = f"{cid}|COMMAND|WAIVE|{day}"
        await self.ledger.record(
            {
                "_id": wid,
                "kind": "COMMAND",
                "customer_id": cid,
                "code": "BIRTHDAY_FREE",
                "command": "WaiveCharges",
                "day": str(day),
                "at": at,
            },
            events.COMMANDS,
            cid,
            events.waive(wid, cid, at, day),
        )
        nid = f"{cid}|NOTICE|BIRTHDAY|{day}"
        await self.ledger.record(
            {
                "_id": nid,
                "kind": "NOTICE",
                "customer_id": cid,
                "template": "birthday-free",
                "at": at,
            },
            events.NOTIFICATIONS,
            cid,
            events.notice(nid, cid, at, "birthday-free", {"date": str(day), "tier": tier}),
        )

    async def _restore(self, cid: str, episode: str, at: dt.datetime) -> None:
        tier, _ = self.directory.tier(cid, at)
        hours = rules.restore_hours(self.cat, tier, self.directory.credit_hours.get(cid, 0))
        if hours is None:
            return
        rid = f"{cid}|COMMAND|RESTORE|{episode}"
        await self.ledger.record(
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
            cid,
            events.restore(rid, cid, at, hours),
        )

    def _birthday_again(self, cid: str, *, only_if_seen_differs: bool) -> list[Effect]:
        closed = self.directory.birthday_closed.get(cid)
        if closed is None:
            return []
        day_iso, midnight_s, noticed, seen = closed
        at = dt.datetime.fromtimestamp(midnight_s, dt.UTC)
        if only_if_seen_differs:
            now, _ = self.directory.tier(cid, at)
            if seen is None or now == seen or not self.cat.benefits["BIRTHDAY_FREE"].eligible(now):
                return []
        day = dt.date.fromisoformat(day_iso)
        effects: list[Effect] = [InOrder(cid, partial(self._birthday, cid, day, at))]
        if noticed:
            next_midnight = calendar.midnight(day + dt.timedelta(days=1), self.cat.zone)
            effects.append(InOrder(cid, partial(self._waived_notice, cid, day, next_midnight)))
        return effects

    def _restore_again(self, cid: str, *, only_if_seen_differs: bool) -> list[Effect]:
        episode = self.directory.episodes.get(cid)
        if episode is None:
            return []
        episode_id, at_s, seen = episode
        at = dt.datetime.fromtimestamp(at_s, dt.UTC)
        if only_if_seen_differs:
            now, _ = self.directory.tier(cid, at)
            if now == seen or self.cat.benefits["EMERGENCY_RESTORE"].hours.get(now) is None:
                return []
        return [InOrder(cid, partial(self._restore, cid, episode_id, at))]

    async def _waived_notice(self, cid: str, day: dt.date, at: dt.datetime) -> None:
        granted = f"{cid}|GRANT|BIRTHDAY_FREE|{day}"
        if not any(e["_id"] == granted for e in await self.ledger.of(cid)):
            return  # not eligible that day: nothing was waived
        fen = self.directory.birthday_usage.get((cid, str(day)), 0)
        nid = f"{cid}|NOTICE|BIRTHDAY_WAIVED|{day}"
        await self.ledger.record(
            {
                "_id": nid,
                "kind": "NOTICE",
                "customer_id": cid,
                "template": "birthday-waived",
                "amount_fen": fen,
                "at": at,
            },
            events.NOTIFICATIONS,
            cid,
            events.notice(
                nid, cid, at, "birthday-waived", {"date": str(day), "amount_fen": str(fen)}
            ),
        )

    def close(self, states: Mapping[str, State], before: int, after: int) -> Sequence[Effect]:
        return ()

    def _midnights(self, before: int, after: int) -> list[dt.datetime]:
        return self.midnights.crossed(before - self.grace_s, after - self.grace_s)


@dataclass
class Customers(_Base):
    topic = "crm.customers.v1"
    message = customers_pb2.CustomerEvent
    _touched: set[str] = field(default_factory=set)

    def loaded(self, states: Mapping[str, State]) -> list[Effect]:
        """The partition's birthdays; a close an earlier owner evaluated with another tier
        than the one now known is evaluated again (see Tiers.loaded)."""
        effects: list[Effect] = []
        for cid, s in states.items():
            if s.get("birthday"):
                self.directory.birthdays[cid] = (s["birthday"][0], s["birthday"][1])
            if s.get("bday_closed"):
                day, at, notice = s["bday_closed"][:3]
                self.directory.birthday_closed[cid] = (day, at, notice, _seen(s["bday_closed"]))
                effects += self._birthday_again(cid, only_if_seen_differs=True)
            self.directory.credit_hours[cid] = s.get("credit_hours", 0)
        return effects

    def take_touched(self) -> set[str]:
        touched, self._touched = self._touched, set()
        return touched

    def _closed(self, cid: str, state: State, done: list[Any]) -> None:
        """A birthday's close evaluated (kept: a late tier decision evaluates it again)."""
        state["bday_closed"] = done
        self.directory.birthday_closed[cid] = (done[0], done[1], done[2], done[3])
        self._touched.add(cid)

    def apply(self, event: Any, state: State, meta: Meta) -> Sequence[Effect]:
        self.clock.saw(instant(event.occurred_at))
        if event.WhichOneof("payload") != "customer_upserted":
            return ()
        if state.get("at", 0) > event.occurred_at.seconds:
            return ()  # an older profile arriving late
        u = event.customer_upserted
        cid = event.customer_id
        state["at"] = event.occurred_at.seconds
        state["credit_hours"] = u.credit_restore_hours
        self.directory.credit_hours[cid] = u.credit_restore_hours
        if u.HasField("birthday") and u.birthday.month:
            state["birthday"] = [u.birthday.month, u.birthday.day]
            self.directory.birthdays[cid] = (u.birthday.month, u.birthday.day)
        return ()

    def close(self, states: Mapping[str, State], before: int, after: int) -> Sequence[Effect]:
        effects: list[Effect] = []
        for midnight in self._midnights(before, after):
            today = midnight.astimezone(self.cat.zone).date()
            yesterday = today - dt.timedelta(days=1)
            for cid, s in states.items():
                bd = s.get("birthday")
                if not bd:
                    continue
                # In order per customer: the notice at the end of the day reads the grant made
                # at its start, which may be an effect of the same batch.
                if rules.birthday_in(today.year, bd[0], bd[1]) == today:
                    effects.append(InOrder(cid, partial(self._birthday, cid, today, midnight)))
                    seen, _ = self.directory.tier(cid, midnight)
                    self._closed(cid, s, [str(today), int(midnight.timestamp()), False, seen])
                if rules.birthday_in(yesterday.year, bd[0], bd[1]) == yesterday:
                    notice = partial(self._waived_notice, cid, yesterday, midnight)
                    effects.append(InOrder(cid, notice))
                    done = s.get("bday_closed")
                    if done and done[0] == str(yesterday):
                        self._closed(cid, s, [done[0], done[1], True, _seen(done)])
        return effects


class Tiers(_Base):
    topic = "hvc.tier-decisions.v1"
    message = tiering_pb2.TierDecided

    def loaded(self, states: Mapping[str, State]) -> list[Effect]:
        """The partition's timelines; and what the other streams decided before this process
        held them (a birthday's close or a suspension seen with another tier: after a crash,
        this partition of the decisions may come to the process later than the same
        partition of the profiles or accounts), decided again with the tier now known."""
        effects: list[Effect] = []
        for cid, s in states.items():
            self.directory.timelines[cid] = _timeline(s)
            effects += self._birthday_again(cid, only_if_seen_differs=True)
            effects += self._restore_again(cid, only_if_seen_differs=True)
        return effects

    def apply(self, event: Any, state: State, meta: Meta) -> Sequence[Effect]:
        # Not the clock: a decision's occurred_at is when tiering decided (wall time), not
        # the feed's time.
        cid = event.customer_id
        eff = event.effective_from.seconds
        new = common_pb2.Tier.Name(event.new_tier)
        # {effective_from seconds (as text: a document key): tier}; FerretDB v1 keeps no
        # nested arrays.
        timeline: dict[str, str] = state.setdefault("timeline", {})
        if timeline.get(str(eff)) == new:
            return ()  # redelivered
        old, _ = rules.tier_at(_timeline(state), eff - 1)
        timeline[str(eff)] = new
        for stale in sorted(timeline, key=int)[:-24]:
            del timeline[stale]
        self.directory.timelines[cid] = _timeline(state)
        effects: list[Effect] = [
            partial(
                self.ent.tier_changed, cid, old, new, instant(event.effective_from), event.event_id
            )
        ]
        # A decision effective by a birthday midnight whose close has passed (tiering's lag,
        # against the customers partition): the close is evaluated again with the tier now
        # known, and its end-of-day notice if that passed too. Grants are idempotent by
        # cause, so the outcome is the one the close would have had with the decision in
        # time (an upgrade; a downgrade known late does not take a birthday back). Likewise
        # a suspension's restoration.
        closed = self.directory.birthday_closed.get(cid)
        if closed is not None and eff <= closed[1]:
            effects += self._birthday_again(cid, only_if_seen_differs=False)
        episode = self.directory.episodes.get(cid)
        if episode is not None and eff <= episode[1]:
            effects += self._restore_again(cid, only_if_seen_differs=False)
        return effects


def _seen(closed: list[Any]) -> str | None:
    """The tier a birthday's close saw; None for a close kept before it was recorded."""
    return str(closed[3]) if len(closed) > 3 and closed[3] is not None else None


def _timeline(state: State) -> list[tuple[int, str]]:
    return sorted((int(t), tier) for t, tier in state.get("timeline", {}).items())


class Accounts(_Base):
    topic = "billing.accounts.v1"
    message = accounts_pb2.AccountEvent

    def loaded(self, states: Mapping[str, State]) -> list[Effect]:
        effects: list[Effect] = []
        for cid, s in states.items():
            if s.get("last_episode"):
                episode, at, seen = s["last_episode"]
                self.directory.episodes[cid] = (episode, at, seen)
                effects += self._restore_again(cid, only_if_seen_differs=True)
        return effects

    def apply(self, event: Any, state: State, meta: Meta) -> Sequence[Effect]:
        self.clock.saw(instant(event.occurred_at))
        kind = event.WhichOneof("payload")
        if kind == "account_resumed":
            state.pop("episode", None)
            return ()
        if kind != "account_suspended":
            return ()
        if event.account_suspended.reason != accounts_pb2.AccountSuspended.ARREARS:
            return ()
        if state.get("episode"):
            return ()  # suspended again within an episode: its restoration stands
        cid, at = event.customer_id, instant(event.occurred_at)
        state["episode"] = event.event_id
        # Kept past the episode's end, with the tier seen now: a decision that reaches this
        # process later (Tiers) decides the restoration again if it changes that tier.
        seen, _ = self.directory.tier(cid, at)
        state["last_episode"] = [event.event_id, int(at.timestamp()), seen]
        self.directory.episodes[cid] = (event.event_id, int(at.timestamp()), seen)
        return [partial(self._restore, cid, event.event_id, at)]


class UsageProc(_Base):
    topic = "billing.usage.v1"
    message = Usage

    def loaded(self, states: Mapping[str, State]) -> None:
        for cid, s in states.items():
            for day, fen in s.get("bday", {}).items():
                self.directory.birthday_usage[(cid, day)] = fen

    def apply(self, event: Any, state: State, meta: Meta) -> Sequence[Effect]:
        bd = self.directory.birthdays.get(event.customer_id)
        day = dt.datetime.fromtimestamp(event.occurred_at.seconds, self.cat.zone).date()
        if bd is not None and rules.birthday_in(day.year, bd[0], bd[1]) != day:
            return ()  # the hot path: most usage is on no one's birthday
        # A customer whose profile has not come yet (another topic, so it may come later):
        # the day is kept as if it were the birthday, since it may turn out to be one, and a
        # charge must count the same whichever of the two topics arrives first. The days
        # kept are bounded as birthdays are.
        if not rules.waivable(
            Usage.Kind.Name(event.kind),
            Usage.Roaming.Name(event.roaming),
            event.premium,
            event.forwarded,
        ):
            return ()
        # The last KEEP_BIRTHDAYS birthdays' (or unknown profile's days') waivable charges,
        # each with the ids that made it:
        # a redelivered record counts once however late it comes, and a birthday older than
        # those kept was closed and its waived details sent long ago.
        key, sums = str(day), state.get("bday", {})  # not added yet: may be nothing to keep
        if key not in sums and len(sums) >= KEEP_BIRTHDAYS and key < min(sums):
            return ()
        counted: dict[str, list[str]] = state.setdefault("bday_ids", {})
        if event.event_id in counted.get(key, ()):
            return ()
        state.pop("ids", None)  # the bounded id list that came before bday_ids
        counted.setdefault(key, []).append(event.event_id)
        state["bday"] = sums
        sums[key] = sums.get(key, 0) + event.charged_fen
        for old in sorted(sums)[:-KEEP_BIRTHDAYS]:
            del sums[old]
            counted.pop(old, None)
        self.directory.birthday_usage[(event.customer_id, key)] = sums[key]
        return ()


def processors(ent: Entitlements, clock: EventClock, grace_s: int) -> list[Processor]:
    return [
        Customers(ent, clock, grace_s),
        Tiers(ent, clock, grace_s),
        Accounts(ent, clock, grace_s),
        UsageProc(ent, clock, grace_s),
    ]


INPUTS = [p.topic for p in (Customers, Tiers, Accounts, UsageProc)]
