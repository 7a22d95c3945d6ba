"""Faults: signals at any moment, concurrent runs on one cache, read-only and full disks, a hung engine.

Every test counts what it did into the reliability figures (tests/conftest.py prints them at
the end of the run) and asserts the ones that must be zero:

- kills injected (SIGINT, SIGTERM, SIGKILL into `voicecoach compile` and `voicecoach export`
  at fixed delays and when a temporary file appears), partial outputs (an output under its
  final name that is not byte-identical to an uninterrupted run's), invalid cache entries
  (after every kill, by checksum), leftovers cleaned (by the next run);
- concurrent runs (processes compiling overlapping routines against one cache at once),
  mismatches (outputs that differ from a serial run's).

The commands run in subprocesses (through the console script's entry point, ``_entry.main``)
with the fake engine; kills during synthesis and concurrent runs are repeated with the real
espeak and Piper servers; the hung/crashed engine tests use real espeak-ng through the
server's test hook (engines/espeak_server.FAULT_ENV).  A signal "after start-up" is one sent
once the process catches SIGINT and SIGTERM (``SigCgt`` in /proc): from then on it must stop
cleanly.  A read-only folder is made real even for root by running the
command without the capabilities that bypass file permissions (CAP_DAC_OVERRIDE & co).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from mutagen.mp3 import MP3

from voicecoach import files as files_module
from voicecoach.engines.espeak_server import FAULT_ENV
from voicecoach.cache import Cache
from voicecoach.cli import cli
from voicecoach.errors import EngineError
from voicecoach.files import TEMP_SUFFIX
from voicecoach.engines.espeak import EspeakEngine
from voicecoach.speech import Speech, SpeechSettings

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
MORNING = SCRIPTS / "morning.yaml"
WAIT_S = 120  # a command that takes longer than this has hung


ENTRY = "from voicecoach._entry import main; main()"  # what the `voicecoach` console script runs


def command(*args: str) -> list[str]:
    return [sys.executable, "-c", ENTRY, *map(str, args)]


def environment(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    return {**env, "VOICECOACH_CACHE_DIR": str(cache), **extra}


def run(*args: str, cache: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), env=environment(cache), capture_output=True, text=True, timeout=WAIT_S,
                          **kwargs)


def temp_files(*folders: Path) -> list[Path]:
    return [p for folder in folders if folder.exists() for p in folder.rglob(f"*{TEMP_SUFFIX}")]


def invalid_entries(cache: Path) -> int:
    return len(Cache(cache).verify(remove=False).bad)


def age(paths: list[Path], seconds: float = 3600) -> None:
    """Make files look as old as a killed run's leftovers are by the time someone runs again."""
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    """Uninterrupted, serial compiles (each with its own cache): what every output must equal."""
    folder = tmp_path_factory.mktemp("reference")
    outputs = {}
    for name in ("morning", "neck-jawline", "quick-3-minute"):
        out = folder / f"{name}.mp3"
        done = run("compile", SCRIPTS / f"{name}.yaml", "-o", out, "--engine", "fake", cache=folder / name)
        assert done.returncode == 0, done.stderr
        outputs[name] = out.read_bytes()
    for name, routines in (("export", [MORNING]), ("export2", [MORNING, SCRIPTS / "quick-3-minute.yaml"])):
        done = run("export", *routines, "-d", folder / name, "--engine", "fake", "--jobs", "2", cache=folder / f"{name}-cache")
        assert done.returncode == 0, done.stderr
        outputs.update({f"{name}/{p.name}": p.read_bytes() for p in (folder / name).iterdir()
                        if not p.name.startswith(".")})
    return outputs


# ---------------------------------------------------------------------------------------
# Kills


@dataclass(frozen=True)
class Moment:
    """When a signal is sent: after a delay, or as soon as a temporary file appears in a folder."""

    after_s: float | None = None
    """Seconds after the start."""
    temp_in: str | None = None
    """'out' (the output is being written), 'tracks' (the mixed track is being cached) or 'clips'."""
    drop: str = "tracks"
    """Cache entries removed before the run ('tracks' or 'all'; leftovers stay), so there is work to stop."""
    any_file: bool = False
    """Watch ``temp_in`` for any new file, finished entries too: a temporary file can live for less than the
    polling interval, a finished entry stays, so this moment is always caught while work remains."""

    def __str__(self) -> str:
        return f"{self.after_s:g}s" if self.after_s is not None else f"temp-in-{self.temp_in}"


MOMENTS = [Moment(after_s=0.05, drop="all"), Moment(after_s=0.6, drop="all"), Moment(after_s=1.0, drop="all"),
           Moment(temp_in="clips", drop="all", any_file=True), Moment(temp_in="tracks"), Moment(temp_in="out")]


def drop_entries(cache: Path, which: str) -> None:
    for path in (cache if which == "all" else cache / "tracks").rglob("*.vca"):
        path.unlink()
CLEAN_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
STOP_LINE = {signal.SIGINT: "Interrupted.", signal.SIGTERM: "Terminated."}


def default_signals() -> None:
    """In the child: Ctrl-C as in a terminal, even if this test run ignores it (a background job does)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def catches_stop_signals(pid: int) -> bool:
    """Whether the process has its own SIGINT and SIGTERM handlers yet (``SigCgt`` in /proc): the end of
    its start-up.  Before that, in the interpreter's first milliseconds, a signal ends it Python's default way."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return all(caught & (1 << (sig - 1)) for sig in (signal.SIGINT, signal.SIGTERM))


def kill_at(args: list[str], env: dict, moment: Moment, sig: signal.Signals, watch: dict[str, Path],
            logs: Path, *, group: bool = False) -> tuple[bool, int, str]:
    """Run, signal at ``moment`` (counted from the end of start-up); whether the signal reached a running
    process, exit code, stderr.  ``group``: to the whole process group, workers too (what a terminal's
    Ctrl-C and a service manager's stop do)."""
    def files(folder: Path) -> set[Path]:
        if moment.any_file:
            return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()
        return set(temp_files(folder))

    before = files(watch[moment.temp_in]) if moment.temp_in else set()
    with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=err, preexec_fn=default_signals,
                                start_new_session=group)
        try:
            deadline = time.monotonic() + WAIT_S
            while proc.poll() is None and not catches_stop_signals(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.001)
            if moment.after_s is not None:
                try:
                    proc.wait(timeout=moment.after_s)
                except subprocess.TimeoutExpired:
                    pass
            else:  # a new one: a SIGKILL before may have left some
                folder = watch[moment.temp_in]
                while (proc.poll() is None and not files(folder) - before
                       and time.monotonic() < deadline):
                    time.sleep(0.001)
            delivered = proc.poll() is None
            if delivered:
                if group:
                    os.killpg(proc.pid, sig)
                else:
                    proc.send_signal(sig)
            code = proc.wait(timeout=WAIT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if group:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # no worker outlives a test
    return delivered, code, (logs / "stderr").read_text(errors="replace")


def check_after_kill(sig: signal.Signals, delivered: bool, code: int, stderr: str, outputs: dict[Path, bytes],
                     folders: list[Path], figures: dict[str, int]) -> int:
    """Assert a clean stop; count partial outputs (returned) and check the cache's entries.

    A signal that reached the running command (after its start-up) must stop it: 130 / 143, exactly one
    line on stderr, no temporary file left.  One that came too late finds it finished, outputs whole.
    """
    if not delivered:
        assert code == 0, f"exit {code} without a signal: {stderr}"
        assert all(path.exists() for path in outputs), "a finished run must leave its outputs"
    elif sig is signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == CLEAN_EXIT[sig], f"exit {code} after {sig.name}, not {CLEAN_EXIT[sig]}: {stderr}"
        assert stderr.splitlines() == [STOP_LINE[sig]], f"stderr after {sig.name}: {stderr!r}"
    partial = sum(1 for path, expected in outputs.items() if path.exists() and path.read_bytes() != expected)
    if sig is not signal.SIGKILL:
        assert not temp_files(*folders), f"SIGINT/SIGTERM must remove temporary files (exit {code}: {stderr})"
    figures["partial outputs"] += partial
    return partial


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_compile_killed_at_any_moment(tmp_path, reference, figures, sig):
    cache, out_dir = tmp_path / "cache", tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "morning.mp3"
    args = command("compile", MORNING, "-o", out, "--engine", "fake")
    delivered = partial = invalid = 0
    for moment in MOMENTS:
        drop_entries(cache, moment.drop)
        sent, code, stderr = kill_at(args, environment(cache), moment, sig,
                                     {"out": out_dir, "tracks": cache / "tracks", "clips": cache / "clips"}, tmp_path)
        delivered += sent
        partial += check_after_kill(sig, sent, code, stderr, {out: reference["morning"]}, [cache, out_dir],
                                    figures)
        invalid += invalid_entries(cache)
        if out.exists():  # keep killing runs that still have work to do
            out.unlink()
    figures["kills injected"] += delivered
    figures["invalid cache entries"] += invalid
    assert delivered >= len(MOMENTS) - 1, f"{delivered} of {len(MOMENTS)} signals reached a running compile " \
        "(one that never catches SIGINT/SIGTERM is never seen started)"
    assert partial == 0 and invalid == 0

    # The next run cleans what a SIGKILL left (once it is stale) and makes the same bytes.
    leftovers, in_cache = temp_files(cache, out_dir), len(temp_files(cache))
    age(leftovers)
    done = subprocess.run(args + ["-v"], env=environment(cache), capture_output=True, text=True, timeout=WAIT_S)
    assert done.returncode == 0, done.stderr
    if in_cache:  # reported with -v
        assert f"{in_cache} leftover temporary file{'s' * (in_cache > 1)} of an interrupted run removed" in done.stderr
    assert out.read_bytes() == reference["morning"]
    assert not temp_files(cache, out_dir)
    figures["leftovers cleaned"] += len(leftovers)
    verify = run("cache", "verify", cache=cache)
    assert verify.returncode == 0 and " 0 damaged" in verify.stdout, verify.stdout + verify.stderr


@pytest.mark.parametrize("sig, group", [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGKILL, False),
                                        (signal.SIGINT, True), (signal.SIGTERM, True)],
                         ids=["SIGINT", "SIGTERM", "SIGKILL", "SIGINT-group", "SIGTERM-group"])
def test_export_killed_at_any_moment(tmp_path, reference, figures, sig, group):
    """``group``: two routines in two worker processes, the signal to the whole process group (a terminal's
    Ctrl-C, a service manager's stop): the workers get it too, and the stop must be as clean."""
    cache, out_dir = tmp_path / "cache", tmp_path / "phone"
    name, routines = ("export2", [MORNING, SCRIPTS / "quick-3-minute.yaml"]) if group else ("export", [MORNING])
    args = command("export", *routines, "-d", out_dir, "--engine", "fake", "--jobs", "2")
    expected = {out_dir / key.split("/", 1)[1]: data for key, data in reference.items() if key.startswith(name + "/")}
    delivered = partial = 0
    moments = (Moment(after_s=0.8, drop="all"), Moment(temp_in="out"))
    if group:
        moments += (Moment(after_s=0.1, drop="all"),)  # workers not started yet, or loading
    for moment in moments:
        drop_entries(cache, moment.drop)
        sent, code, stderr = kill_at(args, environment(cache), moment, sig, {"out": out_dir}, tmp_path, group=group)
        delivered += sent
        partial += check_after_kill(sig, sent, code, f"{stderr}", expected, [cache, out_dir], figures)
        manifest = out_dir / ".voicecoach-export.json"
        if manifest.exists():
            json.loads(manifest.read_text())  # whole, or not there
        figures["invalid cache entries"] += invalid_entries(cache)
        shutil.rmtree(out_dir, ignore_errors=True)
    figures["kills injected"] += delivered
    assert delivered >= len(moments) - 1, f"{delivered} of {len(moments)} signals reached a running export"
    assert partial == 0 and invalid_entries(cache) == 0

    leftovers = temp_files(cache)
    age(leftovers)
    done = subprocess.run(args, env=environment(cache), capture_output=True, text=True, timeout=WAIT_S)
    assert done.returncode == 0, done.stderr
    assert all(path.read_bytes() == data for path, data in expected.items())
    assert not temp_files(cache, out_dir)
    figures["leftovers cleaned"] += len(leftovers)


def processes_with(marker: str) -> list[int]:
    """Processes whose environment holds ``marker`` (a test's own TMPDIR): the command's descendants."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


REAL_ENGINES = ["espeak", "piper"]


@pytest.mark.espeak
@pytest.mark.parametrize("engine", REAL_ENGINES)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_compile_with_real_speech_stops_cleanly(tmp_path, figures, sig, engine):
    """A signal while the real engine synthesizes: its speech server and workers go too, nothing is left."""
    cache, scratch = tmp_path / "cache", tmp_path / "tmp"
    scratch.mkdir()
    env = environment(cache, TMPDIR=str(scratch))
    sent, code, stderr = kill_at(command("compile", MORNING, "-o", tmp_path / "m.mp3", "--engine", engine), env,
                                 Moment(temp_in="clips", any_file=True), sig, {"clips": cache / "clips"}, tmp_path)
    assert sent, f"the compile ended (exit {code}) before synthesis was seen: {stderr}"
    assert code == CLEAN_EXIT[sig] and stderr.splitlines() == [STOP_LINE[sig]], f"exit {code}: {stderr}"
    figures["kills injected"] += 1
    deadline = time.monotonic() + WAIT_S
    while processes_with(str(scratch)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(str(scratch)) == []
    # onnxruntime (Piper) keeps a session id in $TMPDIR/.ses, on a finished run too: not a leftover
    assert [p.name for p in scratch.iterdir() if p.name != ".ses"] == []
    assert not temp_files(cache) and not (tmp_path / "m.mp3").exists()
    invalid = invalid_entries(cache)
    figures["invalid cache entries"] += invalid
    assert invalid == 0


SHORT = "routine: Short\nsteps:\n  - say: Lift the brows gently.\n  - say: Now release and breathe out.\n" \
        "  - massage: Cheek sweep\n    strokes: 2\n    tempo: 3s\n    cue: Sweep.\n"


@pytest.mark.espeak
@pytest.mark.parametrize("engine", REAL_ENGINES)
def test_concurrent_compiles_with_a_real_engine_share_one_cache(tmp_path, figures, engine):
    """Two processes, each with its own speech server, fill one cache at once: every output is the
    serial compile's, byte for byte, and every cache entry is valid."""
    routine = tmp_path / "short.yaml"
    routine.write_text(SHORT)
    serial = tmp_path / "serial.mp3"
    done = run("compile", routine, "-o", serial, "--engine", engine, cache=tmp_path / "serial-cache")
    assert done.returncode == 0, done.stderr
    cache = tmp_path / "cache"
    outs = [tmp_path / f"{i}.mp3" for i in range(2)]
    procs = [subprocess.Popen(command("compile", routine, "-o", out, "--engine", engine), env=environment(cache),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for out in outs]
    results = [proc.communicate(timeout=WAIT_S) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(procs), [err for _, err in results]
    mismatches = sum(out.read_bytes() != serial.read_bytes() for out in outs)
    invalid = invalid_entries(cache)
    figures["concurrent runs"] += len(procs)
    figures["mismatches"] += mismatches
    figures["invalid cache entries"] += invalid
    assert mismatches == 0 and invalid == 0 and not temp_files(cache)


def test_stale_leftovers_in_the_output_folder_are_removed_and_fresh_ones_kept(tmp_path, reference, figures):
    out = tmp_path / "m.mp3"
    stale, fresh = tmp_path / f".m.mp3.abc{TEMP_SUFFIX}", tmp_path / f".m.mp3.def{TEMP_SUFFIX}"
    other = tmp_path / f".other.mp3.ghi{TEMP_SUFFIX}"
    for path in (stale, fresh, other):
        path.write_bytes(b"half a file")
    age([stale, other])
    done = run("compile", MORNING, "-o", out, "--engine", "fake", cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert not stale.exists() and fresh.exists() and other.exists()  # only this output's stale ones
    assert out.read_bytes() == reference["morning"]
    figures["leftovers cleaned"] += 1


# ---------------------------------------------------------------------------------------
# Concurrency


def test_concurrent_compiles_share_one_cache(tmp_path, reference, figures):
    cache = tmp_path / "cache"
    names = ["morning", "morning", "neck-jawline", "quick-3-minute"]  # two write the very same entries
    outs = [tmp_path / f"{i}-{name}.mp3" for i, name in enumerate(names)]
    procs = [subprocess.Popen(command("compile", SCRIPTS / f"{name}.yaml", "-o", out, "--engine", "fake"),
                              env=environment(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, out in zip(names, outs)]
    results = [proc.communicate(timeout=WAIT_S) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(procs), [err for _, err in results]
    mismatches = sum(out.read_bytes() != reference[name] for name, out in zip(names, outs))
    invalid = invalid_entries(cache)
    figures["concurrent runs"] += len(procs)
    figures["mismatches"] += mismatches
    figures["invalid cache entries"] += invalid
    assert mismatches == 0 and invalid == 0 and not temp_files(cache)
    # and now all from the cache, at once again
    procs = [subprocess.Popen(command("compile", SCRIPTS / f"{name}.yaml", "-o", out, "--engine", "fake"),
                              env=environment(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, out in zip(names, outs)]
    results = [proc.communicate(timeout=WAIT_S) for proc in procs]
    assert all("0 clips synthesized" in out and "track from cache" in out for out, _ in results), results
    mismatches = sum(out.read_bytes() != reference[name] for name, out in zip(names, outs))
    figures["concurrent runs"] += len(procs)
    figures["mismatches"] += mismatches
    assert mismatches == 0


# ---------------------------------------------------------------------------------------
# Read-only cache, full disk, unwritable output folder

_PERMISSION_CAPS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
_PR_CAPBSET_DROP = 24


def _without_permission_bypass() -> None:
    """In the child, before exec: root keeps its uid but obeys file permissions like anyone."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _PERMISSION_CAPS:
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def run_unprivileged(*args: str, cache: Path) -> subprocess.CompletedProcess:
    preexec = _without_permission_bypass if os.geteuid() == 0 else None
    return subprocess.run(command(*args), env=environment(cache), capture_output=True, text=True, timeout=WAIT_S,
                          preexec_fn=preexec)


def read_only(folder: Path) -> list[Path]:
    changed = [folder, *folder.rglob("*")]
    for path in changed:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return changed


def test_read_only_cache_still_compiles(tmp_path, reference):
    cache, out = tmp_path / "cache", tmp_path / "out.mp3"
    warm = run("compile", SCRIPTS / "quick-3-minute.yaml", "-o", tmp_path / "q.mp3", "--engine", "fake", cache=cache)
    assert warm.returncode == 0, warm.stderr
    before = {p: p.read_bytes() for p in cache.rglob("*.vca")}
    locked = read_only(cache)
    try:
        done = run_unprivileged("compile", MORNING, "-o", out, "--engine", "fake", cache=cache)
    finally:
        for path in locked:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert done.returncode == 0, done.stderr
    assert "warning: cannot write to cache folder" in done.stderr and "continuing without caching" in done.stderr
    assert done.stderr.count("warning:") == 1
    assert out.read_bytes() == reference["morning"]
    assert {p: p.read_bytes() for p in cache.rglob("*.vca")} == before  # used, not changed
    assert not temp_files(cache)


def test_unwritable_output_folder_is_a_clear_error(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        done = run_unprivileged("compile", MORNING, "-o", folder / "m.mp3", "--engine", "fake", cache=tmp_path / "c")
    finally:
        folder.chmod(0o755)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"output folder {str(folder)!r} is not writable; choose another -o path"
    assert list(folder.iterdir()) == []


class _FullDisk:
    """A file whose disk fills up after ``room`` bytes (every write beyond fails with ENOSPC)."""

    def __init__(self, handle, room: int) -> None:
        self._handle, self._room = handle, room

    def write(self, data) -> int:
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._handle.write(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)


@pytest.fixture
def full_disk(monkeypatch):
    """``full_disk(folder, room)``: files created in ``folder`` (by atomic_write) fill the disk after ``room`` bytes."""
    real_fdopen = os.fdopen
    full: dict[Path, int] = {}

    def fdopen(fd, *args, **kwargs):
        handle = real_fdopen(fd, *args, **kwargs)
        where = Path(os.readlink(f"/proc/self/fd/{fd}"))
        for folder, room in full.items():
            if folder == where or folder in where.parents:
                return _FullDisk(handle, room)
        return handle

    monkeypatch.setattr(files_module.os, "fdopen", fdopen)
    return lambda folder, room: full.__setitem__(Path(os.path.realpath(folder)), room)


@pytest.fixture
def cli_run(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "cache"))
    return lambda *args: CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_full_cache_disk_compiles_without_caching(tmp_path, reference, full_disk, cli_run):
    (tmp_path / "cache").mkdir()
    full_disk(tmp_path / "cache", 50_000)  # room for a few clips, not for the track
    out = tmp_path / "out" / "m.mp3"
    out.parent.mkdir()
    result = cli_run("compile", MORNING, "-o", out, "--engine", "fake")
    assert result.exit_code == 0, result.output
    assert "No space left on device" in result.stderr and "continuing without caching" in result.stderr
    assert out.read_bytes() == reference["morning"]
    assert invalid_entries(tmp_path / "cache") == 0 and not temp_files(tmp_path)


@pytest.mark.parametrize("suffix", [".mp3", ".wav"])
def test_full_output_disk_is_a_clear_error_and_leaves_nothing(tmp_path, full_disk, cli_run, suffix):
    out = tmp_path / "out" / f"m{suffix}"
    out.parent.mkdir()
    full_disk(out.parent, 1_000_000)
    result = cli_run("compile", MORNING, "-o", out, "--engine", "fake", "--timeline", out.parent / "t.json")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"cannot write {str(out)!r}: No space left on device; "
                                     "free some disk space or choose a folder you may write to")
    assert list(out.parent.iterdir()) == []
    assert invalid_entries(tmp_path / "cache") == 0 and not temp_files(tmp_path)


# ---------------------------------------------------------------------------------------
# A hung or crashed engine


@pytest.mark.espeak
@pytest.mark.parametrize("fault", ["hang", "crash"])
def test_engine_fault_is_reported_with_its_text(monkeypatch, fault):
    monkeypatch.setenv(FAULT_ENV, f"{fault}:Zorblax")
    speech = Speech(engine=EspeakEngine(), cache=Cache(None), settings=SpeechSettings(), jobs=2, timeout_s=1.5)
    try:
        with pytest.raises(EngineError) as caught:
            speech.prepare(["Lift the brows.", "Now the Zorblax stroke.", "Release."])
    finally:
        speech.engine.close()
    cause = "espeak did not finish within 1.5 s" if fault == "hang" else "espeak crashed (SIGABRT)"
    assert caught.value.format() == (f"espeak failed on 'Now the Zorblax stroke.': {cause}; "
                                     "simplify the text or report the bug")


@pytest.mark.espeak
def test_compile_with_a_crashing_engine_fails_cleanly(tmp_path):
    routine = tmp_path / "r.yaml"
    routine.write_text("routine: R\nsteps:\n  - say: Breathe in.\n  - say: The Zorblax step.\n")
    out = tmp_path / "r.mp3"
    env = environment(tmp_path / "cache", **{FAULT_ENV: "crash:Zorblax"})
    done = subprocess.run(command("compile", routine, "-o", out, "--engine", "espeak"), env=env, capture_output=True, text=True,
                          timeout=WAIT_S)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (  # placed at the step that says it
        f"{routine}:4:5: espeak failed on 'The Zorblax step.': espeak crashed (SIGABRT); "
        "simplify the text or report the bug"), done.stderr
    assert not out.exists() and invalid_entries(tmp_path / "cache") == 0
    # the clips that were made are cached and valid; without the fault the same compile succeeds
    env.pop(FAULT_ENV)
    again = subprocess.run(command("compile", routine, "-o", out, "--engine", "espeak"), env=env, capture_output=True, text=True,
                           timeout=WAIT_S)
    assert again.returncode == 0, again.stderr
    assert MP3(out).info.length > 1


def test_outputs_of_a_finished_run_are_valid_audio(tmp_path, reference):
    """What the kill tests compare against is itself whole: a WAV and an MP3 read back."""
    wav = tmp_path / "m.wav"
    done = run("compile", MORNING, "-o", wav, "--engine", "fake", cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    with wave.open(str(wav)) as handle:
        frames, rate = handle.getnframes(), handle.getframerate()
        assert len(handle.readframes(frames)) == 2 * frames > 0
    mp3 = tmp_path / "m.mp3"
    mp3.write_bytes(reference["morning"])
    assert MP3(mp3).info.sample_rate == rate and abs(MP3(mp3).info.length - frames / rate) < 0.1
