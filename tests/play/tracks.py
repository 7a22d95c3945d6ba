"""A small routine's timeline and a track whose every sample tells its own position (shared by tests/play).

The source's sample at position i is i % 30000 + 1 (never 0), so what a fake device pulled
shows exactly which samples were played, and where silence came instead.
"""

from __future__ import annotations

import numpy as np
import pytest

from voicecoach.pipeline import Settings, plan
from voicecoach.play.player import Player

from tests.play.test_status import RATE, ROUTINE  # the same small routine: Lift (exercise), Rest, Sweep (massage)

__all__ = ["RATE", "ROUTINE", "Track", "pull_all", "starts", "timeline", "track"]


class Track:
    """A source whose sample at position i is i % 30000 + 1."""

    def __init__(self, timeline) -> None:
        self.timeline = timeline
        self.samples = (np.arange(timeline.length_samples) % 30000 + 1).astype(np.int16)

    def read(self, start_sample: int, count: int) -> np.ndarray:
        start = max(0, min(start_sample, len(self.samples)))
        return self.samples[start : start + max(0, count)]


@pytest.fixture(scope="module")
def timeline(tmp_path_factory):
    path = tmp_path_factory.mktemp("player") / "routine.yaml"
    path.write_text(ROUTINE)
    return plan(path, settings=Settings(sample_rate=RATE))


@pytest.fixture
def track(timeline):
    return Track(timeline)


def pull_all(player: Player, total: int, chunk: int = 777) -> np.ndarray:
    """A fake device: pull ``total`` frames in chunks, keep what came."""
    got = [player.pull(min(chunk, total - done)) for done in range(0, total, chunk)]
    return np.concatenate(got)


def starts(timeline) -> list[int]:
    return [c.start_sample for c in timeline.chapters]
