"""Safety and quality rules: what ``voicecoach check`` warns about in a valid routine.

A script can be perfectly well-formed and still hurt (strengthening the jaw-closing muscle
feeds clenching and grinding) or waste practice (a worked area never released).  Each rule is
one small function registered with :func:`rule` -- its id, its severity and a one-line
reason -- that looks at the routine in play order and yields ``(location, message)`` for each
step it objects to.  To add a rule, write one more function below.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterable

from .errors import Location, TimingError
from .model import Area, Exercise, Massage, Routine, Step, Timeline, flat_steps
from .pipeline import Settings, build, plan, preflight
from .timing import format_duration

__all__ = ["RULES", "Finding", "Rule", "Severity", "check_routine", "rule"]


class Severity(enum.Enum):
    """How much a finding matters to ``check``'s exit code."""

    INFO = "info"  # worth knowing; never fails a check
    WARNING = "warning"  # fails ``check --strict``
    ERROR = "error"  # always fails: the routine would not compile


@dataclass(frozen=True)
class Finding:
    """One thing a rule objects to, at one place."""

    rule: str
    """The rule's id, e.g. ``VC101``."""
    severity: Severity
    """How much it matters."""
    message: str
    """One line: what is wrong here and what to do."""
    location: Location | None
    """The step (or the routine's title) it is about."""

    def fails(self, *, strict: bool) -> bool:
        """Whether it makes ``check`` exit 2."""
        return self.severity is Severity.ERROR or (strict and self.severity is Severity.WARNING)

    def format(self, *, strict: bool = False) -> str:
        """``path:line:col: VC101 warning: message`` (``error`` for a warning under ``strict``)."""
        severity = "error" if self.fails(strict=strict) else self.severity.value
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.rule} {severity}: {self.message}"


class Context:
    """What the rules look at: the routine, its steps in play order, and its timeline."""

    def __init__(self, routine: Routine, *, deep: Settings | None = None) -> None:
        self.routine = routine
        self.steps: list[Step] = [step for step, _ in flat_steps(routine.steps)]
        self.exercises = [step for step in self.steps if isinstance(step, Exercise)]
        self.deep = deep
        self.timing_error: TimingError | None = None
        self.likely_overflows: list[TimingError] = []
        self._timeline: Timeline | None = None

    @property
    def timeline(self) -> Timeline:
        """With ``deep``: compiled with real speech (synthesized and cached); else the plan."""
        if self._timeline is None:
            if self.deep is not None:
                try:
                    self._timeline = build(self.routine, settings=self.deep).timeline
                except TimingError as error:
                    self.timing_error = error
            if self._timeline is None:
                self.likely_overflows = []
                self._timeline = plan(self.routine, settings=self.deep or Settings(),
                                      overflow=self.likely_overflows.append)
        return self._timeline

    @property
    def estimated(self) -> bool:
        """Whether the timeline's speech lengths are estimates."""
        return self.deep is None or self.timing_error is not None


Hits = Iterable[tuple[Location | None, str]]


@dataclass(frozen=True)
class Rule:
    """A registered rule."""

    id: str
    """Stable id, ``VC`` and three digits, printed with every finding."""
    severity: Severity
    """How much its findings matter."""
    reason: str
    """One line: why the rule exists (shown in docs and tests)."""
    check: Callable[[Context], Hits]
    """Yields ``(location, message)`` for each place it objects to."""


RULES: list[Rule] = []
"""Every rule, in the order they run."""


def rule(rule_id: str, severity: Severity, reason: str) -> Callable[[Callable[[Context], Hits]], Callable]:
    """Register the decorated function as a rule."""
    if not re.fullmatch(r"VC\d{3}", rule_id) or any(r.id == rule_id for r in RULES):
        raise ValueError(f"rule id {rule_id!r} is malformed or taken")

    def register(func: Callable[[Context], Hits]) -> Callable[[Context], Hits]:
        RULES.append(Rule(rule_id, severity, reason, func))
        return func

    return register


def check_routine(routine: Routine, *, deep: Settings | None = None) -> list[Finding]:
    """Every rule's findings, each place once, sorted by location.

    First whatever compile would refuse without synthesizing (vocabulary, engine, music file)
    is raised as an error.  With ``deep`` the routine is compiled with real speech under those
    settings, so speech that does not fit its slot is found too (as an error); otherwise nothing
    is synthesized and speech likely too long for its slot is a warning (VC109).
    """
    preflight(routine, settings=deep or Settings())  # what compile would refuse, found without synthesis
    context = Context(routine, deep=deep)
    found: dict[tuple, Finding] = {}
    for each in RULES:
        for location, message in each.check(context):
            location = location or routine.loc or Location(routine.path)  # every finding names its file
            finding = Finding(each.id, each.severity, message, location)
            found.setdefault((each.id, location, message), finding)  # a repeat plays a step again
    return sorted(found.values(), key=lambda f: (f.location or Location(""), f.rule))


def _area(step: Exercise | Massage) -> str:
    return step.area.value if step.area else "no area"


# ---------------------------------------------------------------------------------------
# The rules


@rule("VC100", Severity.WARNING, "an exercise without an area cannot be checked for release and load")
def exercise_has_area(ctx: Context) -> Hits:
    for step in ctx.exercises:
        if step.area is None:
            yield step.loc, (f"exercise {step.name!r} has no area; add 'area:' so check can pair it "
                             "with its releasing massage")


@rule("VC101", Severity.WARNING, "a worked area should be released by a massage of the same area afterwards")
def exercise_is_released(ctx: Context) -> Hits:
    last_massage = {step.area: index for index, step in enumerate(ctx.steps) if isinstance(step, Massage)}
    for index, step in enumerate(ctx.steps):
        if not isinstance(step, Exercise) or step.area is None:
            continue
        if last_massage.get(step.area, -1) < index:
            yield step.loc, (f"exercise {step.name!r} works the {_area(step)} but no {_area(step)} massage "
                             f"follows it; add a massage with 'area: {_area(step)}' after it")


# What resistance or clenching work on the jaw-closing muscles sounds like.
_JAW_CLOSING = re.compile(
    r"\bmasseters?\b|\bbite (?:trainer|block|down|hard|against|into|together)|"
    r"\b(?:jaw|jawline|chin|chewing) (?:trainer|exerciser)s?\b|\bclench\w*|\bchew(?:s|ing)?\b|\bgum\b|"
    r"\bgrit (?:your )?teeth\b|\bteeth together\b|\bclos(?:e|ing) (?:the |your )?(?:mouth|jaw)\b(?=[^.;!?]*\bagainst\b)",
    re.IGNORECASE,
)
# Words that turn a mention into a warning or a release: "never clench", "relax the masseter".
_DEFUSED = re.compile(
    r"\b(?:never|not|no|avoid\w*|without|instead|stop|don't|relax\w*|releas\w*|loosen\w*|soften\w*|"
    r"unclench\w*|if|when|whenever)\b|n't\b",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r"[.,;:!?]|\bbut\b", re.IGNORECASE)


def jaw_closing_work(text: str) -> str | None:
    """The words in ``text`` that ask for jaw-closing work, unless a clause defuses them."""
    for clause in _CLAUSE.split(text):
        for match in _JAW_CLOSING.finditer(clause):
            if not _DEFUSED.search(clause, 0, match.start()):
                return match.group(0)
    return None


@rule("VC102", Severity.WARNING, "strengthening the jaw-closing muscles (masseter) feeds clenching and grinding")
def no_jaw_closing_work(ctx: Context) -> Hits:
    for step in ctx.exercises:
        for text in (step.name, step.say, step.cue, step.tip):
            words = jaw_closing_work(text)
            if words:
                yield step.loc, (f"exercise {step.name!r} asks for jaw-closing work ({words!r}); strengthening "
                                 "the masseter feeds clenching and grinding: massage it instead")
                break


MAX_HOLD_S = Fraction(30)
"""Longest single hold before the muscle is strained rather than trained."""
MAX_AREA_HOLDS_S = Fraction(180)
"""Most seconds of holds one area gets in one routine."""


@rule("VC103", Severity.WARNING, "a single hold over 30 s strains the muscle instead of training it")
def hold_is_short(ctx: Context) -> Hits:
    for step in ctx.exercises:
        if step.hold_s > MAX_HOLD_S:
            yield step.loc, (f"exercise {step.name!r} holds for {float(step.hold_s):g} s; keep each hold at "
                             f"{MAX_HOLD_S} s or less and add reps instead")


@rule("VC104", Severity.WARNING, "more than 3 minutes of holds on one area overworks it")
def area_is_not_overworked(ctx: Context) -> Hits:
    totals: dict[Area | None, Fraction] = {}
    for step in ctx.exercises:
        before = totals.get(step.area, Fraction(0))
        totals[step.area] = before + step.hold_s * step.reps * step.sets * len(step.sides)
        if step.area is not None and before <= MAX_AREA_HOLDS_S < totals[step.area]:
            has = "have" if step.area.is_plural_noun else "has"
            yield step.loc, (f"by exercise {step.name!r} the {_area(step)} {has} held for "
                             f"{format_duration(totals[step.area])}, more than 3 minutes in one routine; "
                             "use fewer reps or sets")


_NEEDS_TIP = (Area.FOREHEAD, Area.BROWS, Area.EYES)


@rule("VC105", Severity.WARNING, "forehead and eye exercises crease the skin unless told to keep it smooth")
def delicate_area_has_tip(ctx: Context) -> Hits:
    for step in ctx.exercises:
        if step.area in _NEEDS_TIP and not step.tip:
            yield step.loc, (f"exercise {step.name!r} works the {_area(step)} without a tip; add one against "
                             "wrinkling or squinting, like 'keep the skin smooth under your fingers'")


@rule("VC106", Severity.WARNING, "muscles should be warmed up by a massage before the first exercise")
def warm_up_first(ctx: Context) -> Hits:
    for step in ctx.steps:
        if isinstance(step, Massage):
            return
        if isinstance(step, Exercise):
            yield step.loc, (f"exercise {step.name!r} comes before any massage; start with a warm-up "
                             "massage (for example include library/warm-up.yaml)")
            return


MAX_ROUTINE_S = 20 * 60
"""Daily practice longer than this is hard to keep up."""


@rule("VC107", Severity.INFO, "daily practice should be short: a routine over 20 minutes is hard to keep up")
def routine_is_short(ctx: Context) -> Hits:
    seconds = ctx.timeline.duration_s
    if seconds > MAX_ROUTINE_S:
        about = "about " if ctx.estimated else ""
        yield ctx.routine.loc or Location(ctx.routine.path), (
            f"the routine lasts {about}{format_duration(round(seconds))}; daily practice works best under "
            "20 minutes: consider splitting it")


@rule("VC108", Severity.ERROR, "speech longer than its slot stops compile (found with check --deep)")
def speech_fits(ctx: Context) -> Hits:
    if ctx.deep is None:
        return
    ctx.timeline  # compiles with real speech; a timing problem is kept, not raised
    error = ctx.timing_error
    if error is not None:
        yield error.location, f"{error.message}; {error.hint}" if error.hint else error.message


@rule("VC109", Severity.WARNING, "speech estimated longer than its slot would likely stop compile")
def speech_likely_fits(ctx: Context) -> Hits:
    if ctx.deep is not None:
        return  # measured instead (VC108)
    ctx.timeline  # plans with the engine's measured speaking rate
    for error in ctx.likely_overflows:
        yield error.location, (f"likely too long (estimated from the voice's speaking rate; check --deep measures "
                               f"it): {error.message}; {error.hint}" if error.hint else error.message)
