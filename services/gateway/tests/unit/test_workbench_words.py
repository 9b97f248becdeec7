"""The workbench's own words: every word the application asks for exists in Chinese and in
English (the codes' names are the catalogue's, tested with it)."""

from __future__ import annotations

import re
from importlib import resources

WEB = resources.files("hvc.gateway").joinpath("web")


def _words(block: str) -> set[str]:
    return set(re.findall(r"\b(\w+): \"", block))


def test_both_languages_have_every_word_the_application_uses():
    text = WEB.joinpath("i18n.js").read_text("utf-8")
    zh_block, en_block = text.split("\n  en: {", 1)
    zh, en = _words(zh_block.split("zh: {", 1)[1]), _words(en_block)
    assert zh == en, zh ^ en
    app = WEB.joinpath("app.js").read_text("utf-8")
    used = set(re.findall(r"\bt\(\"(\w+)\"", app))
    assert used, "the application asks for no word?"
    assert used <= zh, used - zh


def test_the_page_loads_nothing_from_elsewhere():
    page = WEB.joinpath("index.html").read_text("utf-8")
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    for name in ("app.js", "i18n.js", "app.css"):
        assert "http://" not in WEB.joinpath(name).read_text("utf-8")
        assert "https://" not in WEB.joinpath(name).read_text("utf-8")
