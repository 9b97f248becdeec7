"""What customers and integrations are shown: no internal notes behind a tier, no work orders
or escalation targets of a complaint (issue 20, item 2)."""

from __future__ import annotations

from hvc.gateway.domain import views

EXPLAINED = {
    "customer_id": "C1",
    "at": "2025-06-01T00:00:00+00:00",
    "effective_tier": "DIAMOND",
    "source": "OVERRIDE",
    "ruleset_version": "2025.1",
    "components": [
        {
            "source": "OVERRIDE",
            "tier": "DIAMOND",
            "detail": "retention save, approved by supervisor S7",
            "expires_at": "2025-12-31T00:00:00+00:00",
        },
        {"source": "ANNUAL", "tier": "GOLD", "detail": "score 540"},
    ],
    "annual": {"valid_from": "2025-01-01T00:00:00+00:00", "score": 540},
    "reasons": ["override by S7: retention save"],
}


def test_a_customer_sees_the_tier_source_and_validity_and_no_note():
    shown = views.tier(EXPLAINED)
    assert shown == {
        "customer_id": "C1",
        "at": "2025-06-01T00:00:00+00:00",
        "effective_tier": "DIAMOND",
        "source": "OVERRIDE",
        "ruleset_version": "2025.1",
        "valid_from": None,  # an override's: its expiry is staff's business
    }
    annual = views.tier({**EXPLAINED, "source": "ANNUAL", "effective_tier": "GOLD"})
    assert annual["valid_from"] == "2025-01-01T00:00:00+00:00"
    assert "S7" not in repr(shown) and "retention" not in repr(shown)


def test_history_keeps_what_changed_not_why():
    page = {
        "items": [
            {
                "effective_from": "2025-06-01",
                "old_tier": "GOLD",
                "new_tier": "DIAMOND",
                "source": "OVERRIDE",
                "detail": "approved by S7",
                "score": None,
            }
        ],
        "total": 1,
    }
    shown = views.history(page)
    assert shown["total"] == 1 and "S7" not in repr(shown)
    assert shown["items"][0]["new_tier"] == "DIAMOND"


def test_a_customers_complaint_has_no_work_orders_or_escalation_targets():
    c = {
        "id": "K1",
        "status": "DISPATCHED",
        "workOrders": [{"department": "network-ops"}],
        "sla": {"state": "BREACHED", "escalatedTo": "TEAM_LEAD", "escalationLevel": 1},
    }
    shown = views.complaint(c)
    assert shown == {"id": "K1", "status": "DISPATCHED", "sla": {"state": "BREACHED"}}
    assert c["workOrders"]  # the staff's copy is untouched
