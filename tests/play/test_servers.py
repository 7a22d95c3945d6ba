"""The test harness's own analysis (tests/play/servers.py): following the track through a recording."""

from __future__ import annotations

import numpy as np
import pytest

from tests.play.servers import RATE, junctions
from voicecoach.play.listen import acknowledgement


@pytest.mark.parametrize("ack_after_ms", [0, 5, 20, 60, 150, 300])
def test_a_jump_is_followed_when_the_acknowledgement_starts_a_little_after_it(ack_after_ms):
    """A "next": the track jumps, and the blips start up to a probe later (it used to read -2)."""
    track = (np.random.default_rng(1).standard_normal(RATE * 8) * 3000).astype(np.int16)
    ack = acknowledgement(RATE)
    recording = np.concatenate([track[: 2 * RATE], track[5 * RATE :]]).astype(np.int32)
    at = 2 * RATE + RATE * ack_after_ms // 1000
    recording[at : at + len(ack)] += ack[: len(recording) - at]
    recording = np.concatenate([np.zeros(1000, np.int32), np.clip(recording, -32768, 32767)]).astype(np.int16)
    _, found = junctions(recording, track, overlay=ack)
    assert [(j.left_at, j.resumed_at) for j in found] == [(2 * RATE, 5 * RATE)]
