"""tests/conftest.py: with CI=true every kind of skip fails the run; locally a skip stays a skip."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

SKIPPING_TESTS = '''
import pytest

@pytest.mark.skipif(True, reason="no such tool")
def test_marked():
    pass

def test_called():
    pytest.skip("not installed")

def test_passes():
    pass

@pytest.mark.xfail(reason="a known bug is not a skip")
def test_expected_failure():
    assert False
'''

SKIPPING_MODULE = '''
import pytest
pytest.importorskip("no_such_module_for_voicecoach_tests")

def test_never_runs():
    pass
'''


def run_pytest(folder: Path, *, ci: str | None) -> dict[str, int]:
    """Runs pytest with tests/conftest.py as a plugin on ``folder``; returns the summary counts."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )
    summary = result.stdout.strip().splitlines()[-1]
    counts = {word: int(count) for count, word in re.findall(r"(\d+) (passed|failed|skipped|xfailed|error)", summary)}
    assert counts, result.stdout + result.stderr
    return counts


@pytest.fixture
def skipping(tmp_path: Path) -> Path:
    (tmp_path / "test_skipping.py").write_text(SKIPPING_TESTS, encoding="utf-8")
    return tmp_path


def test_in_ci_a_skip_mark_and_a_skip_call_fail(skipping):
    counts = run_pytest(skipping, ci="true")
    assert counts.get("skipped", 0) == 0
    # skipif is decided in setup (reported as an error), pytest.skip() in the call (a failure)
    assert counts.get("failed", 0) + counts.get("error", 0) == 2
    assert counts["passed"] == 1 and counts["xfailed"] == 1


def test_locally_a_skip_is_a_skip(skipping):
    assert run_pytest(skipping, ci=None) == {"passed": 1, "skipped": 2, "xfailed": 1}
    assert run_pytest(skipping, ci="false") == {"passed": 1, "skipped": 2, "xfailed": 1}


def test_in_ci_a_skipped_module_fails(tmp_path):
    (tmp_path / "test_module.py").write_text(SKIPPING_MODULE, encoding="utf-8")
    counts = run_pytest(tmp_path, ci="true")
    assert counts.get("skipped", 0) == 0 and counts.get("error", 0) == 1
    assert run_pytest(tmp_path, ci=None).get("skipped") == 1
