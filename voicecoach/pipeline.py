"""The whole pipeline, top-down: script -> compile -> speech -> mix -> export.

``build()`` turns a routine file into a :class:`Build` (routine, timeline, the clips, and a
way to get the track's samples); ``export()`` writes it.  The track is cached by a key of
the timeline, the clips and the render settings, so an unchanged routine is neither
synthesized nor mixed again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import export as exporting
from .cache import Cache, default_cache_dir, digest
from .compile import CompileSettings, collect_phrases, compile_timeline, estimate_speech_samples
from .errors import VoicecoachError
from .mix import Mixer, RenderSettings, render, tone_length, tone_samples
from .model import EventKind, Routine, Timeline, Tone
from .script import load_routine
from .speech import Speech, SpeechSettings, get_engine
from .vocab import load_vocabulary

OUTPUT_FORMATS = (".mp3", ".wav")

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as clips are made and chunks are mixed."""


@dataclass(frozen=True)
class Settings:
    """Command-line choices that override the routine or the defaults."""

    engine: str = "espeak"
    """Speech engine name."""
    voice: str | None = None
    """Voice overriding the routine's."""
    rate: Fraction | None = None
    """Speech speed overriding the routine's."""
    sample_rate: int = 44100
    """Samples per second of the track."""
    bitrate_kbps: int = 96
    """MP3 bitrate (constant, so chapter times stay exact to seek)."""
    mp3_quality: int = 5
    """LAME's algorithm quality, 0 (best, slowest) to 9; 5 is its "good quality, fast"."""
    jobs: int | None = None
    """Parallel synthesis workers; ``None`` uses every core."""
    cache_dir: Path | None = None
    """Cache folder; ``None`` means ``$VOICECOACH_CACHE_DIR`` or ``audio_cache/``."""
    use_cache: bool = True
    """``False`` renders everything afresh and stores nothing."""

    def speech_settings(self, routine: Routine) -> SpeechSettings:
        return SpeechSettings(
            voice=self.voice or routine.voice,
            language=routine.language,
            rate=self.rate if self.rate is not None else routine.rate,
            sample_rate=self.sample_rate,
        )

    def compile_settings(self) -> CompileSettings:
        return CompileSettings(sample_rate=self.sample_rate)

    def render_settings(self) -> RenderSettings:
        return RenderSettings(sample_rate=self.sample_rate)


@dataclass
class Build:
    """A compiled routine: its timeline and the means to render its track."""

    routine: Routine
    timeline: Timeline
    speech: Speech
    cache: Cache
    render_settings: RenderSettings
    track_key: str
    track_was_cached: bool = field(default=False)
    _samples: np.ndarray | Mixer | None = field(default=None, repr=False)

    def chunks(self, *, progress: Progress | None = None) -> Iterator[np.ndarray]:
        """The track's int16 samples in chunks: from the track cache, or mixed (and cached)."""
        rate = self.render_settings.sample_rate
        cached = self.cache.get_track(self.track_key, sample_rate=rate)
        if cached is not None:
            self.track_was_cached = True
            step = self.render_settings.chunk_samples
            for start in range(0, len(cached), step):
                yield np.asarray(cached[start : start + step])
            return
        mixed = render(self.timeline, self.speech.clip, settings=self.render_settings, tone=self._tone)
        total = self.timeline.length_samples
        done = 0
        for chunk in self.cache.put_track(self.track_key, mixed, sample_rate=rate):
            done += len(chunk)
            if progress:
                progress("mixing", done, total)
            yield chunk

    def read(self, start_sample: int, count: int) -> np.ndarray:
        """Samples ``[start, start + count)`` of the track (shorter at its end): random access for players.

        Exactly the samples an export writes: from the cached track if there is one, else
        mixed for just this span (the mix of a span does not depend on the rest).
        """
        if self._samples is None:
            cached = self.cache.get_track(self.track_key, sample_rate=self.render_settings.sample_rate)
            self._samples = cached if cached is not None else self.mixer()
        if isinstance(self._samples, Mixer):
            return self._samples.render(start_sample, start_sample + max(0, count))
        start = max(0, min(start_sample, len(self._samples)))
        return np.asarray(self._samples[start : start + max(0, count)])

    def mixer(self) -> Mixer:
        return Mixer(self.timeline, self.speech.clip, settings=self.render_settings, tone=self._tone)

    def _tone(self, tone: Tone) -> np.ndarray:
        return tone_samples(tone, sample_rate=self.render_settings.sample_rate)


def build(
    routine: Routine | str | os.PathLike,
    *,
    settings: Settings = Settings(),
    progress: Progress | None = None,
) -> Build:
    """Load (if given a path), synthesize what is missing and schedule the routine."""
    if not isinstance(routine, Routine):
        routine = load_routine(routine)
    vocab = load_vocabulary(routine.language)
    cache = Cache((settings.cache_dir or default_cache_dir()) if settings.use_cache else None)
    phrases = collect_phrases(routine, vocab=vocab)
    done = 0

    def on_clip(text: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress("speech", done, len(phrases))

    speech = Speech(
        engine=get_engine(settings.engine),
        cache=cache,
        settings=settings.speech_settings(routine),
        jobs=settings.jobs or os.cpu_count() or 1,
        on_clip=on_clip,
    )
    try:
        speech.prepare(phrases)
    finally:
        speech.engine.close()
    rate = settings.sample_rate
    timeline = compile_timeline(
        routine,
        vocab=vocab,
        speech_samples=speech.samples,
        tone_samples=lambda tone: tone_length(tone, sample_rate=rate),
        settings=settings.compile_settings(),
    )
    render_settings = settings.render_settings()
    return Build(
        routine=routine,
        timeline=timeline,
        speech=speech,
        cache=cache,
        render_settings=render_settings,
        track_key=track_key(timeline, speech, render_settings),
    )


def track_key(timeline: Timeline, speech: Speech, render_settings: RenderSettings) -> str:
    """Everything that decides the track's samples: where each sound is and what it is."""
    events = [
        (e.kind.value, e.start_sample, e.length_samples,
         speech.key(e.text) if e.kind is EventKind.SPEECH else e.tone.value)  # type: ignore[union-attr]
        for e in timeline.events
    ]
    return digest("track", timeline.sample_rate, timeline.length_samples, events, render_settings.cache_key())


def plan(routine: Routine | str | os.PathLike, *, settings: Settings = Settings()) -> Timeline:
    """The timeline with estimated speech lengths, without synthesizing (``preview``)."""
    if not isinstance(routine, Routine):
        routine = load_routine(routine)
    vocab = load_vocabulary(routine.language)
    rate = settings.rate if settings.rate is not None else routine.rate
    return compile_timeline(
        routine,
        vocab=vocab,
        speech_samples=lambda text: estimate_speech_samples(text, sample_rate=settings.sample_rate, rate=rate),
        tone_samples=lambda tone: tone_length(tone, sample_rate=settings.sample_rate),
        settings=settings.compile_settings(),
        check_fit=False,
    )


def check_output_path(out: str | os.PathLike) -> Path:
    """Refuse an unknown format or a missing folder before any work is done."""
    path = Path(out)
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise VoicecoachError(
            f"cannot write {path.suffix or 'a file without extension'!r} output",
            location=None,
            hint=f"name the output file with one of: {', '.join(OUTPUT_FORMATS)}",
        )
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise VoicecoachError(f"output folder {str(folder)!r} does not exist", hint="create it first")
    if not os.access(folder, os.W_OK):
        raise VoicecoachError(f"output folder {str(folder)!r} is not writable", hint="choose another -o path")
    return path


def export(
    result: Build,
    out: str | os.PathLike,
    *,
    settings: Settings = Settings(),
    timeline_json: str | os.PathLike | None = None,
    captions: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write the track (MP3 or WAV by extension) and, if asked, the timeline and captions."""
    path = check_output_path(out)
    chunks = result.chunks(progress=progress)
    timeline = result.timeline
    if path.suffix.lower() == ".mp3":
        exporting.write_mp3(
            chunks,
            path,
            timeline=timeline,
            sample_rate=timeline.sample_rate,
            bitrate_kbps=settings.bitrate_kbps,
            quality=settings.mp3_quality,
            title=result.routine.title,
            album="voicecoach routines",
        )
    else:
        exporting.write_wav(chunks, path, sample_rate=timeline.sample_rate)
    if timeline_json is not None:
        exporting.write_timeline_json(timeline, timeline_json)
    if captions is not None:
        exporting.write_vtt(timeline, captions)
    return path
