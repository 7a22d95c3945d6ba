"""The command line: a thin layer over the library (which never imports click).

This module holds the group, the core commands (check, preview, compile, new, schema) and the one
error boundary; each feature brings its commands in its own ``commands.py`` (``engines/``,
``play/``, ``phone/``, ``programs/``; the cache's in ``cache_commands.py``), registered below,
and options that several commands share live in ``cli_options.py``. Every command parses its
options, calls one library function and prints.

User errors become one line on stderr and exit code 2, here and only here (see ``main``).
"""

from __future__ import annotations

import json
import signal
from fractions import Fraction
from pathlib import Path

import click

from . import __version__
from .cache_commands import cache_group
from .cli_options import (
    CONTEXT,
    Progress,
    check_files,
    settings_from_options,
    speech_options,
)
from .engines.commands import voices
from .errors import VoicecoachError, raise_terminated, stop_message
from .formats import FORMAT_NAMES
from .grammar import count
from .phone.commands import export_command, feed, serve
from .pipeline import Settings, check_output_path, compile_to, plan
from .play.commands import log_command, play
from .programs.commands import program_group, today
from .summary import plan_steps
from .timing import format_duration


class _Group(click.Group):
    """Turns library errors into one line on stderr and an exit code: the only such place."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VoicecoachError as error:
            click.echo(error.format(), err=True)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt as interrupt:  # temporary files are gone by now (files.atomic_write)
            message, code = stop_message(interrupt)
            click.echo(message, err=True)
            ctx.exit(code)


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="voicecoach")
def cli() -> None:
    """Compile facial-fitness routine scripts into spoken, timed audio.

    \b
    Example:
      voicecoach compile scripts/morning.yaml -o morning.mp3
    """


@cli.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Treat safety and quality warnings as errors (exit 2).")
@click.option("--deep", is_flag=True,
              help="Also compile with real speech (synthesized and cached) to find speech too long for its slot.")
@speech_options
def check(files: tuple[Path, ...], strict: bool, deep: bool, engine: str, voice: str | None, rate: float | None,
          cache_dir: Path | None, no_cache: bool, jobs: int | None) -> None:
    """Validate routine and program files (a folder means every one in it); print each problem as
    path:line:col: message.

    Include-only blocks (steps without a title, like scripts/library/) are checked as blocks.
    Then the safety and quality rules run on every valid routine, and on every day of a
    program as it will be played: each finding is printed as path:line:col: RULE warning:
    reason (info notes never fail). The speech options apply to
    --deep only. Exits 0 when every file is valid (warnings allowed unless --strict), 2 otherwise.

    \b
    Example:
      voicecoach check scripts/
      voicecoach check --strict --deep scripts/morning.yaml
    """
    check_files(files, strict, settings_from_options(engine, voice, rate, cache_dir, no_cache, jobs) if deep else None)




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
    steps = plan_steps(timeline)
    if as_json:
        click.echo(json.dumps({"routine": timeline.routine, "duration_s": timeline.duration_s,
                               "estimated": True, "steps": [step.as_json() for step in steps]}, indent=1))
        return
    click.echo(f"{timeline.routine}  (about {format_duration(round(timeline.duration_s))})")
    for item in steps:
        area = f" [{item.area}]" if item.area else ""
        click.echo(f"  {format_duration(round(item.start_s)):>7}  {item.number:>2}. {item.title}{area} - {item.summary}")
    click.echo(f"  {format_duration(round(timeline.duration_s)):>7}  end")


@cli.command(name="compile", context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output audio file; its extension picks the format: "
                   + ", ".join(f".{name}" for name in FORMAT_NAMES) + ".")
@click.option("--timeline", "timeline_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the timeline as JSON.")
@click.option("--captions", type=click.Path(dir_okay=False, path_type=Path), help="Also write WebVTT captions.")
@click.option("-v", "--verbose", is_flag=True, help="Also report cache repairs (damaged entries rendered again).")
@speech_options
def compile_command(file: Path, out: Path, timeline_path: Path | None, captions: Path | None, verbose: bool,
                    engine: str, voice: str | None, rate: float | None, cache_dir: Path | None, no_cache: bool,
                    jobs: int | None) -> None:
    """Compile a routine into one audio file with one chapter per step.

    The output's extension picks the format: .mp3, .m4b, .opus, .flac (lossless) with
    chapters, or .wav. Speech is cached, so compiling an unchanged routine again
    synthesizes nothing.

    \b
    Example:
      voicecoach compile scripts/morning.yaml -o morning.mp3 --timeline morning.json
      voicecoach compile scripts/morning.yaml -o morning.m4b
    """
    check_output_path(out)
    for extra in (timeline_path, captions):
        if extra is not None and not (extra.parent if str(extra.parent) else Path(".")).is_dir():
            raise VoicecoachError(f"output folder {str(extra.parent)!r} does not exist", hint="create it first")
    settings = settings_from_options(engine, voice, rate, cache_dir, no_cache, jobs)
    with Progress() as progress:
        result = compile_to(file, out, settings=settings, timeline_json=timeline_path, captions=captions,
                            progress=progress)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for warning in result.cache.stats.warnings:
        click.echo(f"warning: {warning}", err=True)
    cache_stats = result.cache.stats
    repairs = [f"{count(cache_stats.corrupt, 'damaged entry', 'damaged entries')} rendered again"
               * bool(cache_stats.corrupt),
               f"{count(cache_stats.stale_removed, 'leftover temporary file')} of an interrupted run removed"
               * bool(cache_stats.stale_removed)]
    if verbose and any(repairs):  # one line per run, only when asked: the cache repaired itself
        click.echo(f"note: cache {result.cache.root}: " + "; ".join(filter(None, repairs)), err=True)
    stats = result.speech.stats
    track = "track from cache" if result.track_was_cached else "track mixed"
    click.echo(
        f"{result.routine.title}: {format_duration(round(result.timeline.duration_s))}, "
        f"{count(len(result.timeline.chapters), 'step')}, {count(stats.synthesized, 'clip')} synthesized, "
        f"{stats.cached} from cache, {track} -> {out}"
    )


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write [default: the name in lower case with dashes, .yaml].")
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
def new(name: str, out: Path | None, force: bool) -> None:
    """Write a commented starter routine titled NAME that documents every field.

    It passes `check --strict` and compiles as it is; edit it from there. A NAME that is a
    file name (scripts/evening-calm.yaml) is the file to write, titled after it.

    \b
    Example:
      voicecoach new "Evening calm" -o scripts/evening-calm.yaml
      voicecoach new scripts/evening-calm.yaml
    """
    from .schema import new_routine_target, starter_routine, write_new_file

    title, path = new_routine_target(name, out)
    text = starter_routine(title)
    target = write_new_file(path, text, force=force)
    click.echo(f"wrote {target}")


@cli.command(context_settings=CONTEXT)
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the schema to this file instead of printing it.")
@click.option("--program", is_flag=True, help="The schema of program files instead (scripts/programs/).")
def schema(out: Path | None, program: bool) -> None:
    """Print the JSON Schema (draft 2020-12) of the routine format, for editors.

    Routines that start with `# yaml-language-server: $schema=routine.schema.json` get
    completion and validation in editors that use the YAML language server.

    \b
    Example:
      voicecoach schema -o scripts/routine.schema.json
      voicecoach schema --program -o scripts/programs/program.schema.json
    """
    from .schema import schema_text, write_new_file

    if out is None:
        click.echo(schema_text(program=program), nl=False)
    else:
        write_new_file(out, schema_text(program=program), force=True)


# Features bring their own commands (each feature's commands.py).
for _command in (voices, export_command, feed, serve, play, log_command, today, program_group, cache_group):
    cli.add_command(_command)


def main() -> None:
    """Console entry point."""
    signal.signal(signal.SIGTERM, raise_terminated)  # `kill` cleans up like Ctrl-C does (exit 143)
    cli(prog_name="voicecoach")


if __name__ == "__main__":
    main()
