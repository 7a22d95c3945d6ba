"""errors.py: every error names its place, and commands over many routines name each routine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.errors import EngineError, Location, RoutineErrors, VoicecoachError

LOCATED = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+):(?P<col>\d+): ")


def test_at_file_places_an_unplaced_error_at_the_first_line():
    error = EngineError("espeak failed", hint="try again")
    placed = error.at_file("a.yaml")
    assert isinstance(placed, EngineError) and placed.location == Location("a.yaml", 1, 1)
    assert placed.format() == str(placed) == "a.yaml:1:1: espeak failed; try again"
    assert error.location is None  # the original is unchanged


def test_at_file_keeps_an_error_that_has_a_place():
    error = VoicecoachError("bad", location=Location("b.yaml", 4, 3))
    assert error.at_file("a.yaml") is error
    several = RoutineErrors([VoicecoachError("x"), error]).at_file("b.yaml")
    assert several.format().splitlines() == ["b.yaml:1:1: x", "b.yaml:4:3: bad"]


ROUTINE = "routine: {title}\n{extra}steps:\n  - say: Hello.\n"


@pytest.fixture
def routines(tmp_path) -> list[Path]:
    """A good routine and routines that fail for reasons outside the YAML: engine, voice, disk."""
    files = {
        "good.yaml": ROUTINE.format(title="Good", extra=""),
        "piper-german.yaml": ROUTINE.format(title="Piper German", extra="language: de\nengine: piper\n"
                                            "voice: /no/such/model.onnx\n"),
        "bad-model.yaml": ROUTINE.format(title="Bad model", extra="engine: piper\nvoice: model.onnx\n"),
    }
    (tmp_path / "model.onnx").write_bytes(b"not a model")
    paths = []
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, [*map(str, args)], catch_exceptions=False)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith(("note: ", "warning: "))]


def _assert_each_failure_located(stderr: str, failing: list[Path]) -> None:
    lines = _error_lines(stderr)
    for path in failing:
        mine = [line for line in lines if line.startswith(f"{path}:")]
        assert mine, f"no error line names {path}:\n{stderr}"
        assert all(LOCATED.match(line) for line in mine), mine


@pytest.mark.parametrize("command", [("check", "--deep"), ("export", "-d", "{out}")], ids=lambda c: c[0])
def test_multi_file_commands_name_the_routine_of_every_error(run, routines, tmp_path, command):
    args = [part.format(out=tmp_path / "phone") for part in command]
    result = run(*args, *routines)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    _assert_each_failure_located(result.stderr, routines[1:])
    per_file = [line for line in _error_lines(result.stderr) if "routines failed to export" not in line]
    assert per_file and all(LOCATED.match(line) for line in per_file), result.stderr


def test_an_engine_chosen_on_the_command_line_fails_at_the_routine(run, routines, tmp_path):
    result = run("export", routines[0], "-d", tmp_path / "phone", "--engine", "piper", "--voice", tmp_path / "x.onnx")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{routines[0]}:1:1: the Piper voice model"), result.stderr
    result = run("compile", routines[0], "-o", tmp_path / "a.wav", "--engine", "piper", "--voice", tmp_path / "x.onnx")
    assert result.exit_code == 2 and result.stderr.startswith(f"{routines[0]}:1:1: "), result.stderr


# ---------------------------------------------------------------------------------------
# Signals while worker processes start (Ctrl-C reaches the whole process group)


def test_signals_held_while_workers_start_are_inherited_and_not_lost():
    import signal
    import subprocess
    import sys
    import threading

    from voicecoach.errors import signals_held

    came: list[int] = []  # our own handler: other tests may have left SIGINT's handled otherwise
    before = signal.signal(signal.SIGINT, lambda signum, frame: came.append(signum))
    try:
        show = "import signal; print(sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])))"
        with signals_held():
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # held: it acts when the block ends
            child = subprocess.run([sys.executable, "-c", show], capture_output=True, text=True, check=True)
            assert came == []
        assert came == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, before)
    assert {int(signal.SIGINT), int(signal.SIGTERM)} <= set(eval(child.stdout))  # the child started with them held
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_a_worker_signalled_while_starting_stops_quietly_once_its_handlers_are_set():
    import signal
    import subprocess
    import sys
    import textwrap

    starting = textwrap.dedent("""
        import os, signal
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # as signals_held hands it on
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the worker imports
        import numpy
        from voicecoach.errors import init_worker_signals
        init_worker_signals()
        print("went on")
    """)
    done = subprocess.run([sys.executable, "-c", starting], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (128 + signal.SIGINT, "", "")


_POOL_WORKER_SIGNALLED = """
import os, signal, multiprocessing
from concurrent.futures import ProcessPoolExecutor
from voicecoach.errors import init_worker_signals, signals_held

if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker_signals)
    with signals_held():  # as export starts its workers
        future = pool.submit(int)
        for pid in list(pool._processes):
            os.kill(pid, signal.SIGINT)  # Ctrl-C while the worker starts: held until its handlers are set
    try:
        future.result(timeout=60)
        print("went on")
    except Exception as error:
        print(type(error).__name__)
    pool.shutdown()
"""


def test_a_pool_worker_signalled_while_starting_leaves_no_traceback(tmp_path):
    """The held signal acts inside the pool's initializer: the worker ends there, and nothing
    (the pool's "Exception in initializer" and its traceback) reaches the terminal."""
    import subprocess
    import sys

    script = tmp_path / "pool.py"
    script.write_text(_POOL_WORKER_SIGNALLED, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "BrokenProcessPool\n", "")
