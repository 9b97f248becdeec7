"""The display-name catalogue covers every code a person is shown: the contract's enums and
the shipped rule sets' codes, each with a Chinese and an English name."""

from __future__ import annotations

import json
import re
from importlib import resources

from hvc.complaints.domain.policy import CATEGORIES, CHANNELS, DEFAULT_POLICIES, load_policies
from hvc.events.v1 import common_pb2, complaints_pb2, warnings_pb2
from hvc.gateway.catalogue import catalogue, name
from hvc.warnings.domain.callbacks import OUTCOMES as CALLBACK_OUTCOMES

POLICIES = load_policies(DEFAULT_POLICIES)


def _codes(enum) -> set[str]:
    return {n for n in enum.keys() if not n.endswith("_UNSPECIFIED")}


def test_every_code_of_the_contract_and_the_rule_sets_has_both_names():
    groups = catalogue()["groups"]
    benefits = json.loads(
        resources.files("hvc.benefits").joinpath("catalogue/2025.1.json").read_text()
    )["benefits"]
    expected = {
        "tier": _codes(common_pb2.Tier),
        "warning_code": _codes(warnings_pb2.WarningRaised.Code),
        "warning_category": _codes(warnings_pb2.WarningRaised.Category),
        "callback_outcome": set(CALLBACK_OUTCOMES),
        "callback_reason": {"TIER", "KEY_PERSON"},
        "evidence": _codes(warnings_pb2.WarningRaised.Code),
        "task_outcome": _codes(warnings_pb2.TaskClosed.Outcome),
        "complaint_status": _codes(complaints_pb2.ComplaintUpdated.Status),
        "sla_state": _codes(complaints_pb2.ComplaintUpdated.SlaState),
        "complaint_channel": set(CHANNELS),
        "complaint_category": set(CATEGORIES),
        "benefit": set(benefits),
        "escalation": set(POLICIES[0].escalation_levels),
    }
    for group, codes in expected.items():
        assert codes, group
        assert codes <= set(groups[group]), (group, codes - set(groups[group]))
        for code in codes:
            names = groups[group][code]
            assert set(names) == {"zh", "en"} and all(names.values()), (group, code)
            assert any("\u4e00" <= ch <= "\u9fff" for ch in names["zh"]) or code == "VIP", code


def test_names_are_looked_up_by_language_and_an_unknown_code_shows_itself():
    assert name("tier", "DIAMOND") == "钻石卡"
    assert name("tier", "DIAMOND", "en") == "Diamond"
    assert name("tier", "COPPER") == "COPPER"
    assert name("nope", "X") == "X"


def test_evidence_templates_format_with_known_formats_and_groups():
    groups = catalogue()["groups"]
    templates = {**groups["evidence"], **groups["tier_reason"]}
    for code, names in templates.items():
        for text in names.values():
            for _name, fmt in re.findall(r"\{(\w+)(?::(\w+))?\}", text):
                assert fmt in ("", "yuan", "mb", "date") or fmt in groups, (code, fmt)
            assert text.count("{") == len(re.findall(r"\{\w+(?::\w+)?\}", text)), text
