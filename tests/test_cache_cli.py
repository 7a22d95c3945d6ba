"""Managing the cache: `voicecoach cache info|verify|prune|clear`, LRU, leftovers, verbose repair notes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from voicecoach.cache import HEADER_BYTES, Cache, digest, entry_ok
from voicecoach.cache_commands import _human, _Size
from voicecoach.cli import cli
from voicecoach.errors import VoicecoachError
from voicecoach.files import STALE_TEMP_S, TEMP_SUFFIX

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
MORNING = str(SCRIPTS / "morning.yaml")
RATE = 44100


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def run(cache_dir, monkeypatch):
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(cache_dir))

    def invoke(*args):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def compiled(run, tmp_path) -> Path:
    """The morning routine compiled with the fake engine: a cache with clips and one track."""
    out = tmp_path / "m.wav"
    assert run("compile", MORNING, "-o", out, "--engine", "fake").exit_code == 0
    return out


def entries(cache_dir: Path, kind: str) -> list[Path]:
    return sorted((cache_dir / kind).rglob("*.vca"))


def put(cache: Cache, name: str, n: int = 1000) -> Path:
    key = digest(name)
    cache.put_clip(key, np.full(n, 7, dtype=np.int16), sample_rate=RATE)
    return cache.clip_path(key)


def set_last_use(path: Path, seconds_ago: float) -> None:
    then = time.time() - seconds_ago
    os.utime(path, (then, then))


@pytest.mark.parametrize("sub", ["info", "verify", "prune", "clear"])
def test_every_subcommand_has_help_with_an_example(run, sub):
    result = run("cache", sub, "--help")
    assert result.exit_code == 0 and "Example:" in result.output and f"voicecoach cache {sub}" in result.output


def test_info_counts_entries_and_bytes_by_kind(run, compiled, cache_dir):
    data = json.loads(run("cache", "info", "--json").output)
    clips, tracks = entries(cache_dir, "clips"), entries(cache_dir, "tracks")
    assert len(clips) > 10 and len(tracks) == 1
    assert data["by_kind"] == {
        "clips": {"entries": len(clips), "bytes": sum(p.stat().st_size for p in clips)},
        "tracks": {"entries": 1, "bytes": tracks[0].stat().st_size},
    }
    assert data["entries"] == len(clips) + 1 and data["temp_files"] == 0
    text = run("cache", "info").output
    assert f"clips   {len(clips):>7} entries" in text and "tracks        1 entry " in text


def test_verify_finds_removes_and_reports_damaged_entries(run, compiled, cache_dir):
    clips, (track,) = entries(cache_dir, "clips"), entries(cache_dir, "tracks")
    data = bytearray(clips[0].read_bytes())
    data[HEADER_BYTES + 5] ^= 0x40
    clips[0].write_bytes(bytes(data))  # a flipped bit
    clips[1].write_bytes(b"")  # zero length
    track.write_bytes(track.read_bytes()[:-100])  # truncated
    result = run("cache", "verify")
    assert result.exit_code == 1
    assert sorted(result.output.splitlines()[:3]) == sorted(f"damaged, removed: {p}" for p in (clips[0], clips[1], track))
    assert result.output.splitlines()[-1] == f"{len(clips) + 1} entries checked: {len(clips) - 2} valid, 3 damaged"
    assert not clips[0].exists() and not clips[1].exists() and not track.exists()
    again = run("cache", "verify", "--json")
    assert again.exit_code == 0 and json.loads(again.output)["damaged"] == []


def test_a_corrupt_entry_is_reported_once_only_with_verbose_and_rendered_again(run, compiled, cache_dir, tmp_path):
    before = compiled.read_bytes()
    clips = entries(cache_dir, "clips")
    for path in clips[:2]:
        path.write_bytes(path.read_bytes()[: HEADER_BYTES + 10])
    quiet = run("compile", MORNING, "-o", compiled, "--engine", "fake")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    for path in entries(cache_dir, "clips")[:3]:
        path.write_bytes(b"")
    for path in entries(cache_dir, "tracks"):
        path.write_bytes(b"\0" * 100)
    loud = run("compile", MORNING, "-o", compiled, "--engine", "fake", "-v")
    assert loud.exit_code == 0
    assert loud.stderr.splitlines() == [f"note: cache {cache_dir}: 4 damaged entries rendered again"]
    assert compiled.read_bytes() == before and run("cache", "verify").exit_code == 0


def test_prune_removes_the_least_recently_used_first(cache_dir, run):
    cache = Cache(cache_dir)
    paths = [put(cache, f"clip {i}") for i in range(5)]
    size = paths[0].stat().st_size
    assert all(p.stat().st_size == size for p in paths) and 3 * size < 1024  # sizes below print in bytes
    for age, path in zip([500, 400, 300, 200, 100], paths):
        set_last_use(path, age)
    # a hit makes an old entry recent (its time is updated on use: atime alone is not trusted)
    assert Cache(cache_dir).get_clip(digest("clip 0"), sample_rate=RATE) is not None
    result = run("cache", "prune", "--max-size", str(3 * size))
    assert result.exit_code == 0
    assert result.output.strip() == f"removed 2 entries ({2 * size} B); kept 3 entries ({3 * size} B)"
    assert [p.exists() for p in paths] == [True, False, False, True, True]


@pytest.mark.parametrize("size, expected", [("500M", 500 << 20), ("2G", 2 << 30), ("1.5k", 1536), ("1000", 1000),
                                            ("64MiB", 64 << 20), ("10 MB", 10 << 20)])
def test_prune_sizes(size, expected):
    assert _Size().convert(size, None, None) == expected


def test_prune_refuses_a_bad_size(run):
    result = run("cache", "prune", "--max-size", "lots")
    assert result.exit_code == 2 and "'lots' is not a size; write e.g. 500M, 2G or 1000000" in result.output


def test_clear_removes_entries_only(run, compiled, cache_dir):
    mine = cache_dir / "notes.txt"
    mine.write_text("the user's own file")
    result = run("cache", "clear")
    assert result.exit_code == 0 and result.output.startswith("removed ") and "entries from" in result.output
    assert sorted(p.name for p in cache_dir.iterdir()) == ["notes.txt"]
    assert json.loads(run("cache", "info", "--json").output)["entries"] == 0


def test_a_cache_that_cannot_be_changed_is_a_clear_error(run, cache_dir, monkeypatch):
    put(Cache(cache_dir), "a")

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "unlink", refuse)
    result = run("cache", "clear")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"cannot remove cache entry {cache_dir}/clips/")
    assert result.stderr.strip().endswith("Permission denied; check the cache folder's permissions, or use --cache-dir")


def test_stale_temp_files_go_with_the_next_run_and_fresh_ones_stay(cache_dir):
    cache = Cache(cache_dir)
    entry = put(cache, "a")
    stale = entry.parent / f".{entry.name}.dead01{TEMP_SUFFIX}"
    fresh = cache_dir / "tracks" / f".t.vca.live01{TEMP_SUFFIX}"
    fresh.parent.mkdir()
    for path in (stale, fresh):
        path.write_bytes(b"\0" * 10)
    set_last_use(stale, STALE_TEMP_S + 60)
    assert Cache(cache_dir).info().temp_files == 2
    next_run = Cache(cache_dir)
    assert next_run.get_clip(digest("a"), sample_rate=RATE) is not None
    assert next_run.stats.stale_removed == 1 and not stale.exists() and fresh.exists()


def test_entry_ok_checks_the_whole_entry(cache_dir):
    path = put(Cache(cache_dir), "a")
    assert entry_ok(path) and entry_ok(path, sample_rate=RATE) and not entry_ok(path, sample_rate=48000)
    path.write_bytes(path.read_bytes() + b"\0\0")
    assert not entry_ok(path)
    with pytest.raises(FileNotFoundError):
        entry_ok(cache_dir / "nope.vca")


def test_verify_without_removing(cache_dir):
    path = put(Cache(cache_dir), "a")
    path.write_bytes(b"x")
    report = Cache(cache_dir).verify(remove=False)
    assert (report.checked, report.bad, report.removed) == (1, (path,), False) and path.exists()


def test_library_errors_are_voicecoach_errors(cache_dir, monkeypatch):
    put(Cache(cache_dir), "a")
    monkeypatch.setattr(Path, "unlink", lambda self, *a, **k: (_ for _ in ()).throw(OSError(30, "Read-only file system")))
    with pytest.raises(VoicecoachError, match="Read-only file system"):
        Cache(cache_dir).prune(max_bytes=0)


ROUTINE = "routine: Fast\nsteps:\n  - massage: Quick taps\n    strokes: 4\n    tempo: 1s\n"


@pytest.fixture
def no_cache_env(monkeypatch, tmp_path):
    """No $VOICECOACH_CACHE_DIR; the user cache in tmp_path/xdg; the current folder elsewhere."""
    monkeypatch.delenv("VOICECOACH_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_compile_outside_a_project_uses_the_user_cache_not_the_current_folder(no_cache_env, tmp_path):
    routine = tmp_path / "routines" / "fast.yaml"
    routine.parent.mkdir()
    routine.write_text(ROUTINE)
    assert invoke("compile", routine, "-o", tmp_path / "a.wav", "--engine", "fake").exit_code == 0
    assert list(no_cache_env.iterdir()) == []  # no audio_cache/ where the command ran
    user_cache = tmp_path / "xdg" / "voicecoach"
    assert entries(user_cache, "tracks") and entries(user_cache, "clips")
    # a project's audio_cache/ (above the routine, wherever the command runs) is the routine's cache
    (tmp_path / "audio_cache").mkdir()
    second = invoke("compile", routine, "-o", tmp_path / "b.wav", "--engine", "fake")
    assert second.exit_code == 0 and "0 clips synthesized" not in second.output  # another cache: made anew
    assert entries(tmp_path / "audio_cache", "tracks") and list(no_cache_env.iterdir()) == []
    # and `cache info` run in the project finds the same cache, saying why
    os.chdir(routine.parent)
    info = invoke("cache", "info")
    assert info.output.startswith(f"cache {tmp_path / 'audio_cache'}\n  chosen: the project's audio_cache/")


def test_every_command_that_caches_goes_to_the_routine_s_cache(no_cache_env, tmp_path):
    project = tmp_path / "project"
    (project / "audio_cache").mkdir(parents=True)
    routine = project / "fast.yaml"
    routine.write_text(ROUTINE)
    assert invoke("check", "--deep", "--engine", "fake", routine).exit_code == 0
    assert entries(project / "audio_cache", "clips")
    clips = len(entries(project / "audio_cache", "clips"))
    assert invoke("export", routine, "-d", tmp_path / "phone", "--engine", "fake", "--rate", "1.25").exit_code == 0
    assert len(entries(project / "audio_cache", "clips")) > clips  # its new clips (its track: its own output)
    assert invoke("compile", routine, "-o", tmp_path / "fast.wav", "--engine", "fake").exit_code == 0
    assert entries(project / "audio_cache", "tracks")
    assert list(no_cache_env.iterdir()) == [] and not (tmp_path / "xdg").exists()


def test_the_cache_is_kept_under_its_cap_after_each_run(no_cache_env, tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VOICECOACH_CACHE_MAX", "none")
    assert invoke("compile", MORNING, "-o", tmp_path / "m.wav", "--engine", "fake").exit_code == 0
    full = json.loads(invoke("cache", "info", "--json").output)["bytes"]
    cap = full // 2
    monkeypatch.setenv("VOICECOACH_CACHE_MAX", str(cap))
    quick = SCRIPTS / "quick-3-minute.yaml"
    # FLAC: built whole, then encoded, so a compile looks its track up even when it has speech to
    # make (an MP3 or WAV with speech to make is encoded while it is made: no track to look up)
    assert invoke("compile", quick, "-o", tmp_path / "q.flac", "--engine", "fake").exit_code == 0
    info = json.loads(invoke("cache", "info", "--json").output)
    assert info["max_bytes"] == cap and 0 < info["bytes"] <= cap
    assert f"  cap     {_human(cap)} (least recently used" in invoke("cache", "info").output
    # what the last run used stays: compiling it again takes its track from the cache
    assert "track from cache" in invoke("compile", quick, "-o", tmp_path / "q.flac", "--engine", "fake").output
    monkeypatch.delenv("VOICECOACH_CACHE_MAX")
    assert json.loads(invoke("cache", "info", "--json").output)["max_bytes"] == 1 << 30  # the default


def test_a_cache_path_through_a_file_gives_one_warning(no_cache_env, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(cli, ["compile", MORNING, "-o", str(tmp_path / "m.wav"), "--engine", "fake",
                                      "--cache-dir", str(blocker / "cache")])
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: cannot use cache folder {blocker / 'cache'} (Not a directory); "
                        "continuing without caching"]
    routines = [SCRIPTS / "morning.yaml", SCRIPTS / "quick-3-minute.yaml"]
    export = CliRunner().invoke(cli, ["export", *map(str, routines), "-d", str(tmp_path / "phone"), "--engine",
                                      "fake", "--cache-dir", str(blocker / "cache"), "--jobs", "1"])
    assert export.exit_code == 0
    assert sum(line.startswith("warning:") for line in export.stderr.splitlines()) == 1
