"""The command line: a thin layer over the library (which never imports click).

User errors become one line on stderr and exit code 2, here and only here (see ``main``).
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import click

from . import __version__
from .cache import ENV_VAR
from .errors import RoutineErrors, VoicecoachError
from .model import Cue, StepKind, flat_steps
from .pipeline import Settings, build, check_output_path, export, plan
from .script import load_routine
from .speech import ENGINES, SPEECH_ENGINES, get_engine
from .timing import format_duration

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Group(click.Group):
    """Turns library errors into one line on stderr and an exit code: the only such place."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VoicecoachError as error:
            click.echo(error.format(), err=True)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="voicecoach")
def cli() -> None:
    """Compile facial-fitness routine scripts into spoken, timed audio.

    \b
    Example:
      voicecoach compile scripts/morning.yaml -o morning.mp3
    """


def _settings(engine: str, voice: str | None, rate: float | None, cache_dir: Path | None, no_cache: bool, jobs: int | None) -> Settings:
    return Settings(
        engine=engine,
        voice=voice,
        rate=Fraction(repr(rate)) if rate is not None else None,
        cache_dir=cache_dir,
        use_cache=not no_cache,
        jobs=jobs,
    )


def speech_options(func):
    """Options shared by the commands that make sound."""
    options = [
        click.option("--engine", type=click.Choice(sorted(ENGINES)), default="espeak", show_default=True,
                     help="Speech engine ('fake' hums instead of speaking: fast timing checks)."),
        click.option("--voice", help="Voice to use instead of the routine's (see `voicecoach voices`)."),
        click.option("--rate", type=click.FloatRange(0.5, 2.0), help="Speech speed multiplier (0.5-2.0)."),
        click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                     help=f"Cache folder [default: ${ENV_VAR} or audio_cache/]."),
        click.option("--no-cache", is_flag=True, help="Render everything afresh and store nothing."),
        click.option("--jobs", type=click.IntRange(1, 64), help="Parallel speech workers [default: one per core]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@cli.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def check(files: tuple[Path, ...]) -> None:
    """Validate routine files; print each problem as path:line:col: message.

    Exits 0 when every file is valid, 2 otherwise.

    \b
    Example:
      voicecoach check scripts/*.yaml
    """
    problems = 0
    for path in files:
        try:
            routine = load_routine(path)
        except RoutineErrors as errors:
            for error in errors.errors:
                click.echo(error.format(), err=True)
            problems += len(errors.errors)
            continue
        except VoicecoachError as error:
            click.echo(error.format(), err=True)
            problems += 1
            continue
        click.echo(f"{path}: ok ({len(flat_steps(routine.steps))} steps)")
    if problems:
        raise click.exceptions.Exit(2)


@cli.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--rate", type=click.FloatRange(0.5, 2.0), help="Speech speed multiplier (0.5-2.0).")
def preview(file: Path, as_json: bool, rate: float | None) -> None:
    """Print the plan of a routine without rendering audio.

    Timed parts (holds, strokes, rests, breathing) are exact; speech lengths are estimated.

    \b
    Example:
      voicecoach preview scripts/morning.yaml
    """
    timeline = plan(file, settings=Settings(rate=Fraction(repr(rate)) if rate else None))
    rate_hz = timeline.sample_rate
    steps = []
    for chapter in timeline.chapters:
        events = [e for e in timeline.events if e.step == chapter.step]
        steps.append(
            {
                "step": chapter.step,
                "title": chapter.title,
                "kind": chapter.kind.value,
                "area": chapter.area.value if chapter.area else None,
                "start_s": chapter.start_sample / rate_hz,
                "duration_s": (chapter.end_sample - chapter.start_sample) / rate_hz,
                "summary": _summary(chapter, events, rate_hz),
            }
        )
    if as_json:
        click.echo(json.dumps({"routine": timeline.routine, "duration_s": timeline.duration_s,
                               "estimated": True, "steps": steps}, indent=1))
        return
    click.echo(f"{timeline.routine}  (about {format_duration(round(timeline.duration_s))})")
    for item in steps:
        area = f" [{item['area']}]" if item["area"] else ""
        click.echo(f"  {format_duration(round(item['start_s'])):>7}  {item['step'] + 1:>2}. {item['title']}{area} - {item['summary']}")
    click.echo(f"  {format_duration(round(timeline.duration_s)):>7}  end")


def _summary(chapter, events, rate_hz: int) -> str:
    """What happens in a step, from its events: '5 holds, 2 sides' or '8 strokes'."""
    if chapter.kind is StepKind.REST:
        return f"rest {format_duration(round((chapter.end_sample - chapter.start_sample) / rate_hz))}"
    if chapter.kind is StepKind.SAY:
        return "narration"
    counts: dict[Cue, int] = {}
    for e in events:
        counts[e.cue] = counts.get(e.cue, 0) + 1
    parts = []
    for cue, noun in ((Cue.HOLD, "hold"), (Cue.STROKE, "stroke"), (Cue.SIDE, "side"), (Cue.SET, "set")):
        if counts.get(cue):
            parts.append(f"{counts[cue]} {noun}{'s' if counts[cue] != 1 else ''}")
    breaths = sum(1 for e in events if e.cue is Cue.BREATHE and e.label.startswith("breathe in"))
    if breaths:
        parts.append(f"{breaths} breath{'s' if breaths != 1 else ''}")
    return ", ".join(parts) or "narration"


@cli.command(name="compile", context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output audio file: .mp3 (with chapters) or .wav.")
@click.option("--timeline", "timeline_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the timeline as JSON.")
@click.option("--captions", type=click.Path(dir_okay=False, path_type=Path), help="Also write WebVTT captions.")
@speech_options
def compile_command(file: Path, out: Path, timeline_path: Path | None, captions: Path | None, engine: str,
                    voice: str | None, rate: float | None, cache_dir: Path | None, no_cache: bool,
                    jobs: int | None) -> None:
    """Compile a routine into an MP3 (with one chapter per step) or a WAV.

    Speech is cached, so compiling an unchanged routine again synthesizes nothing.

    \b
    Example:
      voicecoach compile scripts/morning.yaml -o morning.mp3 --timeline morning.json
    """
    check_output_path(out)
    for extra in (timeline_path, captions):
        if extra is not None and not (extra.parent if str(extra.parent) else Path(".")).is_dir():
            raise VoicecoachError(f"output folder {str(extra.parent)!r} does not exist", hint="create it first")
    settings = _settings(engine, voice, rate, cache_dir, no_cache, jobs)
    with _Progress() as progress:
        result = build(file, settings=settings, progress=progress)
        export(result, out, settings=settings, timeline_json=timeline_path, captions=captions, progress=progress)
    for warning in result.cache.stats.warnings:
        click.echo(f"warning: {warning}", err=True)
    stats = result.speech.stats
    track = "track from cache" if result.track_was_cached else "track mixed"
    click.echo(
        f"{result.routine.title}: {format_duration(round(result.timeline.duration_s))}, "
        f"{len(result.timeline.chapters)} steps, {stats.synthesized} clips synthesized, "
        f"{stats.cached} from cache, {track} -> {out}"
    )


@cli.command(context_settings=CONTEXT)
@click.option("--engine", type=click.Choice(sorted(ENGINES)), help="Only this engine [default: every speech engine].")
@click.option("--language", help="Only voices for this language (e.g. en, de).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def voices(engine: str | None, language: str | None, as_json: bool) -> None:
    """List the speech engines, their voices and languages.

    \b
    Example:
      voicecoach voices --language en
    """
    found = []
    for name in [engine] if engine else SPEECH_ENGINES:
        speech_engine = get_engine(name)
        try:
            found.extend(speech_engine.voices())
        finally:
            speech_engine.close()
    if language:
        code = language.lower()
        found = [v for v in found if any(l.lower() == code or l.lower().startswith(code + "-") for l in v.languages)]
    if as_json:
        click.echo(json.dumps([{"engine": v.engine, "id": v.id, "name": v.name, "languages": list(v.languages)}
                               for v in found], indent=1))
        return
    for name in [engine] if engine else SPEECH_ENGINES:
        these = [v for v in found if v.engine == name]
        click.echo(f"{name}: {len(these)} voice{'s' if len(these) != 1 else ''} (write the id in a routine's `voice:` or pass --voice)")
        for v in these:
            click.echo(f"  {v.id:<24} {', '.join(v.languages):<12} {v.name}")


class _Progress:
    """A progress bar on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.bar = None
        self.stage = ""
        self.done = 0

    def __enter__(self) -> "_Progress":
        return self

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage:
            self._close()
            self.stage = stage
            self.done = 0
            self.bar = click.progressbar(length=max(total, 1), label=f"{stage:>7}", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def __exit__(self, *exc) -> None:
        self._close()


def main() -> None:
    """Console entry point."""
    cli(prog_name="voicecoach")


if __name__ == "__main__":
    main()
