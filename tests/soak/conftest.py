"""The soak's figures: `make soak` (and `make test`, its 3-minute version) prints them."""

from __future__ import annotations

import pytest

LINES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if LINES:
        terminalreporter.section("soak")
        for line in LINES:
            terminalreporter.write_line(line)
