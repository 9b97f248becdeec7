"""The fault scenarios' report: each scenario adds rows; `make chaos` prints them as a table."""

from __future__ import annotations

from typing import Any

import pytest

ROWS: list[dict[str, Any]] = []
COLUMNS = (
    "scenario",
    "where",
    "offered",
    "expected",
    "found",
    "lost",
    "duplicated",
    "copies",
    "recovery_s",
)


@pytest.fixture(scope="session")
def chaos_report() -> list[dict[str, Any]]:
    return ROWS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    terminalreporter.section("chaos report")
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in ROWS)) for c in COLUMNS}
    terminalreporter.write_line("  ".join(c.ljust(widths[c]) for c in COLUMNS))
    for r in ROWS:
        terminalreporter.write_line("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in COLUMNS))
