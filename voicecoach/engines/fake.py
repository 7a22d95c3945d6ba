"""A deterministic stand-in engine for tests and fast timing checks (``--engine fake``)."""

from __future__ import annotations

import zlib
from fractions import Fraction
from typing import Iterator

import numpy as np

from ..mix import process_clip
from .base import EngineSpec, VoiceInfo


class FakeEngine:
    """A two-tone hum whose length depends only on the text."""

    name = "fake"
    sample_rate = 22050
    PAD_S = Fraction(1, 20)

    def identity(self) -> str:
        return "fake-1"

    @staticmethod
    def clip_seconds(text: str) -> Fraction:
        """The hum's length, before padding: 0.25 s plus 55 ms a character."""
        return Fraction(1, 4) + Fraction(55, 1000) * len(text)

    def synthesize(
        self, texts: list[str], *, voice: str, rate: Fraction, sample_rate: int, jobs: int, timeout_s: float
    ) -> Iterator[tuple[str, np.ndarray]]:
        for text in texts:
            yield text, process_clip(self.render(text, rate=rate), source_rate=self.sample_rate, sample_rate=sample_rate)

    def render(self, text: str, *, rate: Fraction = Fraction(1)) -> np.ndarray:
        n = round(self.clip_seconds(text) / rate * self.sample_rate)
        pad = np.zeros(round(self.PAD_S * self.sample_rate), dtype=np.int16)
        t = np.arange(n) / self.sample_rate
        base = 150 + zlib.crc32(text.encode("utf-8")) % 200
        hum = 0.5 * np.sin(2 * np.pi * base * t) + 0.25 * np.sin(2 * np.pi * 2.5 * base * t)
        ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.005 * self.sample_rate))
        samples = np.round(hum * ramp * 20000).astype(np.int16)
        return np.concatenate([pad, samples, pad])

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("fake", "hum", "Test hum (no speech)", ("en",))]

    def close(self) -> None:
        pass


SPEC = EngineSpec(
    name="fake",
    about="hums instead of speaking: fast timing checks and tests",
    create=FakeEngine,
    speaks=False,
)
