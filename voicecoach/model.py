"""The data model shared by every pipeline stage.

A :class:`Routine` is what a script says (script.py builds it); a :class:`Timeline` is when
each sound starts, in whole samples (compile.py builds it).  All frozen: stages pass them on,
never change them.  Durations in the routine are exact :class:`~fractions.Fraction` seconds;
the timeline is in integer samples (see timing.py for the one conversion).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Mapping, Union

from .errors import Location
from .grammar import count
from .timing import strip_pauses


class Area(enum.Enum):
    """Part of the face a step works on."""

    FOREHEAD = "forehead"
    BROWS = "brows"
    EYES = "eyes"
    CHEEKS = "cheeks"
    MOUTH = "mouth"
    JAW = "jaw"
    CHIN = "chin"
    NECK = "neck"
    TEMPLES = "temples"
    FACE = "face"

    @property
    def is_plural_noun(self) -> bool:
        """Whether the name is a plural noun: "the cheeks have", but "the jaw has"."""
        return self in (Area.BROWS, Area.EYES, Area.CHEEKS, Area.TEMPLES)


class Side(enum.Enum):
    LEFT = "left"
    RIGHT = "right"
    BOTH = "both"


class CountMode(enum.Enum):
    """How a hold is counted: numbers down, numbers up, or ticks only."""

    DOWN = "down"
    UP = "up"
    NONE = "none"


class Pressure(enum.Enum):
    LIGHT = "light"
    MEDIUM = "medium"
    FIRM = "firm"


class StepKind(enum.Enum):
    SAY = "say"
    EXERCISE = "exercise"
    MASSAGE = "massage"
    REST = "rest"
    BREATHE = "breathe"
    REPEAT = "repeat"


def _no_locs() -> Mapping[str, Location]:
    return {}


@dataclass(frozen=True)
class Say:
    """Narration spoken at its natural length."""

    text: str
    """What to say."""
    loc: Location
    """Where the step starts in its file."""
    kind: StepKind = field(default=StepKind.SAY, init=False)

    @property
    def name(self) -> str:
        """A short title for chapters: the first words of the text (``Pause`` for a silence)."""
        words = strip_pauses(self.text).split() or ["Pause"]
        short = " ".join(words[:6])
        return short + ("..." if len(words) > 6 else "")


@dataclass(frozen=True)
class Exercise:
    """Muscles working against resistance or holding a position, in reps and sets."""

    name: str
    """Spoken title of the exercise."""
    loc: Location
    """Where the step starts in its file."""
    area: Area | None = None
    """Face area worked (used by check rules and the practice log)."""
    say: str = ""
    """Instructions, spoken once before the first rep."""
    tip: str = ""
    """Spoken once after the instructions."""
    cue: str = ""
    """What to do on each rep, spoken before each rep's hold begins."""
    reps: int = 1
    """Repetitions per set."""
    hold_s: Fraction = Fraction(5)
    """Seconds each rep is held; the release cue starts exactly this long after the hold cue."""
    release_s: Fraction = Fraction(2)
    """Relax time after each rep, onset of the release cue to the onset of what follows."""
    sets: int = 1
    """Sets per side."""
    rest_s: Fraction = Fraction(10)
    """Rest between sets, onset to onset."""
    sides: tuple[Side, ...] = (Side.BOTH,)
    """Each side does all sets; ``(BOTH,)`` means no side announcement."""
    count: CountMode = CountMode.DOWN
    """How the hold is counted."""
    locs: Mapping[str, Location] = field(default_factory=_no_locs, compare=False, repr=False)
    """Where each field was written, for messages that point at the field to change."""
    kind: StepKind = field(default=StepKind.EXERCISE, init=False)


@dataclass(frozen=True)
class Massage:
    """Strokes at a steady tempo, each marked by a tick, a one-word cue or its number."""

    name: str
    """Spoken title of the massage."""
    loc: Location
    """Where the step starts in its file."""
    area: Area | None = None
    """Face area massaged."""
    say: str = ""
    """Instructions, spoken once before the strokes."""
    stroke: str = ""
    """The motion, spoken with the instructions."""
    strokes: int = 8
    """Strokes per side."""
    tempo_s: Fraction = Fraction(2)
    """Seconds per stroke: stroke k starts exactly (k-1) * tempo after the first."""
    sides: tuple[Side, ...] = (Side.BOTH,)
    """Each side does all strokes."""
    count: bool = False
    """Speak stroke numbers instead of ticks."""
    cue: str = ""
    """A short word spoken on every stroke instead of a tick (``count`` wins)."""
    pressure: Pressure | None = None
    """Spoken with the instructions."""
    tip: str = ""
    """Spoken once after the instructions."""
    locs: Mapping[str, Location] = field(default_factory=_no_locs, compare=False, repr=False)
    """Where each field was written."""
    kind: StepKind = field(default=StepKind.MASSAGE, init=False)


@dataclass(frozen=True)
class Rest:
    """A pause that announces itself and, before it ends, what comes next."""

    duration_s: Fraction
    """Length of the rest, onset of its announcement to the onset of the next step."""
    loc: Location
    """Where the step starts in its file."""
    locs: Mapping[str, Location] = field(default_factory=_no_locs, compare=False, repr=False)
    kind: StepKind = field(default=StepKind.REST, init=False)

    @property
    def name(self) -> str:
        return "Rest"


@dataclass(frozen=True)
class Breathe:
    """Paced breathing: in, optional hold, out, for a number of cycles."""

    name: str
    """Spoken title."""
    loc: Location
    """Where the step starts in its file."""
    inhale_s: Fraction = Fraction(4)
    """Seconds breathing in, onset to onset."""
    exhale_s: Fraction = Fraction(6)
    """Seconds breathing out, onset to onset."""
    hold_s: Fraction | None = None
    """Seconds holding the breath after the inhale, if any."""
    cycles: int = 3
    """Number of breaths."""
    say: str = ""
    """Instructions spoken once before the first breath."""
    locs: Mapping[str, Location] = field(default_factory=_no_locs, compare=False, repr=False)
    kind: StepKind = field(default=StepKind.BREATHE, init=False)


@dataclass(frozen=True)
class Repeat:
    """Its steps, ``times`` times over."""

    times: int
    """How many rounds."""
    steps: tuple["Step", ...]
    """The steps of one round."""
    loc: Location
    """Where the step starts in its file."""
    kind: StepKind = field(default=StepKind.REPEAT, init=False)

    @property
    def name(self) -> str:
        return f"Repeat {count(self.times, 'time')}"


Step = Union[Say, Exercise, Massage, Rest, Breathe, Repeat]


@dataclass(frozen=True)
class Routine:
    """A whole routine script, includes resolved, ready to compile.

    >>> from voicecoach import load_routine
    >>> routine = load_routine("scripts/morning.yaml")
    >>> routine.title, routine.language, len(routine.steps)
    ('Morning wake-up', 'en', 6)
    """

    title: str
    """Spoken at the start; the album/title tag of exports."""
    steps: tuple[Step, ...]
    """The steps in order (``Repeat`` kept as written; compile expands it)."""
    path: str = "<routine>"
    """The file it came from."""
    description: str = ""
    """What the routine is for (not spoken)."""
    language: str = "en"
    """Language of the cues and of the voice."""
    voice: str | None = None
    """Engine voice name; ``None`` picks the language's default voice."""
    rate: Fraction = Fraction(1)
    """Speech speed multiplier."""
    intro: str = ""
    """Spoken after the title, before the first step."""
    outro: str = ""
    """Spoken after the last step."""
    loc: Location | None = None
    """Where ``routine:`` is written."""
    engine: str | None = None
    """Speech engine (``auto``, ``espeak``, ``piper``); ``None``: the command line's choice, else ``auto``."""
    cues: tuple[tuple[str, str], ...] = ()
    """Cue phrases replacing the vocabulary's: ``(key, template)`` pairs as written under ``cues:``."""
    music: "Music | None" = None
    """A background track under the whole routine."""
    sounds: tuple["Sound", ...] = ()
    """Files replacing built-in tones."""
    locs: Mapping[str, Location] = field(default_factory=_no_locs, compare=False, repr=False)
    """Where each top-level key is written (e.g. ``language``), for located errors."""


@dataclass(frozen=True)
class Music:
    """A background track: looped or trimmed to the routine, ducked under speech."""

    file: str
    """Real path of the audio file (as written when the routine was not read from a file)."""
    loc: Location
    """Where ``file:`` is written."""
    volume: Fraction = Fraction(1)
    """Multiplier on the music's normalized loudness (0 to 2)."""
    duck_db: Fraction = Fraction(18)
    """How far the music is lowered under speech, in dB."""


@dataclass(frozen=True)
class Sound:
    """A file that replaces one built-in tone."""

    tone: "Tone"
    """The tone it replaces."""
    file: str
    """Real path of the audio file (as written when the routine was not read from a file)."""
    loc: Location
    """Where it is written under ``sounds:``."""


def flat_steps(steps: tuple[Step, ...]) -> list[tuple[Step, str]]:
    """Expand ``Repeat`` into its rounds, in play order: ``(step, round label)`` pairs.

    The label is ``""`` outside a repeat and ``"round 2 of 3"`` inside one (nested repeats
    join their labels).
    """
    out: list[tuple[Step, str]] = []
    for step in steps:
        if isinstance(step, Repeat):
            for round_no in range(1, step.times + 1):
                label = f"round {round_no} of {step.times}"
                for inner, inner_label in flat_steps(step.steps):
                    out.append((inner, f"{label}, {inner_label}" if inner_label else label))
        else:
            out.append((step, ""))
    return out


# ---------------------------------------------------------------------------------------
# Timeline: what compile produces


class EventKind(enum.Enum):
    SPEECH = "speech"
    TONE = "tone"


class Cue(enum.Enum):
    """The role of an event in the routine; every event has one."""

    INTRO = "intro"
    OUTRO = "outro"
    START = "start"  # chime at the start of a step
    NAME = "name"
    SAY = "say"
    TIP = "tip"
    PRESSURE = "pressure"
    SIDE = "side"
    SET = "set"
    REP = "rep"
    HOLD = "hold"
    COUNT = "count"
    RELEASE = "release"
    STROKE = "stroke"
    REST = "rest"
    NEXT = "next"
    BREATHE = "breathe"
    FINISH = "finish"


class Tone(enum.Enum):
    """Built-in sounds (mix.py synthesizes them)."""

    CHIME = "chime"  # a step starts
    TICK = "tick"  # a second of a hold, or a stroke
    BELL = "bell"  # release
    FINISH = "finish"  # the routine is done


@dataclass(frozen=True)
class Event:
    """One sound on the timeline."""

    kind: EventKind
    """Speech or tone."""
    cue: Cue
    """Its role (hold, release, stroke, ...)."""
    start_sample: int
    """First sample, from the start of the track."""
    length_samples: int
    """Length in samples (speech: the trimmed clip; tone: the tone)."""
    step: int
    """Index of the chapter (expanded step) it belongs to."""
    text: str = ""
    """The spoken text of a speech event; empty for tones."""
    tone: Tone | None = None
    """Which tone, for tone events."""
    label: str = ""
    """Phase shown while it plays, e.g. ``"hold 3 of 5"`` or ``"stroke 4 of 8"``."""

    @property
    def end_sample(self) -> int:
        return self.start_sample + self.length_samples


@dataclass(frozen=True)
class Chapter:
    """One expanded step; chapters tile the track."""

    title: str
    """Shown in players: the step's name (with its round inside a repeat)."""
    step: int
    """Index of the expanded step, 0-based; events carry the same index."""
    start_sample: int
    """First sample of the chapter."""
    end_sample: int
    """One past its last sample (the next chapter's start)."""
    kind: StepKind = StepKind.SAY
    """What kind of step it is."""
    area: Area | None = None
    """Face area, for the practice log."""
    loc: Location | None = None
    """Where the step is written."""


@dataclass(frozen=True)
class Timeline:
    """When every sound of a routine starts, exact to the sample.

    >>> from voicecoach import plan
    >>> timeline = plan("scripts/morning.yaml")
    >>> timeline.sample_rate, len(timeline.chapters), timeline.chapters[0].title
    (22050, 6, 'Warm-up taps')
    >>> timeline.chapters[0].start_sample
    0
    """

    routine: str
    """Routine title."""
    sample_rate: int
    """Samples per second of the whole track."""
    length_samples: int
    """Length of the track: end of the last event plus the tail."""
    events: tuple[Event, ...]
    """Sorted by start sample."""
    chapters: tuple[Chapter, ...]
    """One per expanded step, tiling ``[0, length_samples)``."""

    @property
    def duration_s(self) -> float:
        return self.length_samples / self.sample_rate

    def seconds(self, samples: int) -> float:
        return samples / self.sample_rate
