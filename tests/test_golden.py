"""Golden timelines: every routine in scripts/ compiled with fixed fake clip lengths.

A change to scheduling shows up here as a diff of readable JSON.  After an intended change,
regenerate with ``VOICECOACH_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and
read the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from voicecoach.compile import CompileSettings, compile_timeline
from voicecoach.sidecars import timeline_to_json
from voicecoach.mix import tone_length
from voicecoach.script import load_routine
from voicecoach.engines.fake import FakeEngine
from voicecoach.timing import to_samples
from voicecoach.vocab import load_vocabulary

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
ROUTINES = sorted((ROOT / "scripts").glob("*.yaml"))
RATE = 44100


def fake_timeline(path: Path) -> dict:
    routine = load_routine(path)
    timeline = compile_timeline(
        routine,
        vocab=load_vocabulary(routine.language),
        speech_samples=lambda text: to_samples(FakeEngine.clip_seconds(text) / routine.rate, RATE),
        tone_samples=lambda tone: tone_length(tone, sample_rate=RATE),
        settings=CompileSettings(sample_rate=RATE),
    )
    return timeline_to_json(timeline)


def test_there_are_routines_to_check():
    assert len(ROUTINES) >= 3


@pytest.mark.parametrize("path", ROUTINES, ids=[p.stem for p in ROUTINES])
def test_golden_timeline(path):
    got = fake_timeline(path)
    golden = GOLDEN / f"{path.stem}.json"
    if os.environ.get("VOICECOACH_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(json.dumps(got, indent=1) + "\n", encoding="utf-8")
    assert golden.exists(), f"no golden file for {path.name}; run with VOICECOACH_UPDATE_GOLDEN=1"
    assert got == json.loads(golden.read_text(encoding="utf-8"))
