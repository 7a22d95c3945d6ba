"""Shared test plumbing: the reliability figures that test_fuzz.py and test_reliability.py count.

The figures are printed at the end of every run that counted any (even with -q, without -s):
inputs fuzzed, clear errors, crashes; kills injected, partial outputs, invalid cache entries;
concurrent runs, mismatches.  Each test also asserts its own figures (crashes 0, ...).
"""

from __future__ import annotations

import pytest

FIGURES = pytest.StashKey[dict]()

_ORDER = [  # printed in this order, one line per group
    ("fuzz", ("inputs fuzzed", "accepted", "clear errors", "crashes")),
    ("faults", ("kills injected", "partial outputs", "invalid cache entries", "leftovers cleaned")),
    ("concurrency", ("concurrent runs", "mismatches")),
]


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES] = {}


@pytest.fixture(scope="session")
def figures(pytestconfig: pytest.Config) -> dict[str, int]:
    """Reliability figures of this run: name -> count (add to them with ``figures[name] += n``)."""
    counts = pytestconfig.stash[FIGURES]
    for _, names in _ORDER:
        for name in names:
            counts.setdefault(name, 0)
    return counts


def report_lines(counts: dict[str, int]) -> list[str]:
    lines = []
    for group, names in _ORDER:
        if any(counts.get(name) for name in names):
            lines.append(f"{group}: " + ", ".join(f"{name} {counts.get(name, 0)}" for name in names))
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    lines = report_lines(config.stash.get(FIGURES, {}))
    if lines:
        terminalreporter.section("reliability figures")
        for line in lines:
            terminalreporter.write_line(line)
