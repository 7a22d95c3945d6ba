"""cache.py: entries round-trip, damaged entries are misses, and a cache that cannot be written never fails a run."""

from __future__ import annotations

import os

import numpy as np
import pytest

from voicecoach.cache import HEADER_BYTES, Cache, default_cache_dir, digest
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


def test_default_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("VOICECOACH_CACHE_DIR", raising=False)
    assert str(default_cache_dir()) == "audio_cache"
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path


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
