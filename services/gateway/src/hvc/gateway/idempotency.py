"""Idempotency keys bound to what they were first used for.

A key is the caller's, for one customer: it is stored as a hash of (caller, customer, key),
so two callers (or one caller for two customers) never share one, whatever their length;
with it, a fingerprint of the request's body. A replay with the same body gets the same
derived key (and so the same answer from the service behind); a reused key with another
body is refused with 422 instead of silently answering the first request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from hvc.common.problems import Problem


def derived(caller: str, customer_id: str, key: str) -> str:
    """The key as stored and passed on: 40 hex characters, whatever the caller's length."""
    raw = json.dumps([caller, customer_id, key]).encode()
    return hashlib.sha256(raw).hexdigest()[:40]


def fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


class Keys:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.keys = db["idempotency_keys"]

    async def bind(self, caller: str, customer_id: str, key: str, body: Any) -> str:
        """The derived key; 422 if the key was used before with another body."""
        k, fp = derived(caller, customer_id, key), fingerprint(body)
        try:
            await self.keys.insert_one({"_id": k, "fp": fp, "at": dt.datetime.now(dt.UTC)})
        except DuplicateKeyError:
            first = await self.keys.find_one({"_id": k})
            if first is not None and first.get("fp") != fp:
                raise Problem(
                    422,
                    "Idempotency key reused",
                    "this Idempotency-Key was used before with another request body",
                ) from None
        return k
