"""The display names of the platform's codes (tiers, benefits, warning codes, states,
channels, categories), Chinese first: one versioned catalogue (catalogue.json) for the
workbench and whoever shows a code to a person. Codes stay the contract's; a test checks
that every code of the contract and of the shipped rule sets has both names."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("zh", "en")


@cache
def catalogue() -> dict[str, Any]:
    """The catalogue as served: `{"version", "languages", "groups": {group: {code: {"zh",
    "en"}}}}`."""
    raw = json.loads(resources.files("hvc.gateway").joinpath("catalogue.json").read_text("utf-8"))
    groups: dict[str, dict[str, dict[str, str]]] = {}
    for group, names in raw["groups"].items():
        groups[group] = {}
        for code, pair in names.items():
            if len(pair) != len(LANGUAGES) or not all(isinstance(n, str) and n for n in pair):
                raise ValueError(f"catalogue {group}.{code}: one name per language {LANGUAGES}")
            groups[group][code] = dict(zip(LANGUAGES, pair, strict=True))
    return {"version": raw["version"], "languages": list(LANGUAGES), "groups": groups}


def name(group: str, code: str, lang: str = "zh") -> str:
    """A code's display name, or the code itself where the catalogue has none."""
    return str(catalogue()["groups"].get(group, {}).get(code, {}).get(lang, code))
