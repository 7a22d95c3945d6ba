"""cache.py: entries round-trip, damaged entries are misses, and a cache that cannot be written never fails a run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from voicecoach.cache import DEFAULT_MAX_BYTES, HEADER_BYTES, Cache, cache_limit, default_cache_dir, digest
from voicecoach.errors import VoicecoachError
from voicecoach.files import TEMP_SUFFIX, atomic_write

RATE = 44100
KEY = digest("clip", "Hold.")


def samples(n: int = 1000) -> np.ndarray:
    return (np.arange(n, dtype=np.int64) * 37 % 20000 - 10000).astype(np.int16)


def test_clip_round_trip(tmp_path):
    cache = Cache(tmp_path)
    assert cache.get_clip(KEY, sample_rate=RATE) is None
    cache.put_clip(KEY, samples(), sample_rate=RATE)
    got = cache.get_clip(KEY, sample_rate=RATE)
    assert got is not None and got.dtype == np.int16 and np.array_equal(got, samples())
    assert (cache.stats.hits, cache.stats.misses, cache.stats.corrupt) == (1, 1, 0)


def test_other_sample_rate_is_a_miss(tmp_path):
    cache = Cache(tmp_path)
    cache.put_clip(KEY, samples(), sample_rate=RATE)
    assert cache.get_clip(KEY, sample_rate=48000) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",  # zero length
        lambda data: data[: HEADER_BYTES - 3],  # truncated header
        lambda data: data[:-2],  # truncated payload
        lambda data: data[:HEADER_BYTES + 10] + bytes([data[HEADER_BYTES + 10] ^ 0xFF]) + data[HEADER_BYTES + 11 :],
        lambda data: b"XXXXXXXX" + data[8:],  # wrong magic
    ],
    ids=["empty", "short-header", "short-payload", "flipped-byte", "bad-magic"],
)
def test_damaged_clip_is_a_miss_and_removed(tmp_path, damage):
    cache = Cache(tmp_path)
    cache.put_clip(KEY, samples(), sample_rate=RATE)
    path = cache.clip_path(KEY)
    path.write_bytes(damage(path.read_bytes()))
    fresh = Cache(tmp_path)
    assert fresh.get_clip(KEY, sample_rate=RATE) is None
    assert fresh.stats.corrupt == 1 and not path.exists()
    fresh.put_clip(KEY, samples(), sample_rate=RATE)  # re-rendered and stored again
    assert np.array_equal(fresh.get_clip(KEY, sample_rate=RATE), samples())


def test_track_streams_through_and_reads_back_with_random_access(tmp_path):
    cache = Cache(tmp_path)
    chunks = [samples(700), samples(300), samples(5)]
    passed = list(cache.put_track("t1", iter(chunks), sample_rate=RATE))
    assert all(a is b for a, b in zip(passed, chunks))  # streamed through, not collected first
    whole = np.concatenate(chunks)
    track = cache.get_track("t1", sample_rate=RATE)
    assert len(track) == len(whole)
    for start, stop in [(0, 1), (699, 701), (1000, 1005), (333, 334), (0, 1005), (1004, 1005)]:  # players seek
        assert np.array_equal(np.asarray(track[start:stop]), whole[start:stop]), (start, stop)
    assert np.asarray(track).dtype == np.int16
    assert np.array_equal(track.read(990, 50), whole[990:])


def test_track_streams_back_in_chunks_read_not_mapped(tmp_path):
    cache = Cache(tmp_path)
    assert cache.track_chunks("t1", sample_rate=RATE, chunk_samples=256) is None  # a miss
    whole = np.concatenate([samples(700), samples(300), samples(5)])
    list(cache.put_track("t1", [whole[:700], whole[700:]], sample_rate=RATE))
    chunks = list(cache.track_chunks("t1", sample_rate=RATE, chunk_samples=256))
    assert [len(c) for c in chunks] == [256, 256, 256, 237]
    assert not any(isinstance(c, np.memmap) for c in chunks)  # streaming an hour must not map it all in
    assert np.array_equal(np.concatenate(chunks), whole)
    path = cache.track_path("t1")
    path.write_bytes(path.read_bytes()[:-2])  # truncated: a miss, and gone
    assert cache.track_chunks("t1", sample_rate=RATE, chunk_samples=256) is None and not path.exists()


def test_track_abandoned_midway_leaves_nothing(tmp_path):
    cache = Cache(tmp_path)
    stream = cache.put_track("t2", iter([samples(), samples()]), sample_rate=RATE)
    next(stream)
    stream.close()  # the consumer stopped (e.g. Ctrl-C during export)
    assert cache.get_track("t2", sample_rate=RATE) is None
    assert not list((tmp_path / "tracks").glob(f"*{TEMP_SUFFIX}"))


def test_damaged_track_is_a_miss(tmp_path):
    cache = Cache(tmp_path)
    list(cache.put_track("t3", [samples(5000)], sample_rate=RATE))
    path = cache.track_path("t3")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    assert cache.get_track("t3", sample_rate=RATE) is None and cache.stats.corrupt == 1


def test_unwritable_cache_warns_and_continues(tmp_path):
    # a regular file where the cache folder should be: nothing can be created below it (even as root)
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    cache = Cache(blocker)
    cache.put_clip(KEY, samples(), sample_rate=RATE)
    assert list(cache.put_track("t", [samples()], sample_rate=RATE))[0] is not None
    assert len(cache.stats.warnings) == 1 and "continuing without caching" in cache.stats.warnings[0]


def test_disabled_cache_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the default folder, audio_cache/, would appear
    cache = Cache(None)
    cache.put_clip(KEY, samples(), sample_rate=RATE)
    assert cache.get_clip(KEY, sample_rate=RATE) is None
    chunks = [samples(), samples(10)]
    assert [c is d for c, d in zip(cache.put_track("t", iter(chunks), sample_rate=RATE), chunks)] == [True, True]
    assert cache.get_track("t", sample_rate=RATE) is None
    assert cache.track_chunks("t", sample_rate=RATE, chunk_samples=4) is None
    assert list(tmp_path.iterdir()) == []  # not a file, not a folder


def test_cache_location_project_then_user_cache_and_environment_wins(monkeypatch, tmp_path):
    monkeypatch.delenv("VOICECOACH_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    project = tmp_path / "project"
    routine = project / "routines" / "face" / "morning.yaml"
    routine.parent.mkdir(parents=True)
    routine.write_text("title: x\n")
    loose = tmp_path / "loose" / "evening.yaml"
    loose.parent.mkdir()
    assert not any((folder / "audio_cache").is_dir() for folder in tmp_path.parents)  # nothing above the test
    # no project: the user cache, whatever the current folder
    monkeypatch.chdir(project)
    assert default_cache_dir(routine) == tmp_path / "xdg" / "voicecoach"
    # an audio_cache/ marks the project: found from the routine (file or folder), however deep
    (project / "audio_cache").mkdir()
    assert default_cache_dir(routine) == project / "audio_cache"
    assert default_cache_dir(routine.parent) == project / "audio_cache"
    assert default_cache_dir() == project / "audio_cache"  # the cache commands: the current folder's project
    monkeypatch.chdir(tmp_path)
    assert default_cache_dir(loose) == tmp_path / "xdg" / "voicecoach"
    assert default_cache_dir(Path("project/routines/face/morning.yaml")) == project / "audio_cache"
    # a relative XDG_CACHE_HOME is ignored (XDG base directory spec)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir(loose) == tmp_path / "home" / ".cache" / "voicecoach"
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "chosen"))
    assert default_cache_dir(routine) == tmp_path / "chosen"


def test_size_cap_is_kept_after_a_run_least_recently_used_first(monkeypatch, tmp_path):
    rng = np.random.default_rng(3)
    noise = [rng.integers(-20000, 20000, 4000).astype(np.int16) for _ in range(6)]
    monkeypatch.setenv("VOICECOACH_CACHE_MAX", "none")
    cache = Cache(tmp_path)
    for i, clip in enumerate(noise):
        cache.put_clip(digest("clip", i), clip, sample_rate=RATE)
        os.utime(cache.clip_path(digest("clip", i)), (1000 + i, 1000 + i))
    sizes = [cache.clip_path(digest("clip", i)).stat().st_size for i in range(6)]
    assert cache.trim() is None and all(cache.clip_path(digest("clip", i)).exists() for i in range(6))
    cache.put_clip(digest("clip", "new"), noise[0][:100], sample_rate=RATE)
    new_size = cache.clip_path(digest("clip", "new")).stat().st_size
    cap = sizes[0] + sizes[4] + sizes[5] + new_size
    monkeypatch.setenv("VOICECOACH_CACHE_MAX", str(cap))
    reader = Cache(tmp_path)
    assert reader.get_clip(digest("clip", 0), sample_rate=RATE) is not None  # used now: the most recent
    assert reader.trim() is None  # a run that stored nothing leaves the cache as it is
    writer = Cache(tmp_path)
    writer.put_clip(digest("clip", "new"), noise[0][:100], sample_rate=RATE)  # a run that stores something
    report = writer.trim()
    assert report is not None and report.removed == 3 and report.kept_bytes == cap
    kept = [cache.clip_path(digest("clip", i)).exists() for i in range(6)]
    assert kept == [True, False, False, False, True, True] and cache.clip_path(digest("clip", "new")).exists()


def test_size_cap_default_and_bad_values(monkeypatch):
    monkeypatch.delenv("VOICECOACH_CACHE_MAX", raising=False)
    assert cache_limit() == DEFAULT_MAX_BYTES == 1 << 30
    monkeypatch.setenv("VOICECOACH_CACHE_MAX", "200M")
    assert cache_limit() == 200 << 20
    monkeypatch.setenv("VOICECOACH_CACHE_MAX", "lots")
    with pytest.raises(VoicecoachError, match="VOICECOACH_CACHE_MAX: 'lots' is not a size"):
        cache_limit()


def test_a_cache_folder_that_cannot_be_used_warns_once_for_all_entries(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = Cache(blocker / "cache")  # the path runs through a file
    for i in range(30):
        assert cache.get_clip(digest("clip", i), sample_rate=RATE) is None
        cache.put_clip(digest("clip", i), samples(), sample_rate=RATE)
    assert cache.get_track("t", sample_rate=RATE) is None
    assert list(cache.put_track("t", [samples()], sample_rate=RATE))
    assert len(cache.stats.warnings) == 1 and "cannot use cache folder" in cache.stats.warnings[0]


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write(b"new partial")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_write_makes_an_ordinary_file(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out.bin") as handle:
            handle.write(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o644


def test_digest_is_stable_and_sensitive():
    assert digest("a", 1) == digest("a", 1)
    assert digest("a", 1) != digest("a", 2)


def test_a_file_hash_is_remembered_and_a_changed_file_is_hashed_again(tmp_path, monkeypatch):
    import hashlib

    from voicecoach import sound

    hashed, misses = [], []
    real = sound.file_sha256
    monkeypatch.setattr(sound, "file_sha256", lambda path: hashed.append(path) or real(path))
    model = tmp_path / "voice.onnx"
    model.write_bytes(b"A" * 5000)
    sha = hashlib.sha256(b"A" * 5000).hexdigest()
    assert Cache(tmp_path / "c").file_sha256(model, on_miss=lambda: misses.append(1)) == sha
    assert Cache(tmp_path / "c").file_sha256(model, on_miss=lambda: misses.append(1)) == sha  # another run
    assert len(hashed) == len(misses) == 1
    info = model.stat()
    model.write_bytes(b"B" * 5000)  # the same size and modification time: the inode tells (replaced files)
    os.utime(model, ns=(info.st_atime_ns, info.st_mtime_ns))
    tmp = tmp_path / "new.onnx"
    tmp.write_bytes(b"C" * 5000)
    os.utime(tmp, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.replace(tmp, model)
    assert Cache(tmp_path / "c").file_sha256(model) == hashlib.sha256(b"C" * 5000).hexdigest()
    model.write_bytes(b"D" * 5000)  # changed in place: its modification time tells
    os.utime(model, ns=(info.st_atime_ns, info.st_mtime_ns + 1000))
    assert Cache(tmp_path / "c").file_sha256(model) == hashlib.sha256(b"D" * 5000).hexdigest()
    assert len(hashed) == 3
    for memo in (tmp_path / "c" / "hashes").iterdir():  # a damaged memo is hashed again, not trusted
        memo.write_text("not a hash")
    assert Cache(tmp_path / "c").file_sha256(model) == hashlib.sha256(b"D" * 5000).hexdigest()
    assert Cache(None).file_sha256(model) == hashlib.sha256(b"D" * 5000).hexdigest()  # no cache: just hashed
    assert len(hashed) == 5
    Cache(tmp_path / "c").clear()
    assert not (tmp_path / "c" / "hashes").exists()
