"""Options and helpers that several commands share (click only; see cli.py)."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import click

from .cache import ENV_VAR
from .engines import AUTO, DEFAULT_ENGINE, ENGINE_CHOICES, ENGINES
from .errors import RoutineErrors, VoicecoachError
from .grammar import count
from .model import flat_steps
from .pipeline import Settings
from .script import load_routine

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DATE = click.DateTime(["%Y-%m-%d"])


def settings_from_options(engine: str, voice: str | None, rate: float | None, cache_dir: Path | None, no_cache: bool, jobs: int | None) -> Settings:
    return Settings(
        engine=engine,
        voice=voice,
        rate=Fraction(repr(rate)) if rate is not None else None,
        cache_dir=cache_dir,
        use_cache=not no_cache,
        jobs=jobs,
        strict_engine=click.get_current_context().meta.get("voicecoach.strict_engine", False),
    )


def _remember_strict_engine(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    ctx.meta["voicecoach.strict_engine"] = value


def speech_options(func):
    """Options shared by the commands that make sound."""
    options = [
        click.option("--engine", type=click.Choice(ENGINE_CHOICES),
                     help=f"Speech engine [default: the routine's engine:, else {DEFAULT_ENGINE}]: {AUTO}: the most "
                          "natural installed voice for the routine's language; "
                          + "; ".join(f"{spec.name}: {spec.about}" for spec in ENGINES.values()) + "."),
        click.option("--strict-engine", is_flag=True, expose_value=False, callback=_remember_strict_engine,
                     help="Fail when the engine asked for has no voice for a routine's language "
                          "[default: note it and speak with auto's choice]."),
        click.option("--voice", help="Voice to use instead of the routine's (see `voicecoach voices`), or a voice "
                                     "model file (Piper's .onnx)."),
        click.option("--rate", type=click.FloatRange(0.5, 2.0), help="Speech speed multiplier (0.5-2.0)."),
        click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                     help=f"Cache folder [default: ${ENV_VAR}, else the audio_cache/ of the routine's "
                          "project, else ~/.cache/voicecoach]."),
        click.option("--no-cache", is_flag=True, help="Render everything afresh and store nothing."),
        click.option("--jobs", type=click.IntRange(1, 64), help="Parallel speech workers [default: one per core]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def play_options(func):
    """The options of `play` that `today` shares: where to start, the sound output, the keys, speech."""
    options = [
        click.option("--from", "from_step", metavar="STEP", help="Start at this step: its number or the start of its name."),
        click.option("--loop", is_flag=True, help="When the routine ends, play it again from the start step (until q)."),
        click.option("--no-keys", is_flag=True, help="Do not read keys from the terminal (scripted use)."),
        click.option("--volume", type=click.IntRange(0, 100), default=100, show_default=True, help="Volume in percent."),
        click.option("--backend", "backend_name", type=click.Choice(["miniaudio", "simpleaudio", "fake"]),
                     default="miniaudio", show_default=True,
                     help="Sound output: miniaudio (PulseAudio, PipeWire, ALSA, ...), simpleaudio "
                          "(pip install 'voicecoach[simpleaudio]'), or fake (no sound, as fast as possible: for tests)."),
        click.option("--device", help="Output device: a number or (part of) a name from --devices."),
        click.option("--script-keys", hidden=True,
                     help="Timed keys, e.g. 'wait:1.0,space,wait:1.0,space,n' (seconds of device time; for tests)."),
        click.option("--log-file", hidden=True, type=click.Path(dir_okay=False, path_type=Path),
                     help="Record in this practice log, even a session of the fake backend (for tests)."),
    ]
    for option in reversed(options):
        func = option(func)
    return speech_options(func)


def play_with_options(source, *, from_step: str | None, loop: bool, no_keys: bool, volume: int, backend_name: str,
          device: str | None, script_keys: str | None, log_file: Path | None, engine: str, voice: str | None,
          rate: float | None, cache_dir: Path | None, no_cache: bool, jobs: int | None, log_fields=None) -> None:
    """Play a routine file or a made source with the command line's options (`play`, `today`)."""
    from .play.session import PlayOptions, play_routine

    options = PlayOptions(from_step=from_step, loop=loop, keys=not no_keys, volume_percent=volume, backend=backend_name,
                          device=device, script_keys=script_keys or "", log_path=log_file, log_fields=log_fields or {},
                          settings=settings_from_options(engine, voice, rate, cache_dir, no_cache, jobs))
    play_routine(source, options, show=lambda text: click.echo(text, nl=False),
                 warn=lambda line: click.echo(line, err=True))


class Progress:
    """A progress bar on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.bar = None
        self.stage = ""
        self.done = 0

    def __enter__(self) -> "Progress":
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


def check_files(files: tuple[Path, ...], strict: bool, deep_settings: Settings | None) -> None:
    """`check` and `program check`: routines and programs (a file with `program:`), each problem once."""
    from .programs.days import check_program
    from .programs.format import is_program_file, load_program
    from .rules import Severity, check_routine
    from .script import find_routine_files, is_block_file, load_block

    problems = 0
    found = find_routine_files(files)
    if not found:
        raise VoicecoachError("no routines found in " + ", ".join(map(str, files)),
                              hint="give routine .yaml files, or folders that hold them")
    for path in found:
        try:
            if path.is_file() and is_block_file(path):  # what export skips, checked as what it is
                block = load_block(path)
                click.echo(f"{path}: ok (include-only block, {count(len(flat_steps(block)), 'step')})")
                continue
            program = load_program(path) if is_program_file(path) else None
            routine = load_routine(path) if program is None else None
            findings = check_routine(routine, deep=deep_settings) if routine else check_program(program,
                                                                                               deep=deep_settings)
        except RoutineErrors as errors:
            for error in errors.errors:
                click.echo(error.at_file(path).format(), err=True)
            problems += len(errors.errors)
            continue
        except VoicecoachError as error:  # every line names its file, even an engine's failure
            click.echo(error.at_file(path).format(), err=True)
            problems += 1
            continue
        for finding in findings:
            click.echo(finding.format(strict=strict), err=True)
        failing = sum(finding.fails(strict=strict) for finding in findings)
        problems += failing
        if not failing:
            warnings = sum(finding.severity is Severity.WARNING for finding in findings)
            noted = f", {count(warnings, 'warning')}" if warnings else ""
            size = (count(len(flat_steps(routine.steps)), 'step') if routine else
                    f"{count(program.days, 'day')}, {count(len(program.practice_days()), 'practice day')}")
            click.echo(f"{path}: ok ({size}{noted})")
    if problems:
        raise click.exceptions.Exit(2)
