"""pipeline.py: Build and LiveBuild give the same samples, exports and reads agree."""

from __future__ import annotations

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
    assert final.chapters[: len(first.chapters)] == first.chapters
    assert final.length_samples == final.chapters[-1].end_sample


def test_live_build_reports_engine_failures_to_the_reader(tmp_path, monkeypatch):
    class Broken(FakeEngine):
        def synthesize(self, texts, **kw):
            yield from super().synthesize(texts[:2], **kw)
            raise EngineError("espeak failed on 'x'")

    monkeypatch.setitem(ENGINES, "broken", EngineSpec(name="broken", about="fails", create=Broken))
    live = LiveBuild(SCRIPTS / "morning.yaml", settings=Settings(engine="broken", cache_dir=tmp_path))
    with pytest.raises(EngineError, match="espeak failed"):
        live.read(0, 10_000_000)
