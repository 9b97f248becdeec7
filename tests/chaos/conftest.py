"""The fault scenarios' report: each scenario adds rows; `make chaos` prints them as a table."""

from __future__ import annotations

from typing import Any

import pytest

ROWS: list[dict[str, Any]] = []
# Rows with a "collection": the stored documents against the fault-free run's (a table of
# their own, after the effects').
VIEW_COLUMNS = (
    "scenario",
    "collection",
    "documents",
    "missing",
    "extra",
    "differing",
    "arrival_order",
)
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
    effects = [r for r in ROWS if "collection" not in r]
    stored = [r for r in ROWS if "collection" in r]
    for title, rows, columns in (
        ("chaos report", effects, COLUMNS),
        ("chaos report: stored documents against the fault-free run", stored, VIEW_COLUMNS),
    ):
        if not rows:
            continue
        terminalreporter.section(title)
        widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
        terminalreporter.write_line("  ".join(c.ljust(widths[c]) for c in columns))
        for r in rows:
            terminalreporter.write_line(
                "  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns)
            )
