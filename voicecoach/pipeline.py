"""The whole pipeline, top-down: script -> compile -> speech -> mix -> export.

``build()`` turns a routine file into a :class:`Build` (routine, timeline, the clips, and a
way to get the track's samples); ``export()`` writes it.  The track is cached by a key of
the timeline, the clips and the render settings, so an unchanged routine is neither
synthesized nor mixed again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np

from .cache import NOT_IN_KEY, Cache, default_cache_dir, settings_key
from .compile import (CompileSettings, Overflow, Section, collect_phrases, compile_timeline, iter_sections,
                      where_spoken)
from .errors import EngineError, VoicecoachError
from .estimate import estimate_samples
from .mix import MIX_VERSION, Mixer, RenderSettings, limiter_reach
from .model import EventKind, Routine, Timeline, flat_steps
from .script import load_routine
from .sound import SoundDesign, load_sound_design, probe_music
from .engines.base import Engine
from .engines import (AUTO, DEFAULT_ENGINE, ENGINES, SPEECH_SAMPLE_RATE, EngineChoice, choose_engine, get_engine,
                      list_voices, missing_engines, speaks)
from .languages import base as base_language
from .speech import Speech, SpeechSettings
from .vocab import Vocabulary, load_vocabulary

FULL_SAMPLE_RATE = 44100
"""The track's rate when it holds music or sound files (see :meth:`Settings.sample_rate_for`)."""

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as clips are made and chunks are mixed."""


@dataclass(frozen=True)
class Settings:
    """Command-line choices that override the routine or the defaults.

    >>> from voicecoach import load_routine
    >>> Settings(engine="fake").engine_for(load_routine("scripts/morning.yaml"))
    'fake'
    >>> Settings().sample_rate_for(load_routine("scripts/morning.yaml"))
    22050
    """

    engine: str | None = None
    """Speech engine name or ``auto``; ``None``: the routine's ``engine:``, else ``auto``."""
    voice: str | None = None
    """Voice overriding the routine's."""
    rate: Fraction | None = None
    """Speech speed overriding the routine's."""
    sample_rate: int | None = None
    """Samples per second of the track; ``None``: the routine's own (:meth:`sample_rate_for`)."""
    bitrate_kbps: int = 96
    """MP3 bitrate (constant, so chapter times stay exact to seek)."""
    mp3_quality: int = 5
    """LAME's algorithm quality, 0 (best, slowest) to 9; 5 is its "good quality, fast"."""
    jobs: int | None = field(default=None, metadata=NOT_IN_KEY)
    """Parallel synthesis workers; ``None`` uses every core."""
    cache_dir: Path | None = field(default=None, metadata=NOT_IN_KEY)
    """Cache folder; ``None``: ``$VOICECOACH_CACHE_DIR``, else the routine's project's
    ``audio_cache/``, else the user cache (see :func:`voicecoach.cache.locate_cache`)."""
    use_cache: bool = field(default=True, metadata=NOT_IN_KEY)
    """``False`` renders everything afresh and stores nothing."""
    strict_engine: bool = field(default=False, metadata=NOT_IN_KEY)
    """An engine asked for that cannot speak the routine's language is an error, not a fallback."""

    def cache_key(self) -> str:
        """What in these settings changes the output (not workers or the cache folder)."""
        return settings_key("settings", MIX_VERSION, self)

    def resolved(self, routine: Routine) -> "Settings":
        """These settings with what ``routine`` decides filled in: its engine, voice, rate and sample rate."""
        speech = self.speech_settings(routine)
        return dataclasses.replace(self, engine=self.engine_for(routine), voice=speech.voice, rate=speech.rate,
                                   sample_rate=speech.sample_rate)

    def engine_choice(self, routine: Routine) -> EngineChoice:
        """The engine and voice that speak ``routine`` (see engines.choose_engine): the command
        line's engine, else the routine's, else ``auto``; a note if it falls back."""
        asked = self.engine or routine.engine or DEFAULT_ENGINE
        # The routine's voice goes with its own engine (or with any, when it names none).
        own = self.engine is None or routine.engine in (None, AUTO, self.engine)
        voice = self.voice or (routine.voice if own else None)
        return choose_engine(asked, voice, routine.language, strict=self.strict_engine)

    def cache_folder(self, routine: Routine) -> Path:
        """The cache this routine uses: ``cache_dir``, or the one :func:`~voicecoach.cache.locate_cache` finds."""
        if self.cache_dir is not None:
            return self.cache_dir
        return default_cache_dir(routine.path if os.path.exists(routine.path) else None)

    def engine_for(self, routine: Routine) -> str:
        """The engine that speaks ``routine`` (never ``auto``: what it picks)."""
        return self.engine_choice(routine).engine

    def sample_rate_for(self, routine: Routine) -> int:
        """The track's rate: ``sample_rate`` if set.  Else 22,050 Hz for speech and tones alone,
        when the routine's voice speaks at no more (espeak-ng's and Piper's voices do): nothing
        then lies above 11 kHz, and 44.1 kHz would double the mixing, the encoding, the cache and
        a phone's decoding for nothing.  44,100 Hz with music or sound files (they may carry
        more), or a voice that speaks at a higher rate."""
        if self.sample_rate is not None:
            return self.sample_rate
        if routine.music is not None or routine.sounds:
            return FULL_SAMPLE_RATE
        try:
            choice = self.engine_choice(routine)
            voice_rate = ENGINES[choice.engine].voice_sample_rate(choice.voice or routine.language)
        except (KeyError, VoicecoachError):
            return FULL_SAMPLE_RATE  # an engine or voice that cannot speak: building it says why
        return SPEECH_SAMPLE_RATE if voice_rate <= SPEECH_SAMPLE_RATE else FULL_SAMPLE_RATE

    def for_routine(self, routine: Routine) -> "Settings":
        """These settings with ``routine``'s sample rate fixed: decided once (it looks up the
        engine and may read a voice model's config), then read by every stage."""
        return self if self.sample_rate is not None else dataclasses.replace(
            self, sample_rate=self.sample_rate_for(routine))

    def speech_settings(self, routine: Routine) -> SpeechSettings:
        return SpeechSettings(
            voice=self.engine_choice(routine).voice,
            language=routine.language,
            rate=self.rate if self.rate is not None else routine.rate,
            sample_rate=self.sample_rate_for(routine),
        )

    def compile_settings(self, routine: Routine) -> CompileSettings:
        return CompileSettings(sample_rate=self.sample_rate_for(routine))

    def render_settings(self, routine: Routine) -> RenderSettings:
        return RenderSettings(sample_rate=self.sample_rate_for(routine))


@dataclass
class Build:
    """A compiled routine: its timeline and the means to render its track (made by :func:`build`).

    >>> result = build("scripts/morning.yaml", settings=Settings(engine="fake", use_cache=False))
    >>> result.routine.title, len(result.timeline.chapters)
    ('Morning wake-up', 6)
    >>> samples = result.read(0, 4410)
    >>> samples.dtype.name, len(samples)
    ('int16', 4410)
    """

    routine: Routine
    timeline: Timeline
    speech: Speech
    cache: Cache
    render_settings: RenderSettings
    track_key: str
    track_was_cached: bool = field(default=False)
    sound: SoundDesign | None = field(default=None)
    """The routine's music and replacement tones (``None``: built-in tones, no music)."""
    notes: tuple[str, ...] = field(default=())
    """Worth telling the user, not an error: an engine that fell back (``path: ...``)."""
    _samples: np.ndarray | Mixer | None = field(default=None, repr=False)

    def chunks(self, *, progress: Progress | None = None, store: bool = True) -> Iterator[np.ndarray]:
        """The track's int16 samples in chunks: from the track cache, or mixed (and cached unless
        not ``store``: an export keeps its own output, and mixing from cached clips is quick)."""
        rate = self.render_settings.sample_rate
        cached = self.cache.track_chunks(self.track_key, sample_rate=rate, chunk_samples=self.render_settings.chunk_samples)
        if cached is not None:
            self.track_was_cached = True
            yield from cached
            return
        mixed = self.mixer().chunks()
        total = self.timeline.length_samples
        done = 0
        for chunk in (self.cache.put_track(self.track_key, mixed, sample_rate=rate) if store else mixed):
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
        return _mixer(self.timeline, self.speech, self.render_settings, self.sound)


def _mixer(timeline: Timeline, speech: Speech, settings: RenderSettings, sound: SoundDesign | None) -> Mixer:
    """The mixer of a (possibly partial) timeline: clips, tones or their replacements, music."""
    if sound is None:
        return Mixer(timeline, speech.clip, settings=settings)  # built-in tones, no music
    return Mixer(timeline, speech.clip, settings=settings, tone=sound.tone_samples,
                 background=sound.background(timeline))


@dataclass
class _Parts:
    """What every way of building starts from."""

    routine: Routine
    settings: Settings
    """The settings asked for, with the routine's sample rate fixed (:meth:`Settings.for_routine`)."""
    vocab: Vocabulary
    cache: Cache
    phrases: list[str]
    speech: Speech
    sound: SoundDesign
    notes: tuple[str, ...] = ()


def routine_vocabulary(routine: Routine) -> Vocabulary:
    """The routine's cue phrases: its language's vocabulary with its own ``cues:``."""
    return load_vocabulary(routine.language, location=routine.locs.get("language")).with_cues(routine.cues)


@contextlib.contextmanager
def about(routine: Routine) -> Iterator[None]:
    """Errors raised inside are placed in ``routine``'s file (at 1:1 when they name no line)."""
    try:
        yield
    except VoicecoachError as error:
        raise placed(error, routine) from None


def placed(error: VoicecoachError, routine: Routine) -> VoicecoachError:
    """``error`` placed in ``routine``'s file: an engine that failed on one phrase, where the
    routine says it; anything else naming no line, at 1:1."""
    if isinstance(error, EngineError) and error.text is not None and error.location is None:
        with contextlib.suppress(VoicecoachError):
            where = where_spoken(routine, error.text, vocab=routine_vocabulary(routine))
            if where is not None:
                return error.at(where)
    return error.at_file(routine.path)


def installed_engine(routine: Routine, settings: Settings) -> EngineChoice:
    """The engine (and voice) that speaks ``routine``; an error where the routine asks for an
    engine that is not installed, or (``strict_engine``) that cannot speak its language."""
    try:
        choice = settings.engine_choice(routine)
    except EngineError as error:  # --strict-engine: said where the routine asks for the engine
        if settings.engine is None and error.location is None:
            error.location = routine.locs.get("engine")
        raise
    missing = missing_engines()
    if choice.engine in missing:  # said where the routine asks for it
        raise VoicecoachError(f"the {choice.engine} engine is not installed",
                              location=None if settings.engine else routine.locs.get("engine"),
                              hint=f"install it with: {missing[choice.engine].install}")
    if not speaks(ENGINES[choice.engine], choice.voice, routine.language):
        raise _unspoken(routine, settings, choice)
    return choice


def _unspoken(routine: Routine, settings: Settings, choice: EngineChoice) -> EngineError:
    """The error for a voice (or a language) no installed engine speaks: at the routine's
    ``voice:`` (or ``language:``) line, with the voices there are for its language."""
    language = base_language(routine.language)
    ids = [voice.id for voice in list_voices(language=language)]
    shown = ", ".join(ids[:12]) + (", ..." if len(ids) > 12 else "")
    if choice.voice:
        location = routine.locs.get("voice") if settings.voice is None else None
        what = f"{choice.engine} has no voice {choice.voice!r}"
    else:
        location = routine.locs.get("language")
        what = f"no installed speech engine speaks the language {routine.language!r}"
    hint = f"voices for {language}: {shown} (all of them: voicecoach voices)" if ids else \
        "pick a voice or language from `voicecoach voices`"
    return EngineError(what, location=location, hint=hint)


def _parts(routine: Routine | str | os.PathLike, settings: Settings, on_clip: Callable[[str], None] | None) -> _Parts:
    if not isinstance(routine, Routine):
        routine = load_routine(routine)
    with about(routine):
        return _routine_parts(routine, settings, on_clip)


def _routine_parts(routine: Routine, settings: Settings, on_clip: Callable[[str], None] | None) -> _Parts:
    settings = settings.for_routine(routine)
    vocab = routine_vocabulary(routine)
    cache = Cache(settings.cache_folder(routine) if settings.use_cache else None)
    choice = installed_engine(routine, settings)
    engine = choice.engine
    speech = Speech(
        engine=get_engine(engine),
        cache=cache,
        settings=settings.speech_settings(routine),
        jobs=settings.jobs or os.cpu_count() or 1,
        on_clip=on_clip,
    )
    with contextlib.suppress(VoicecoachError):  # else said where the clips are made
        speech.voice_identity()  # first: a voice model new to this cache starts its engine now (Speech._file_hash)
    sound = load_sound_design(routine, sample_rate=speech.settings.sample_rate, cache=cache)
    notes = (f"{routine.path}: {choice.note}",) if choice.note else ()
    return _Parts(routine, settings, vocab, cache, collect_phrases(routine, vocab=vocab), speech, sound, notes)


def build(
    routine: Routine | str | os.PathLike,
    *,
    settings: Settings = Settings(),
    progress: Progress | None = None,
) -> Build:
    """Load (if given a path), synthesize what is missing and schedule the routine.

    Speech and the mixed track are cached (``settings.cache_dir``), so an unchanged routine
    is neither synthesized nor mixed again.

    >>> result = build("scripts/morning.yaml", settings=Settings(engine="fake", use_cache=False))
    >>> [chapter.title for chapter in result.timeline.chapters][:2]
    ['Warm-up taps', 'Brow lift against the fingers']
    """
    done = 0

    def on_clip(text: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress("speech", done, len(parts.phrases))

    parts = _parts(routine, settings, on_clip)
    with about(parts.routine):
        try:
            parts.speech.prepare(parts.phrases)
        finally:
            parts.speech.engine.close()
        timeline = compile_timeline(
            parts.routine,
            vocab=parts.vocab,
            speech_samples=parts.speech.samples,
            tone_samples=parts.sound.tone_length,
            settings=parts.settings.compile_settings(parts.routine),
            speech_rate=parts.speech.settings.rate,
        )
    render_settings = parts.settings.render_settings(parts.routine)
    return Build(
        routine=parts.routine,
        timeline=timeline,
        speech=parts.speech,
        cache=parts.cache,
        render_settings=render_settings,
        track_key=track_key(timeline, parts.speech, render_settings, sound=parts.sound),
        sound=parts.sound,
        notes=parts.notes,
    )


def synthesize_ahead(routines: Iterable[tuple[Routine, Settings]], *, jobs: int | None = None,
                     progress: Progress | None = None, engines: Mapping[str, Engine] | None = None) -> int:
    """Make, into their caches, every clip that building ``routines`` will need; how many were made.

    For a library export: the phrases of all routines spoken alike (the same engine, voice,
    speech settings and cache) go to one engine in one batch, so each voice model is loaded
    once, a phrase several routines share is made once, and every core synthesizes until the
    last phrase; the routines are then built from the cache (mixed, encoded) in parallel.  A
    routine that cannot be prepared (a bad vocabulary, an engine not installed) is left out,
    and a batch with a failing phrase stops: building the routines reports it, located.
    ``engines``: engines by name already started (a server loading its model), used instead of
    new ones; the caller closes them.
    """
    groups: dict[tuple[str, SpeechSettings, str], dict[str, None]] = {}
    for routine, settings in routines:
        if not settings.use_cache:
            continue  # nothing to keep the clips in
        try:
            with about(routine):
                choice = installed_engine(routine, settings)
                phrases = collect_phrases(routine, vocab=routine_vocabulary(routine))
                key = (choice.engine, settings.speech_settings(routine), os.fspath(settings.cache_folder(routine)))
        except VoicecoachError:
            continue
        groups.setdefault(key, {}).update(dict.fromkeys(phrases))
    total = sum(len(phrases) for phrases in groups.values())
    done = 0
    lock = threading.Lock()
    stop = threading.Event()
    running: list[Engine] = []  # every engine started, for stopping them from the calling thread

    def on_clip(text: str) -> None:
        nonlocal done
        with lock:
            done += 1
            if progress:
                progress("speech", done, total)

    def speak(batches: list[tuple[tuple[str, SpeechSettings, str], dict[str, None]]], made: list[int],
              given: dict[str, Engine]) -> None:
        """Make ``batches`` one after another, one engine per name (one espeak server for
        every language): ``given`` ones, else new ones, closed at the end."""
        started: dict[str, Engine] = {}
        try:
            for (name, speech_settings, folder), phrases in batches:
                if stop.is_set():
                    return
                engine = given.get(name) or started.get(name)
                if engine is None:
                    engine = started[name] = get_engine(name)
                with lock:
                    if engine not in running:
                        running.append(engine)
                speech = Speech(engine=engine, cache=Cache(folder), settings=speech_settings,
                                jobs=jobs or os.cpu_count() or 1, on_clip=on_clip)
                try:
                    # Longest first: the last phrases, short, leave a core idle only briefly.
                    speech.prepare(sorted(phrases, key=len, reverse=True))
                except VoicecoachError:
                    pass  # the routines' builds meet it again and say where
                made.append(speech.stats.synthesized)
        finally:
            for engine in started.values():
                engine.close()

    # The biggest batch here; the others meanwhile, one after another, in a thread: their
    # servers start and their speech is made while the big one's server loads its model and
    # while its last phrases leave a core idle (about 2 s of a 60 s library export on 2 cores).
    ordered = sorted(groups.items(), key=lambda group: -len(group[1]))
    made_here: list[int] = []
    made_alongside: list[int] = []
    failed: list[BaseException] = []
    # A given engine serves one thread only: the biggest batch's, or else the helper's.
    given = dict(engines or {})
    first = ordered[0][0][0] if ordered else None
    here = {first: given.pop(first)} if first in given else {}

    def speak_alongside() -> None:
        try:
            speak(ordered[1:], made_alongside, given)
        except BaseException as error:  # a bug: raised again in the calling thread
            failed.append(error)

    helper = threading.Thread(target=speak_alongside, name="voicecoach-speech", daemon=True)
    if len(ordered) > 1:
        helper.start()
    try:
        speak(ordered[:1], made_here, here)
        if helper.is_alive():
            helper.join()
    finally:
        if helper.is_alive():  # interrupted (Ctrl-C, SIGTERM): stop the others' servers too
            stop.set()
            with lock:
                for engine in running:
                    kill = getattr(engine, "kill", None)
                    if kill is not None:
                        kill()
            helper.join()
    if failed:
        raise failed[0]
    return sum(made_here) + sum(made_alongside)


class LiveBuild:
    """A build that can be played while it is still being made.

    One thread synthesizes the phrases in the order they are first spoken; another
    schedules the steps as their clips arrive.  ``timeline`` is what is scheduled so far
    (its chapters grow, in order, until ``complete``); while the schedule waits for a clip,
    its last chapter is the step as scheduled until then (so a player starts on the first
    phrase, not the whole first step).  ``read`` waits only for the span it is asked for.
    Clips, schedule and mix are all pure, so the samples are exactly those of :func:`build`
    and of an export.
    """

    def __init__(self, routine: Routine | str | os.PathLike, *, settings: Settings = Settings(),
                 progress: Progress | None = None) -> None:
        self.settings = settings
        self._progress = progress
        self._clips_made = 0
        self._ready = threading.Condition()
        self._error: BaseException | None = None
        self._sections: list[Section] = []
        self._partial: Section | None = None  # the step being scheduled, as far as it is
        self._final_samples = 0  # the track before this sample is scheduled for good
        self._complete = False
        self._mixer: Mixer | None = None
        self._mixer_timeline: Timeline | None = None
        self._track: np.ndarray | None = None
        self._track_looked_up = False
        self._parts = _parts(routine, settings, self._clip_arrived)
        self.routine = self._parts.routine
        self.render_settings = self._parts.settings.render_settings(self.routine)
        self.sample_rate = self.render_settings.sample_rate
        self.timeline = Timeline(self.routine.title, self.sample_rate, 0, (), ())
        self._threads = [
            threading.Thread(target=self._guard, args=(self._synthesize,), name="voicecoach-speech", daemon=True),
            threading.Thread(target=self._guard, args=(self._schedule,), name="voicecoach-schedule", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # -- background work ---------------------------------------------------------------

    def _guard(self, work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as error:  # handed to whoever waits next
            if isinstance(error, VoicecoachError):
                error = placed(error, self.routine)
            with self._ready:
                self._error = self._error or error
                self._ready.notify_all()

    def _synthesize(self) -> None:
        try:
            self._parts.speech.prepare(self._parts.phrases)
        finally:
            self._parts.speech.engine.close()

    def _clip_arrived(self, text: str) -> None:
        with self._ready:
            self._clips_made += 1
            self._ready.notify_all()
        if self._progress:
            self._progress("speech", self._clips_made, len(self._parts.phrases))

    def _clip_samples(self, text: str) -> int:
        speech = self._parts.speech
        with self._ready:
            while not speech.has_clip(text):
                self._raise_if_failed()
                self._ready.wait(0.5)
        return speech.samples(text)

    def _schedule(self) -> None:
        sections = iter_sections(
            self.routine,
            vocab=self._parts.vocab,
            speech_samples=self._clip_samples,
            tone_samples=self._parts.sound.tone_length,
            settings=self._parts.settings.compile_settings(self.routine),
            speech_rate=self._parts.speech.settings.rate,
            before_speech=self._before_speech,
        )
        for section in sections:
            with self._ready:
                self._sections.append(section)
                self._partial = None
                self._final_samples = section.chapter.end_sample
                self.timeline = self._snapshot()
                self._ready.notify_all()
        with self._ready:
            self._complete = True
            self.timeline = self._snapshot(final=True)
            self._ready.notify_all()

    def _before_speech(self, text: str, start_sample: int, so_far: Callable[[], Section]) -> None:
        """The schedule is about to measure ``text``'s clip: if it has to wait for it, what is
        scheduled before ``start_sample`` is published first (playable while the clip is made)."""
        if self._parts.speech.has_clip(text):
            return
        partial = so_far()
        with self._ready:
            self._partial = partial
            self._final_samples = max(self._final_samples, start_sample)
            self.timeline = self._snapshot()
            self._ready.notify_all()

    def _snapshot(self, *, final: bool = False) -> Timeline:
        sections = [*self._sections, self._partial] if self._partial is not None else self._sections
        events = tuple(e for s in sections for e in s.events)
        return Timeline(
            routine=self.routine.title,
            sample_rate=self.sample_rate,
            length_samples=sections[-1].chapter.end_sample,
            events=tuple(sorted(events, key=lambda e: (e.start_sample, e.kind.value))) if final else events,
            chapters=tuple(s.chapter for s in sections),
        )

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    # -- for players -------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return self._complete

    @property
    def steps(self) -> int:
        """How many chapters the routine will have (known before they are scheduled)."""
        return len(flat_steps(self.routine.steps))

    def wait(self, *, samples: int | None = None, chapters: int | None = None, timeout_s: float | None = None) -> Timeline:
        """Wait until the track is scheduled up to ``samples`` (or ``chapters`` chapters, or all of it)."""

        def ready() -> bool:
            if self._complete:
                return True
            if samples is not None:
                # the limiter (and the music's ducking) look a little past a span: what follows must be scheduled
                lookahead = limiter_reach(round(0.004 * self.sample_rate)) + self._parts.sound.lookahead_samples()
                return self._final_samples >= samples + lookahead
            if chapters is not None:  # the last one may be the step still being scheduled
                return len(self.timeline.chapters) >= chapters
            return False

        with self._ready:
            while not ready():
                self._raise_if_failed()
                if not self._ready.wait(timeout_s if timeout_s is not None else 0.5) and timeout_s is not None:
                    break
            self._raise_if_failed()
            return self.timeline

    def read(self, start_sample: int, count: int) -> np.ndarray:
        """Samples ``[start, start + count)`` (shorter at the end), waiting until they can be mixed."""
        self.wait(samples=start_sample + count)
        if self._complete and not self._track_looked_up:
            self._track_looked_up = True  # a finished routine may have its whole track cached
            built = self.build()
            self._track = built.cache.get_track(built.track_key, sample_rate=self.sample_rate)
        if self._track is not None:
            start = max(0, min(start_sample, len(self._track)))
            return np.asarray(self._track[start : start + max(0, count)])
        timeline = self.timeline
        if self._mixer is None or self._mixer_timeline is not timeline:
            self._mixer = _mixer(timeline, self._parts.speech, self.render_settings, self._parts.sound)
            self._mixer_timeline = timeline
        return self._mixer.render(start_sample, start_sample + count)

    def final_chunks(self) -> Iterator[np.ndarray]:
        """The whole track in order, each chunk as soon as it is final (while later steps are
        still being synthesized): exactly the samples of :meth:`Build.chunks`."""
        size = self.render_settings.chunk_samples
        start = 0
        while True:
            timeline = self.wait(samples=start + size)
            end = min(start + size, timeline.length_samples) if self._complete else start + size
            if end <= start:
                return
            yield self.read(start, end - start)
            start = end

    @property
    def cache(self) -> Cache:
        """The cache its clips (and its track, once finished) go to."""
        return self._parts.cache

    def synthesizing(self) -> bool:
        """Whether some clip was not in the cache (waits until every clip has been looked up)."""
        speech = self._parts.speech
        while not speech.looked_up.wait(0.1):
            with self._ready:
                self._raise_if_failed()
        return bool(speech.misses)

    def build(self) -> Build:
        """The finished :class:`Build` (waits until everything is scheduled)."""
        timeline = self.wait()
        return Build(
            routine=self.routine,
            timeline=timeline,
            speech=self._parts.speech,
            cache=self._parts.cache,
            render_settings=self.render_settings,
            track_key=track_key(timeline, self._parts.speech, self.render_settings, sound=self._parts.sound),
            sound=self._parts.sound,
            notes=self._parts.notes,
        )

    def close(self) -> None:
        """Stop synthesizing (a player that quits early); what is scheduled stays readable."""
        self._parts.speech.engine.close()
        # The speech thread ends with its engine; wait for it, so that a clip it was writing
        # (Ctrl-C, SIGTERM) has its temporary file removed before the process exits.
        self._threads[0].join(timeout=10)
        self._parts.cache.trim()

def track_key(timeline: Timeline, speech: Speech, render_settings: RenderSettings, *,
              sound: SoundDesign | None = None) -> str:
    """Everything that decides the track's samples: where each sound is and what it is."""
    events = [
        (e.kind.value, e.start_sample, e.length_samples,
         speech.key(e.text) if e.kind is EventKind.SPEECH else e.tone.value)  # type: ignore[union-attr]
        for e in timeline.events
    ]
    return settings_key("track", MIX_VERSION, render_settings, timeline.sample_rate, timeline.length_samples,
                        events, sound.key() if sound is not None else "")


def plan(routine: Routine | str | os.PathLike, *, settings: Settings = Settings(),
         overflow: Overflow | None = None) -> Timeline:
    """The timeline with estimated speech lengths, without synthesizing (``preview``, ``check``).

    Speech lengths come from the engine's measured speaking rate in the routine's language
    (estimate.py).  ``overflow`` is told of each cue that would likely not fit its slot.

    >>> timeline = plan("scripts/morning.yaml")
    >>> len(timeline.chapters), round(timeline.duration_s) > 60
    (6, True)
    """
    if not isinstance(routine, Routine):
        routine = load_routine(routine)
    with about(routine):
        vocab = routine_vocabulary(routine)
        rate = settings.rate if settings.rate is not None else routine.rate
        engine = settings.engine_for(routine)  # its measured speaking rate in the routine's language
        settings = settings.for_routine(routine)
        sample_rate = settings.sample_rate_for(routine)  # fixed: read, not looked up again
        sound = load_sound_design(routine, sample_rate=sample_rate, music=False)  # tones set the timing
        return compile_timeline(
            routine,
            vocab=vocab,
            speech_samples=lambda text: estimate_samples(text, engine=engine, language=routine.language,
                                                         sample_rate=sample_rate, rate=rate),
            tone_samples=sound.tone_length,
            settings=settings.compile_settings(routine),
            check_fit=overflow is not None,
            overflow=overflow,
            speech_rate=rate,
        )


def preflight(routine: Routine, *, settings: Settings = Settings()) -> None:
    """Raise what compiling ``routine`` would refuse and can be known without synthesizing:
    its vocabulary, its engine, its music file's header (``check``; sounds are read by :func:`plan`)."""
    with about(routine):
        routine_vocabulary(routine)
        installed_engine(routine, settings)
        probe_music(routine)


def check_output_path(out: str | os.PathLike) -> Path:
    """Refuse an unknown format (the format table lists the known ones) or a missing folder
    before any work is done."""
    from .formats import format_for_path  # the encoders are not needed to play: imported when writing

    path = Path(out)
    format_for_path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise VoicecoachError(f"output folder {str(folder)!r} does not exist", hint="create it first")
    if not os.access(folder, os.W_OK):
        raise VoicecoachError(f"output folder {str(folder)!r} is not writable", hint="choose another -o path")
    return path


def compile_to(
    routine: Routine | str | os.PathLike,
    out: str | os.PathLike,
    *,
    settings: Settings = Settings(),
    timeline_json: str | os.PathLike | None = None,
    captions: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> Build:
    """:func:`build` and :func:`export` in one: what ``voicecoach compile`` does.

    An MP3 or WAV whose speech is not all cached is encoded while the routine is still being
    synthesized: each stretch of the track is mixed and encoded as soon as the clips that
    decide it are made (as ``play`` plays it), the MP3's tag (its chapters) is written at the
    end, and the track goes into the cache under its key once that is known.  The bytes are
    those of :func:`build` then :func:`export`.

    >>> result = compile_to("scripts/morning.yaml", "morning.mp3", settings=Settings(engine="fake", use_cache=False))
    >>> result.routine.title
    'Morning wake-up'
    """
    from .encode import LateTimeline
    from .formats import format_for_path

    path = check_output_path(out)
    fmt = format_for_path(path)
    if not fmt.streaming:
        result = build(routine, settings=settings, progress=progress)
        export(result, path, settings=settings, timeline_json=timeline_json, captions=captions, progress=progress)
        return result
    live = LiveBuild(routine, settings=settings, progress=progress)
    try:
        if not live.synthesizing():  # every clip cached: the track may be too
            result = live.build()
            export(result, path, settings=settings, timeline_json=timeline_json, captions=captions, progress=progress)
            return result
        finished = functools.cache(live.build)  # asked for by the cache key, the tag and the caller
        chunks = live.cache.put_track(lambda: finished().track_key, live.final_chunks(), sample_rate=live.sample_rate)
        _write_track(chunks, path, fmt, LateTimeline(live.sample_rate, lambda: finished().timeline),
                     title=live.routine.title, settings=settings)
        result = finished()
        _write_sidecars(result.timeline, timeline_json, captions)
        return result
    finally:
        live.close()


def _write_track(chunks: Iterator[np.ndarray], path: Path, fmt, timeline, *, title: str, settings: Settings) -> None:
    """The track in ``fmt`` (a write error is the user's); ``chunks`` is closed now, whatever
    happens, not at garbage collection: a track half cached on Ctrl-C is removed."""
    from .encode import TrackTags
    from .formats import write_track

    try:
        write_track(chunks, path, fmt=fmt, timeline=timeline, tags=TrackTags(title=title, album="voicecoach routines"),
                    mp3_bitrate_kbps=settings.bitrate_kbps, mp3_quality=settings.mp3_quality)
    except OSError as error:
        raise _write_error(path, error) from None
    finally:
        chunks.close()


def _write_error(target: Path, error: OSError) -> VoicecoachError:
    return VoicecoachError(f"cannot write {str(target)!r}: {error.strerror or error}",
                           hint="free some disk space or choose a folder you may write to")


def _write_sidecars(timeline: Timeline, timeline_json: str | os.PathLike | None,
                    captions: str | os.PathLike | None) -> None:
    from . import sidecars

    for target, write in ((timeline_json, sidecars.write_timeline_json), (captions, sidecars.write_vtt)):
        if target is not None:
            try:
                write(timeline, target)
            except OSError as error:
                raise _write_error(Path(target), error) from None


def export(
    result: Build,
    out: str | os.PathLike,
    *,
    settings: Settings = Settings(),
    timeline_json: str | os.PathLike | None = None,
    captions: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write the track in the format its extension names, and, if asked, the timeline and captions.

    Every format of :data:`voicecoach.formats.FORMATS` works (MP3, M4B, Opus, FLAC with one
    chapter per step; WAV).  A file that cannot be written (full disk, no permission) is a
    :class:`VoicecoachError`; every file appears whole or not at all (files.atomic_write).

    Returns the path written.

    >>> result = build("scripts/morning.yaml", settings=Settings(engine="fake", use_cache=False))
    >>> str(export(result, "morning.m4b", timeline_json="morning.json"))
    'morning.m4b'
    """
    from .formats import OutputFormat, format_for_path

    path = check_output_path(out)
    fmt: OutputFormat = format_for_path(path)
    _write_track(result.chunks(progress=progress), path, fmt, result.timeline, title=result.routine.title,
                 settings=settings)
    _write_sidecars(result.timeline, timeline_json, captions)
    result.cache.trim()  # the run is done: back under the cache's size cap
    return path
