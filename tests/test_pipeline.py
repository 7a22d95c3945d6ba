"""pipeline.py: Build and LiveBuild give the same samples, exports and reads agree."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from voicecoach.errors import EngineError
from voicecoach.pipeline import Build, LiveBuild, Settings, build
from voicecoach.engines import ENGINES, EngineSpec
from voicecoach.engines.fake import FakeEngine

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture
def settings(tmp_path):
    return Settings(engine="fake", cache_dir=tmp_path / "cache")


def whole(result: Build) -> np.ndarray:
    return np.concatenate(list(result.chunks()))


def test_read_equals_the_exported_samples(settings):
    result = build(SCRIPTS / "morning.yaml", settings=settings)
    track = whole(result)
    fresh = build(SCRIPTS / "morning.yaml", settings=settings)  # reads from the track cache now
    for start in (0, 1, 12345, len(track) - 100, len(track) - 1):
        np.testing.assert_array_equal(result.read(start, 4096), track[start : start + 4096])
        np.testing.assert_array_equal(fresh.read(start, 4096), track[start : start + 4096])
    assert len(result.read(len(track) - 10, 100)) == 10


def test_live_build_gives_the_same_timeline_and_samples(settings, tmp_path):
    reference = build(SCRIPTS / "evening-jaw-release.yaml", settings=settings)
    track = whole(reference)
    live = LiveBuild(SCRIPTS / "evening-jaw-release.yaml", settings=Settings(engine="fake", cache_dir=tmp_path / "other"))
    pieces = [live.read(start, 50_000) for start in range(0, len(track), 50_000)]
    np.testing.assert_array_equal(np.concatenate(pieces), track)
    assert live.complete and live.timeline == reference.timeline
    assert live.steps == len(reference.timeline.chapters)


def test_live_build_chapters_grow_in_order(settings):
    live = LiveBuild(SCRIPTS / "morning.yaml", settings=settings)
    first = live.wait(chapters=1)
    assert len(first.chapters) >= 1 and first.chapters[0].start_sample == 0
    final = live.wait()
    *done, last = first.chapters  # the last may be the step still being scheduled: it only grows
    assert final.chapters[: len(done)] == tuple(done)
    assert final.chapters[len(done)].start_sample == last.start_sample <= last.end_sample
    assert final.chapters[len(done)].end_sample >= last.end_sample
    assert final.length_samples == final.chapters[-1].end_sample


class Trickle(FakeEngine):
    """Clips one at a time, slowly: the schedule waits for each (as with a cold Piper)."""

    def synthesize(self, texts, **kw):
        for text in texts:
            time.sleep(0.003)
            yield from super().synthesize([text], **kw)


def test_live_build_plays_the_first_phrase_before_the_first_step_is_scheduled(tmp_path, monkeypatch):
    monkeypatch.setitem(ENGINES, "trickle", EngineSpec(name="trickle", about="slow", create=Trickle))
    reference = build(SCRIPTS / "morning.yaml", settings=Settings(engine="fake", cache_dir=tmp_path / "ref"))
    track, final = whole(reference), reference.timeline
    seen = []
    live = LiveBuild(SCRIPTS / "morning.yaml", settings=Settings(engine="trickle", cache_dir=tmp_path / "live"))
    first = live.wait(chapters=1)  # what play waits for: the first step begun, not complete
    seen.append(first)
    assert first.chapters[0].end_sample < final.chapters[0].end_sample
    pieces = []
    for start in range(0, len(track), 20_000):
        pieces.append(live.read(start, 20_000))
        seen.append(live.timeline)
    np.testing.assert_array_equal(np.concatenate(pieces), track)  # the same samples, however it was read
    assert live.complete and live.timeline == final
    partial = [t for t in seen if t.chapters[-1].end_sample < final.chapters[len(t.chapters) - 1].end_sample]
    assert partial, "no step was ever played while it was being scheduled"
    for timeline in seen:  # what was published never changes: later ones only add after it
        known = {(e.start_sample, e.text or e.tone) for e in timeline.events}
        assert known <= {(e.start_sample, e.text or e.tone) for e in final.events}


def test_live_build_reports_engine_failures_to_the_reader(tmp_path, monkeypatch):
    class Broken(FakeEngine):
        def synthesize(self, texts, **kw):
            yield from super().synthesize(texts[:2], **kw)
            raise EngineError("espeak failed on 'x'")

    monkeypatch.setitem(ENGINES, "broken", EngineSpec(name="broken", about="fails", create=Broken))
    live = LiveBuild(SCRIPTS / "morning.yaml", settings=Settings(engine="broken", cache_dir=tmp_path))
    with pytest.raises(EngineError, match="espeak failed"):
        live.read(0, 10_000_000)
