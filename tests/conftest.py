"""Shared test plumbing: no silent skips in CI, and the reliability figures that test_fuzz.py and
test_reliability.py count.

With ``CI=true`` in the environment every skip is a failure -- a ``skipif`` mark, a
``pytest.skip()`` call, an ``importorskip`` at module level -- so a broken install step
(no PulseAudio, no Piper) cannot hide the tests that need it.  Locally they may skip.

The figures are printed at the end of every run that counted any (even with -q, without -s):
inputs fuzzed, clear errors, crashes; kills injected, partial outputs, invalid cache entries;
concurrent runs, mismatches.  Each test also asserts its own figures (crashes 0, ...).
"""

from __future__ import annotations

import os

import pytest

FIGURES = pytest.StashKey[dict]()

_ORDER = [  # printed in this order, one line per group
    ("fuzz", ("inputs fuzzed", "accepted", "clear errors", "crashes")),
    ("faults", ("kills injected", "partial outputs", "invalid cache entries", "leftovers cleaned")),
    ("concurrency", ("concurrent runs", "mismatches")),
]


def skips_fail() -> bool:
    """True in CI: a skipped test or module is reported as failed."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _fail_a_skip(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail") and skips_fail():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI=true), which counts as a failure: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_a_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_a_skip(outcome.get_result())


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


@pytest.fixture(autouse=True)
def _user_cache_in_tmp(monkeypatch, tmp_path_factory):
    """Tests never fill the user's own cache: routines outside a project cache go to ~/.cache/voicecoach."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
