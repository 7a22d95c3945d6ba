"""engines/espeak.py: the espeak-ng server's allocation settings change no sample."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

from voicecoach.engines.espeak import EspeakEngine

PHRASES = ["Atme langsam ein und halte die Spannung.", "Drei, zwei, eins.", "Lächeln, und loslassen!"]


def clips(engine: EspeakEngine) -> dict[str, bytes]:
    try:
        return {text: clip.tobytes() for text, clip in
                engine.synthesize(PHRASES, voice="de", rate=Fraction(1), sample_rate=22050, jobs=2, timeout_s=60)}
    finally:
        engine.close()


def test_the_espeak_server_allocates_in_huge_pages_and_says_the_same(monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    engine = EspeakEngine()
    try:
        engine.spawn()
        deadline = time.monotonic() + 10  # between fork and exec its environ reads empty
        while not (raw := Path(f"/proc/{engine._proc.pid}/environ").read_bytes()) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        engine.close()
    assert b"GLIBC_TUNABLES=glibc.malloc.hugetlb=1" in raw.split(b"\0")
    huge = clips(EspeakEngine())
    monkeypatch.setattr(EspeakEngine, "GLIBC_TUNABLES", "")
    assert clips(EspeakEngine()) == huge and len(huge) == len(PHRASES)
