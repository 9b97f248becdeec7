"""The complaints' reports over time, from the pipeline's monthly documents on the real store."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from hvc.complaints.reports import MONTHLY_VIEW, by_month
from hvc.complaints.repository import Repository

pytestmark = pytest.mark.integration


async def test_compliance_and_satisfaction_by_month(infra: Any) -> None:
    name = f"it_cmonthly_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_uri)
    db = client[name]
    try:
        docs = [
            (
                "2025-05",
                0,
                {"filed": 3, "filed|tier:GOLD": 3, "breached": 1, "breached|tier:GOLD": 1},
            ),
            (
                "2025-05",
                9,
                {"filed": 1, "filed|tier:VIP": 1, "satisfaction:4": 2, "satisfaction:2": 1},
            ),
            ("2025-07", 3, {"filed": 2, "filed|tier:VIP": 2}),
        ]
        await db[MONTHLY_VIEW].insert_many(
            [{"_id": f"{m} {p:03d}", "month": m, "partition": p, "counts": c} for m, p, c in docs]
        )
        repo = Repository(db)
        sla = (await by_month(repo, "sla", "2025-05", "2025-07"))["items"]
        assert [r["month"] for r in sla] == ["2025-05", "2025-06", "2025-07"]
        may, june, july = sla
        assert (may["filed"], may["breached"], may["compliance"]) == (4, 1, 0.75)
        assert may["by_tier"] == {
            "GOLD": {"filed": 3, "breached": 1, "compliance": 0.6667},
            "VIP": {"filed": 1, "breached": 0, "compliance": 1.0},
        }
        assert june["compliance"] is None and july["compliance"] == 1.0
        [score] = (await by_month(repo, "satisfaction", "2025-05", "2025-05"))["items"]
        assert (score["responses"], score["mean"]) == (3, 3.333)
        assert score["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 2, "5": 0}
    finally:
        await client.drop_database(name)
        await client.close()
