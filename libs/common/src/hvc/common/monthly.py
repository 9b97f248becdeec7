"""Month-by-month counts, pre-aggregated by the stream that sees the facts (DOMAIN §4's and
the workbench's reports over time): each partition keeps its months' counts in its own state
(`ctx.kv`, with the engine's changelog) and writes each month's counts as one view document,
`_id` "<YYYY-MM> <partition>", whole (replaced, and written once per checkpoint: the view
writer keeps the last write of an `_id`). A record handled again after a restore finds the
counts its checkpoint left, so the documents count each fact once; a report sums a range of
months over the partitions with one `_id`-range read, whatever the population.

Counts are flat: `{"<dimension>:<value>": n}` (a dimension may join values with `|`), stored
as one JSON string (`counts`): a store decodes a document in proportion to its fields, and on
FerretDB a month of 140 counts as fields read at ~3 ms a document (0.9 s for a year of 24
partitions), as one string at a small part of that (bench/workbench.py)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from hvc.common.streams import Context

# A month, YYYY-MM: the query parameters of the reports over time take this pattern.
PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
MONTH = re.compile(PATTERN)


def month_of(instant: dt.datetime, zone: ZoneInfo) -> str:
    """The operator's calendar month of an instant."""
    local = instant.astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}"


def add(ctx: Context, collection: str, month: str, counts: Mapping[str, int]) -> None:
    """Add `counts` to the partition's `month` and write the month's document. A count may
    be taken back (a negative one: a fact counted under another value since, such as a
    warning's tier); a count back to 0 is left out, as one never made."""
    key = f"monthly {collection} {month}"
    current: dict[str, int] = dict(ctx.kv.get(key) or {})
    for k, n in counts.items():
        current[k] = current.get(k, 0) + n
        if not current[k]:
            del current[k]
    ctx.kv.set(key, current)
    raw = json.dumps(current, separators=(",", ":"))
    doc = {"month": month, "partition": ctx.partition, "counts": raw}
    ctx.view(collection, f"{month} {ctx.partition:03d}", doc)


def counts_of(doc: Mapping[str, Any]) -> dict[str, int]:
    """A monthly document's counts (a JSON string; a mapping is taken as it is)."""
    raw = doc.get("counts") or {}
    return dict(json.loads(raw) if isinstance(raw, str) else raw)


def months(first: str, last: str) -> list[str]:
    """Every month from `first` to `last`, both included."""
    if not (MONTH.match(first) and MONTH.match(last)) or first > last:
        raise ValueError("a range of months is YYYY-MM to YYYY-MM, in order")
    y, m = int(first[:4]), int(first[5:])
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        if len(out) > 120:
            raise ValueError("a range is at most 10 years")
    return out


async def read(db: Any, collection: str, first: str, last: str) -> dict[str, dict[str, int]]:
    """Each month of the range with its counts summed over the partitions (months without a
    document have empty counts)."""
    out: dict[str, dict[str, int]] = {m: {} for m in months(first, last)}
    query = {"_id": {"$gte": first, "$lt": last + "~"}}  # "~" sorts after " <partition>"
    async for doc in db[collection].find(query):
        if str(doc.get("month")) in out:
            _add_into(out, doc)
    return out


async def read_all(db: Any, collection: str, last: str) -> dict[str, dict[str, int]]:
    """Every month up to `last` that has counts, summed over the partitions (for running
    sums: a distribution is the flows in and out of every month before)."""
    if not MONTH.match(last):
        raise ValueError("a month is YYYY-MM")
    out: dict[str, dict[str, int]] = {}
    async for doc in db[collection].find({"_id": {"$lt": last + "~"}}):
        _add_into(out, doc)
    return dict(sorted(out.items()))


def _add_into(out: dict[str, dict[str, int]], doc: Mapping[str, Any]) -> None:
    """A partition's month document added to the month's sums."""
    sums = out.setdefault(str(doc.get("month")), {})
    for k, n in counts_of(doc).items():
        sums[k] = sums.get(k, 0) + int(n)


def split(counts: Mapping[str, int], dimension: str) -> dict[str, int]:
    """The counts of one dimension: `{"code:X": 3, "tier:GOLD": 1}`, "code" -> `{"X": 3}`."""
    prefix = dimension + ":"
    return {k[len(prefix) :]: n for k, n in counts.items() if k.startswith(prefix)}
