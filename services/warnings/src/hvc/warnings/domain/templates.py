"""Customer message templates (Chinese first), as versioned data: what a notice says, rendered
from its parameters, for the contact history and for the SMS/app gateway (`text` param)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

PLACEHOLDER = re.compile(r"\{(\w+)\}")


class Templates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    description: str = ""
    templates: dict[str, dict[str, str]]  # code -> language -> text
    words: dict[str, dict[str, str]] = Field(default_factory=dict)  # group -> code -> zh
    words_en: dict[str, dict[str, str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _chinese_first(self) -> Templates:
        for code, texts in self.templates.items():
            if not texts.get("zh"):
                raise ValueError(f"template {code} has no Chinese text")
        return self

    def render(self, code: str, params: Mapping[str, str], zone: ZoneInfo, lang: str = "zh") -> str:
        """The template's text with its parameters: instants (ISO 8601) as local
        `M月D日 HH:MM` (`MM-DD HH:MM` in English), dates as `M月D日`, `kind`, `benefit` and
        `services` (comma-separated codes) worded; a parameter it lacks stays as its placeholder."""
        texts = self.templates[code]
        text = texts.get(lang) or texts["zh"]
        words = self.words_en if lang == "en" else self.words

        def value(m: re.Match[str]) -> str:
            name = m.group(1)
            raw = params.get(name)
            if raw is None or raw == "":
                return "—" if name in ("ends_at", "ended_at") else m.group(0)
            if name.endswith("_at"):
                t = dt.datetime.fromisoformat(raw).astimezone(zone)
                return f"{t:%m-%d %H:%M}" if lang == "en" else f"{t.month}月{t.day}日 {t:%H:%M}"
            if name.endswith("_on"):
                d = dt.date.fromisoformat(raw)
                return d.isoformat() if lang == "en" else f"{d.month}月{d.day}日"
            if name in ("kind", "benefit"):
                return words.get(name, {}).get(raw, raw)
            if name == "services":
                sep = ", " if lang == "en" else "、"
                names = words.get("services", {})
                return sep.join(names.get(s, s) for s in raw.split(",") if s)
            return raw

        return PLACEHOLDER.sub(value, text)


def load_templates(path: Path) -> Templates:
    try:
        return Templates.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"invalid message templates {path}: {exc}") from exc


DEFAULT_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "2026.1.json"
