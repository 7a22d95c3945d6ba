"""The whole-routine false-action check plays a library routine in real time (over 3 minutes).

It needs no input, so it is started in the background as soon as collection is done, and its
test (moved to the end of the run) collects the result: those minutes overlap the rest of the
suite instead of adding to it.  Run alone, the test starts it itself and waits.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.play.servers import echo_into_the_microphone, pulse_server, voicecoach_process

WHOLE_ROUTINE_TEST = "test_a_whole_routine_with_its_own_echo_and_no_commands_takes_no_action"
LIBRARY_ROUTINE = Path(__file__).resolve().parents[2] / "scripts" / "quick-3-minute.yaml"
"""The shortest routine of the library (3:10; scripts/library/ holds include blocks, not routines)."""


class WholeRoutinePlay:
    """``voicecoach play LIBRARY_ROUTINE --listen`` with its own echo at a virtual microphone, in the background."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="voicecoach-whole-routine-"))
        self._stack = contextlib.ExitStack()
        self.process: subprocess.Popen | None = None
        try:
            self.env = self._stack.enter_context(pulse_server(self.folder, microphone=True))
            self.env["XDG_CACHE_HOME"] = str(self.folder / "xdg-cache")
            echo_into_the_microphone(self.env)
            self.process = voicecoach_process(
                ["play", str(LIBRARY_ROUTINE), "--engine", "espeak", "--no-keys", "--listen", "--mic",
                 "monitor of virtualmic"], env=self.env, out=self.folder / "out", err=self.folder / "err")
        except BaseException:
            self.close()
            raise

    def wait(self, timeout_s: float) -> tuple[int, str, str]:
        """Its exit code, standard output and error, once it has ended."""
        code = self.process.wait(timeout=timeout_s)
        return code, (self.folder / "out").read_text(), (self.folder / "err").read_text()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._stack.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_PLAYING = pytest.StashKey["WholeRoutinePlay | BaseException"]()


def pytest_collection_modifyitems(session, config, items) -> None:
    last = [item for item in items if item.name == WHOLE_ROUTINE_TEST]
    items[:] = [item for item in items if item.name != WHOLE_ROUTINE_TEST] + last


def pytest_collection_finish(session) -> None:
    if not session.config.option.collectonly and any(item.name == WHOLE_ROUTINE_TEST for item in session.items):
        try:
            session.config.stash[_PLAYING] = WholeRoutinePlay()
        except Exception as error:  # e.g. no PulseAudio here: the test fails with it, not the whole run
            session.config.stash[_PLAYING] = error


def pytest_sessionfinish(session) -> None:
    playing = session.config.stash.get(_PLAYING, None)
    if isinstance(playing, WholeRoutinePlay):
        playing.close()


@pytest.fixture
def whole_routine_playing(request) -> WholeRoutinePlay:
    """The background play of the library routine (started now if the session did not start it)."""
    playing = request.config.stash.get(_PLAYING, None)
    if isinstance(playing, BaseException):
        raise playing
    if playing is None:
        playing = WholeRoutinePlay()
        request.addfinalizer(playing.close)
    return playing
