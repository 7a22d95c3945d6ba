"""Routine -> Timeline: when every cue starts, exact to the sample.

Pure: the only inputs besides the routine are two measuring functions (how long a speech
clip and a tone are, in samples).  Real compiles measure synthesized clips; ``preview``
estimates; golden tests use a fake engine.

Two kinds of time:
- *Untimed* narration (names, instructions, tips, announcements) takes its measured length
  plus a short gap, moving a cursor forward.
- *Timed* cues (hold/count/release, strokes, breathing phases, rests) sit on a grid anchored
  at an integer sample ``t``: a cue ``x`` seconds later starts at ``t + to_samples(x)``, so
  onsets are exact and nothing drifts.  Speech that does not fit before the next timed onset
  is a :class:`TimingError` that names the step and what to change.

A ``[pause 2s]`` inside spoken text splits it into separate speech events with exactly that
much silence between them (the engines and the mixer never see the marker).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator

from .errors import Location, TimingError, VoicecoachError
from .model import (
    Breathe,
    Chapter,
    CountMode,
    Cue,
    Event,
    EventKind,
    Exercise,
    Massage,
    Rest,
    Routine,
    Say,
    Side,
    Step,
    StepKind,
    Timeline,
    Tone,
    flat_steps,
)
from .timing import has_pauses, split_pauses, to_samples
from .vocab import Vocabulary

SpeechMeasure = Callable[[str], int]
"""Length in samples of the (trimmed) clip of a text."""
ToneMeasure = Callable[[Tone], int]
"""Length in samples of a tone."""
Overflow = Callable[[TimingError], None]
"""Told of each cue that does not fit its slot, instead of stopping at the first (``check``)."""
BeforeSpeech = Callable[[str, int, Callable[[], "Section"]], None]
"""``before_speech(text, start_sample, so_far)``: called before a clip is measured, with its
text and where it starts -- everything before that sample is final -- and ``so_far()``, the
current step as scheduled until then (a player can start before the step is complete)."""

MAX_SPEECH_RATE = Fraction(2)
"""The fastest ``rate:`` a routine may set (script.py checks the same range)."""


@dataclass(frozen=True)
class CompileSettings:
    """Pacing constants and limits (the track's cache key covers the timeline they make)."""

    sample_rate: int = 44100
    """Samples per second of the timeline."""
    gap_s: Fraction = Fraction(3, 10)
    """Silence after each piece of untimed narration."""
    chime_lead_s: Fraction = Fraction(6, 10)
    """A step's name starts this long after its chime."""
    step_gap_s: Fraction = Fraction(1)
    """Silence between the end of one step and the chime of the next."""
    next_lead_s: Fraction = Fraction(1)
    """The "next up" announcement of a rest ends this long before the rest does."""
    tail_s: Fraction = Fraction(2)
    """Silence after the last sound."""
    max_duration_s: Fraction = Fraction(4 * 3600)
    """Longest routine accepted (4 hours)."""
    max_events: int = 50_000
    """Most cues accepted in one routine."""


@dataclass(frozen=True)
class Utterance:
    """Where a spoken text sits: from its first sample to the end of its last part or pause."""

    start_sample: int
    """Where it starts."""
    end_sample: int
    """One past its last sample (after a trailing ``[pause ...]``, if any)."""

    @property
    def length_samples(self) -> int:
        return self.end_sample - self.start_sample


@dataclass(frozen=True)
class Section:
    """One expanded step as scheduled: a chapter and its events."""

    chapter: Chapter
    events: tuple[Event, ...]


def step_title(step: Step, round_label: str = "") -> str:
    """The chapter title of a step: its name, with its round inside a repeat."""
    return f"{step.name} ({round_label})" if round_label else step.name


def compile_timeline(
    routine: Routine,
    *,
    vocab: Vocabulary,
    speech_samples: SpeechMeasure,
    tone_samples: ToneMeasure,
    settings: CompileSettings = CompileSettings(),
    check_fit: bool = True,
    overflow: Overflow | None = None,
    speech_rate: Fraction | None = None,
) -> Timeline:
    """Schedule the whole routine (see :func:`iter_sections`)."""
    sections = list(
        iter_sections(
            routine,
            vocab=vocab,
            speech_samples=speech_samples,
            tone_samples=tone_samples,
            settings=settings,
            check_fit=check_fit,
            overflow=overflow,
            speech_rate=speech_rate,
        )
    )
    events = tuple(e for s in sections for e in s.events)
    length = sections[-1].chapter.end_sample
    return Timeline(
        routine=routine.title,
        sample_rate=settings.sample_rate,
        length_samples=length,
        events=tuple(sorted(events, key=lambda e: (e.start_sample, e.kind.value))),
        chapters=tuple(s.chapter for s in sections),
    )


def iter_sections(
    routine: Routine,
    *,
    vocab: Vocabulary,
    speech_samples: SpeechMeasure,
    tone_samples: ToneMeasure,
    settings: CompileSettings = CompileSettings(),
    check_fit: bool = True,
    overflow: Overflow | None = None,
    speech_rate: Fraction | None = None,
    before_speech: BeforeSpeech | None = None,
) -> Iterator[Section]:
    """Schedule step by step, yielding each chapter as soon as it is known.

    Step ``k`` depends only on the lengths of clips in steps ``<= k``, so a player can start
    the first step while later ones are still being synthesized.  The intro belongs to the
    first chapter, the outro and finish to the last; chapters tile ``[0, length)``.

    A cue that does not fit its slot raises a :class:`TimingError` (``check_fit``), or is
    passed to ``overflow`` and scheduled anyway.  ``speech_rate`` (default: the routine's)
    is only for the advice of that error: how much faster speech would fit.  ``before_speech``:
    see :data:`BeforeSpeech` (what is placed later never starts before a clip told of).
    """
    plan = flat_steps(routine.steps)
    if not plan:
        raise VoicecoachError("the routine has no steps", location=routine.loc, hint="add at least one step")
    rate = routine.rate if speech_rate is None else speech_rate
    s = _Scheduler(vocab, speech_samples, tone_samples, settings, check_fit, overflow, rate)
    step_start = 0
    current = 0  # the step being scheduled (the intro belongs to the first)

    def chapter(end: int) -> Chapter:
        step, round_label = plan[current]
        return Chapter(title=step_title(step, round_label), step=current, start_sample=step_start,
                       end_sample=end, kind=step.kind, area=getattr(step, "area", None), loc=step.loc)

    if before_speech is not None:
        def tell(text: str, at: int) -> None:
            before_speech(text, at, lambda: Section(chapter(max(at, s.cursor, s.max_end())), tuple(s.events)))

        s.before_speech = tell
    s.speak(vocab.phrase("welcome", title=routine.title), Cue.INTRO, label="intro")
    if routine.intro:
        s.speak(routine.intro, Cue.INTRO, label="intro")
    for index, (step, round_label) in enumerate(plan):
        current = index
        s.begin_step(index, step)
        if index:
            step_start = s.cursor
        s.step_start = step_start
        next_step = _next_practice_step(plan, index)
        _SCHEDULE[step.kind](s, step, next_step)
        last = index == len(plan) - 1
        if last:
            _finish(s, routine)
            end = s.max_end() + s.samples(settings.tail_s)
        elif isinstance(step, Rest):
            end = s.cursor  # a rest is onset to onset: the next step starts exactly at its end
        else:
            end = max(s.cursor, s.max_end()) + s.samples(settings.step_gap_s)
        s.cursor = end
        yield Section(chapter=chapter(end), events=s.take_events())


def collect_phrases(routine: Routine, *, vocab: Vocabulary) -> list[str]:
    """Every distinct text the routine will speak, in first-spoken order."""
    seen: dict[str, None] = {}

    def measure(text: str) -> int:
        seen.setdefault(text, None)
        return 0

    for _ in iter_sections(routine, vocab=vocab, speech_samples=measure, tone_samples=lambda t: 0, check_fit=False):
        pass
    return list(seen)


def where_spoken(routine: Routine, text: str, *, vocab: Vocabulary) -> Location | None:
    """Where the routine's file says ``text`` first: its title (the welcome), ``intro:`` or
    ``outro:``, else the step being scheduled when it is first spoken (a cue of that step),
    else ``None``."""
    if text == vocab.phrase("welcome", title=routine.title) and routine.loc is not None:
        return routine.loc
    for key in ("intro", "outro"):
        if getattr(routine, key) == text and key in routine.locs:
            return routine.locs[key]
    plan = flat_steps(routine.steps)
    sections = 0
    found: int | None = None

    def measure(spoken: str) -> int:
        nonlocal found
        if spoken == text and found is None:
            found = sections
        return 0

    for _ in iter_sections(routine, vocab=vocab, speech_samples=measure, tone_samples=lambda t: 0, check_fit=False):
        if found is not None:
            break
        sections += 1
    if found is None or found >= len(plan):
        return None
    return plan[found][0].loc


def _next_practice_step(plan: list[tuple[Step, str]], index: int) -> Step | None:
    for step, _ in plan[index + 1 :]:
        if step.kind in (StepKind.EXERCISE, StepKind.MASSAGE, StepKind.BREATHE):
            return step
    return None


class _Scheduler:
    """A cursor over the track plus the events placed so far."""

    def __init__(
        self,
        vocab: Vocabulary,
        speech_samples: SpeechMeasure,
        tone_samples: ToneMeasure,
        settings: CompileSettings,
        check_fit: bool,
        overflow: Overflow | None,
        speech_rate: Fraction,
    ) -> None:
        self.vocab = vocab
        self.speech_samples = speech_samples
        self.tone_samples = tone_samples
        self.settings = settings
        self.check_fit = check_fit
        self.overflow = overflow
        self.speech_rate = speech_rate
        self.sample_rate = settings.sample_rate
        self.gap = self.samples(settings.gap_s)
        self.max_samples = self.samples(settings.max_duration_s)
        self.cursor = 0
        self.step_index = 0
        self.step_start = 0
        self.step: Step | None = None
        self.events: list[Event] = []
        self.total_events = 0
        self._max_end = 0
        self.before_speech: Callable[[str, int], None] | None = None

    def samples(self, seconds: Fraction | int) -> int:
        return to_samples(seconds, self.sample_rate)

    def begin_step(self, index: int, step: Step) -> None:
        self.step_index = index
        self.step = step

    def take_events(self) -> tuple[Event, ...]:
        events, self.events = tuple(self.events), []
        return events

    def max_end(self) -> int:
        return self._max_end

    def _add(self, event: Event) -> Event:
        self.total_events += 1
        if self.total_events > self.settings.max_events:
            raise VoicecoachError(
                f"the routine has more than {self.settings.max_events:,} cues (the limit)",
                location=self.step.loc if self.step else None,
                hint="use fewer reps, strokes, sets or repeats",
            )
        if event.end_sample > self.max_samples:
            hours = float(self.settings.max_duration_s / 3600)
            raise VoicecoachError(
                f"the routine would last more than {hours:g} hours (the limit)",
                location=self.step.loc if self.step else None,
                hint="shorten holds, rests, repeats or split it into several routines",
            )
        self.events.append(event)
        self._max_end = max(self._max_end, event.end_sample)
        return event

    def speak(self, text: str, cue: Cue, *, label: str = "") -> Utterance:
        """Untimed narration at the cursor; the cursor moves past it and a gap."""
        spoken = self.speak_at(text, cue, self.cursor, label)
        self.cursor = spoken.end_sample + self.gap
        return spoken

    def timed(
        self, text: str, cue: Cue, *, at: int, slot_end: int, label: str = "", fix: Callable[[int], str]
    ) -> Utterance:
        """Speech on the grid at sample ``at`` that must end by ``slot_end``.

        ``fix(needed_samples)`` says what to change in the routine when it does not fit;
        a faster ``rate:`` is added when one would do.
        """
        event = self.speak_at(text, cue, at, label)
        if self.check_fit and event.end_sample > slot_end:
            clip_s = event.length_samples / self.sample_rate
            slot_s = (slot_end - at) / self.sample_rate
            hint = fix(event.length_samples)
            faster = self.faster_rate(event.length_samples, slot_end - at)
            if faster is not None:
                hint += f", or speak faster with rate: {float(faster):g}"
            self.overflowed(TimingError(
                f"{_describe(self.step)}: the {cue.value} cue {text!r} takes {clip_s:.2f} s "
                f"but its slot is {slot_s:.2f} s",
                location=self.step.loc if self.step else None,
                hint=hint,
            ))
        return event

    def overflowed(self, error: TimingError) -> None:
        """Speech that does not fit: an error, or a report to ``overflow`` (then scheduling goes on)."""
        if self.overflow is None:
            raise error
        self.overflow(error)

    def faster_rate(self, needed_samples: int, slot_samples: int) -> Fraction | None:
        """The ``rate:`` (in steps of 0.05) at which speech of ``needed_samples`` fits its slot, if any."""
        if slot_samples <= 0:
            return None
        step = Fraction(1, 20)
        faster = math.ceil(self.speech_rate * needed_samples / slot_samples / step) * step
        return faster if faster <= MAX_SPEECH_RATE else None

    def shorter_text(self, text: str, needed_samples: int, slot_samples: int) -> str:
        """"about N letters": how long a text of this speaker would fit the slot (at least 1)."""
        letters = sum(c.isalnum() for c in text)
        return f"about {max(1, math.floor(letters * slot_samples / needed_samples))} letters"

    def tone(self, tone: Tone, cue: Cue, *, at: int, label: str = "") -> Event:
        return self._add(
            Event(
                kind=EventKind.TONE,
                cue=cue,
                start_sample=at,
                length_samples=self.tone_samples(tone),
                step=self.step_index,
                tone=tone,
                label=label,
            )
        )

    def speak_at(self, text: str, cue: Cue, at: int, label: str) -> Utterance:
        """``text`` from sample ``at``: one event, or one per part around its ``[pause ...]``s."""
        t = at
        for words, pause_s in self._parts(text):
            if words:
                if self.before_speech is not None:
                    self.before_speech(words, t)
                event = Event(
                    kind=EventKind.SPEECH,
                    cue=cue,
                    start_sample=t,
                    length_samples=self.speech_samples(words),
                    step=self.step_index,
                    text=words,
                    label=label,
                )
                t = self._add(event).end_sample
            t += self.samples(pause_s)
        return Utterance(at, t)

    def utterance_samples(self, text: str) -> int:
        """How long :meth:`_speech` makes ``text``, pauses included, without placing it."""
        return sum(self.speech_samples(words) if words else 0 for words, _ in self._parts(text)) + sum(
            self.samples(pause_s) for _, pause_s in self._parts(text))

    def _parts(self, text: str) -> list[tuple[str, Fraction]]:
        """The spoken parts of ``text`` (around its pauses), written out as said: no engine reads
        a symbol or a duration (``1m30s`` -> "one minute thirty seconds"; see spoken.py)."""
        spoken = self.vocab.spoken
        if not has_pauses(text):
            return [(spoken(text), Fraction(0))]
        try:
            return [(spoken(words), pause_s) for words, pause_s in split_pauses(text)]
        except ValueError as error:  # script.py checks routine text; this is a phrase made elsewhere
            raise VoicecoachError(f"{_describe(self.step)}: {error}", location=self.step.loc if self.step else None,
                                  hint="write a pause like [pause 2s]") from None

    def seconds_needed(self, samples: int, step_s: Fraction = Fraction(1, 10)) -> str:
        """A duration of at least ``samples``, rounded up to ``step_s``, written like ``1.4s``."""
        needed = Fraction(samples, self.sample_rate)
        rounded = math.ceil(needed / step_s) * step_s
        return f"{float(rounded):g}s"


def _describe(step: Step | None) -> str:
    if step is None:
        return "routine"
    return f"{step.kind.value} {step.name!r}"


def _start_step(s: _Scheduler, key: str, name: str, say: str = "", tip: str = "") -> None:
    """Chime, then the step's name, instructions and tip."""
    s.tone(Tone.CHIME, Cue.START, at=s.cursor, label="start")
    s.cursor += s.samples(s.settings.chime_lead_s)
    s.speak(s.vocab.phrase(key, name=name), Cue.NAME, label="instructions")
    if say:
        s.speak(say, Cue.SAY, label="instructions")
    if tip:
        s.speak(tip, Cue.TIP, label="instructions")


def _announce_side(s: _Scheduler, side: Side, sides: tuple[Side, ...]) -> None:
    if side is not Side.BOTH or len(sides) > 1:
        s.speak(s.vocab.phrase(f"side_{side.value}"), Cue.SIDE, label=f"{side.value} side")


def _schedule_say(s: _Scheduler, step: Say, next_step: Step | None) -> None:
    s.speak(step.text, Cue.SAY, label="narration")


def _schedule_exercise(s: _Scheduler, step: Exercise, next_step: Step | None) -> None:
    _start_step(s, "exercise", step.name, step.say, step.tip)
    hold = s.samples(step.hold_s)
    release = s.samples(step.release_s)
    for side in step.sides:
        _announce_side(s, side, step.sides)
        for set_no in range(1, step.sets + 1):
            if step.sets > 1:
                s.speak(
                    s.vocab.phrase("set_n_of", n=s.vocab.number(set_no), total=s.vocab.number(step.sets)),
                    Cue.SET,
                    label=f"set {set_no} of {step.sets}",
                )
            for rep in range(1, step.reps + 1):
                _schedule_rep(s, step, rep, hold, release)
            if set_no < step.sets:
                t = s.cursor
                s.timed(
                    s.vocab.phrase("rest_between_sets"),
                    Cue.REST,
                    at=t,
                    slot_end=t + s.samples(step.rest_s),
                    label="rest",
                    fix=lambda n: f"set rest to at least {s.seconds_needed(n)}",
                )
                s.cursor = t + s.samples(step.rest_s)


def _schedule_rep(s: _Scheduler, step: Exercise, rep: int, hold: int, release: int) -> None:
    reps = step.reps
    if reps > 1 and rep == reps:
        s.speak(s.vocab.phrase("last_one"), Cue.REP, label=f"rep {rep} of {reps}")
    if step.cue:
        s.speak(step.cue, Cue.REP, label=f"rep {rep} of {reps}")
    t = s.cursor
    whole_seconds = [k for k in range(1, math.ceil(step.hold_s)) if k < step.hold_s]
    onsets = [t + s.samples(k) for k in whole_seconds] + [t + hold]
    hold_label = f"hold {rep} of {reps}"
    hold_text = s.vocab.phrase("hold")
    s.timed(
        hold_text,
        Cue.HOLD,
        at=t,
        slot_end=onsets[0],
        label=hold_label,
        fix=lambda n: _hold_cue_fix(s, hold_text, n, onsets[0] - t),
    )
    top = math.ceil(step.hold_s)
    for i, k in enumerate(whole_seconds):
        at = onsets[i]
        if step.count is CountMode.NONE:
            s.tone(Tone.TICK, Cue.COUNT, at=at, label=hold_label)
            continue
        number = top - k if step.count is CountMode.DOWN else k
        s.timed(
            s.vocab.number(number),
            Cue.COUNT,
            at=at,
            slot_end=onsets[i + 1],
            label=hold_label,
            fix=lambda n, slot=onsets[i + 1] - at: (
                "make hold a whole number of seconds or use count: none (ticks instead of numbers)"
                if slot < s.samples(1) else "use count: none (ticks instead of numbers)"),
        )
    release_at = t + hold
    s.tone(Tone.BELL, Cue.RELEASE, at=release_at, label=f"release {rep} of {reps}")
    s.timed(
        s.vocab.phrase("release"),
        Cue.RELEASE,
        at=release_at,
        slot_end=release_at + release,
        label=f"release {rep} of {reps}",
        fix=lambda n: f"set release to at least {s.seconds_needed(n)}",
    )
    s.cursor = release_at + release


def _hold_cue_fix(s: _Scheduler, text: str, needed: int, slot: int) -> str:
    """What makes the hold cue fit: its slot lasts until the first count (1 s), or the release
    of a shorter hold -- so a shorter cue, or a longer hold while it is under a second."""
    fixes = [f"use a shorter hold cue: cues: hold: with {s.shorter_text(text, needed, slot)}"]
    if slot < s.samples(1) and needed <= s.samples(1):
        fixes.append(f"make hold at least {s.seconds_needed(needed)}")
    return ", or ".join(fixes)


def _schedule_massage(s: _Scheduler, step: Massage, next_step: Step | None) -> None:
    _start_step(s, "massage", step.name, step.say)
    if step.stroke:
        s.speak(step.stroke, Cue.SAY, label="instructions")
    if step.pressure is not None:
        s.speak(s.vocab.phrase(f"pressure_{step.pressure.value}"), Cue.PRESSURE, label="instructions")
    if step.tip:
        s.speak(step.tip, Cue.TIP, label="instructions")
    for side in step.sides:
        _announce_side(s, side, step.sides)
        t0 = s.cursor
        for k in range(1, step.strokes + 1):
            at = t0 + s.samples((k - 1) * step.tempo_s)
            slot_end = t0 + s.samples(k * step.tempo_s)
            label = f"stroke {k} of {step.strokes}"
            if step.count or step.cue:
                text = s.vocab.number(k) if step.count else step.cue
                s.timed(
                    text,
                    Cue.STROKE,
                    at=at,
                    slot_end=slot_end,
                    label=label,
                    fix=lambda n, text=text, slot=slot_end - at: f"set tempo to at least {s.seconds_needed(n)}, or " + (
                        "set count: false" if step.count else f"use a shorter cue ({s.shorter_text(text, n, slot)})"),
                )
            else:
                s.tone(Tone.TICK, Cue.STROKE, at=at, label=label)
        # from exact multiples of the tempo, never by adding rounded tempos: nothing drifts
        s.cursor = t0 + s.samples(step.strokes * step.tempo_s)


def _schedule_breathe(s: _Scheduler, step: Breathe, next_step: Step | None) -> None:
    _start_step(s, "breathe", step.name, step.say)
    hold_s = step.hold_s or Fraction(0)
    phases = [("breathe_in", Fraction(0), step.inhale_s, "inhale")]
    if hold_s:
        phases.append(("breathe_hold", step.inhale_s, hold_s, "hold"))
    phases.append(("breathe_out", step.inhale_s + hold_s, step.exhale_s, "exhale"))
    for cycle in range(1, step.cycles + 1):
        t = s.cursor
        for key, offset_s, length_s, field_name in phases:
            at = t + s.samples(offset_s)
            s.timed(
                s.vocab.phrase(key),
                Cue.BREATHE,
                at=at,
                slot_end=t + s.samples(offset_s + length_s),
                label=f"{key.replace('_', ' ')} {cycle} of {step.cycles}",
                fix=lambda n, f=field_name: f"set {f} to at least {s.seconds_needed(n)}",
            )
        s.cursor = t + s.samples(step.inhale_s + hold_s + step.exhale_s)


def _schedule_rest(s: _Scheduler, step: Rest, next_step: Step | None) -> None:
    t = s.cursor
    end = t + s.samples(step.duration_s)
    announce = s.timed(
        s.vocab.phrase("rest_for", duration=s.vocab.duration(step.duration_s)),
        Cue.REST,
        at=t,
        slot_end=end,
        label="rest",
        fix=lambda n: f"make the rest at least {s.seconds_needed(n)}",
    )
    if next_step is not None:
        text = s.vocab.phrase("next_up", name=next_step.name)
        length = s.utterance_samples(text)
        at = end - s.samples(s.settings.next_lead_s) - length
        earliest = announce.end_sample + s.gap
        if at < earliest:
            if s.check_fit:
                needed = (announce.length_samples + s.gap + length) + s.samples(s.settings.next_lead_s)
                s.overflowed(TimingError(
                    f"rest: {float(step.duration_s):g} s is too short to announce the rest and what comes next",
                    location=step.loc,
                    hint=f"make the rest at least {s.seconds_needed(needed, Fraction(1))}",
                ))
            at = earliest
        s.speak_at(text, Cue.NEXT, at, "rest")
    s.cursor = end


def _finish(s: _Scheduler, routine: Routine) -> None:
    """The outro after the last step: its text, then the finish tone and phrase."""
    s.cursor = max(s.cursor, s.max_end()) + s.samples(s.settings.step_gap_s)
    if routine.outro:
        s.speak(routine.outro, Cue.OUTRO, label="finish")
    s.tone(Tone.FINISH, Cue.FINISH, at=s.cursor, label="finish")
    s.cursor += s.samples(s.settings.chime_lead_s)
    if not routine.outro:
        s.speak(s.vocab.phrase("finish"), Cue.FINISH, label="finish")


_SCHEDULE: dict[StepKind, Callable[[_Scheduler, Step, Step | None], None]] = {
    StepKind.SAY: _schedule_say,  # type: ignore[dict-item]
    StepKind.EXERCISE: _schedule_exercise,  # type: ignore[dict-item]
    StepKind.MASSAGE: _schedule_massage,  # type: ignore[dict-item]
    StepKind.BREATHE: _schedule_breathe,  # type: ignore[dict-item]
    StepKind.REST: _schedule_rest,  # type: ignore[dict-item]
}


__all__ = [
    "CompileSettings",
    "Section",
    "compile_timeline",
    "iter_sections",
    "collect_phrases",
    "step_title",
]
