"""`voicecoach today` and `voicecoach program ...`: programs day by day.

Click lives only in the command modules (cli.py, cli_options.py and a feature's commands.py); the
library they call never imports it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..cli_options import (
    CONTEXT,
    DATE,
    check_files,
    play_options,
    play_with_options,
    settings_from_options,
    speech_options,
)


@click.command(context_settings=CONTEXT)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--day", type=click.IntRange(1), help="Play this day of the program instead of today's.")
@click.option("--date", "on", type=DATE, help="Take today to be this date (YYYY-MM-DD); the session counts for it.")
@play_options
def today(file: Path | None, day: int | None, on, **options) -> None:
    """Play today's session of a program: the day's routines in one track, with play's keys.

    Where you are comes from the practice log: the first day not yet done (a missed day skips
    no content; a day counts once 80 % of it is played). Without FILE: the program played last.

    \b
    Example:
      voicecoach today scripts/programs/thirty-days-face-fitness.yaml
      voicecoach today --day 15 --no-keys
    """
    from ..pipeline import LiveBuild
    from ..practice_log import PracticeLog
    from .today import plan_today

    plan = plan_today(file, day=day, today=on.date() if on else None, log=PracticeLog(options["log_file"]))
    click.echo(plan.heading())
    if plan.routine is not None:
        keys = ("engine", "voice", "rate", "cache_dir", "no_cache", "jobs")
        source = LiveBuild(plan.routine, settings=settings_from_options(*(options[k] for k in keys)))
        source.path = Path(plan.program.path)  # the log keeps the program file's hash
        play_with_options(source, **options, log_fields=plan.log_fields())


@click.group(name="program", context_settings=CONTEXT)
def program_group() -> None:
    """Programs: routines day by day for weeks, each week a little harder (scripts/programs/).

    \b
    Example:
      voicecoach program preview scripts/programs/thirty-days-face-fitness.yaml --day 15
    """


@program_group.command(name="check", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Treat safety and quality warnings as errors (exit 2).")
@click.option("--deep", is_flag=True, help="Also compile every day with real speech (see `check --deep`).")
@speech_options
def program_check(files: tuple[Path, ...], strict: bool, deep: bool, engine: str, voice: str | None,
                  rate: float | None, cache_dir: Path | None, no_cache: bool, jobs: int | None) -> None:
    """Check programs: the file, its routines, and the safety rules on every day with progress.

    A finding names the program's line, the first day it is played on and the routine's line.

    \b
    Example:
      voicecoach program check --strict scripts/programs/*.yaml
    """
    check_files(files, strict, settings_from_options(engine, voice, rate, cache_dir, no_cache, jobs) if deep else None)


@program_group.command(name="preview", context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--day", type=click.IntRange(1), help="One day's plan, step by step.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def program_preview(file: Path, day: int | None, as_json: bool) -> None:
    """Print the calendar (day -> routines, minutes) or one day's steps with progress applied.

    \b
    Example:
      voicecoach program preview scripts/programs/thirty-days-face-fitness.yaml --day 15 --json
    """
    from .days import preview_lines, program_plan
    from .format import load_program

    data = program_plan(load_program(file), day=day)
    click.echo(json.dumps(data, indent=1) if as_json else "\n".join(preview_lines(data)))


@program_group.command(name="status", context_settings=CONTEXT)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--date", "on", type=DATE, help="Show it as of this date (YYYY-MM-DD) [default: today].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def program_status(file: Path | None, on, as_json: bool) -> None:
    """Day n of N, days done, streak, what is next, and a calendar heatmap (no colour needed).

    Without FILE: the program played last (see `voicecoach today`).

    \b
    Example:
      voicecoach program status scripts/programs/thirty-days-face-fitness.yaml
    """
    from .today import plan_today, status_json, status_lines

    status = plan_today(file, today=on.date() if on else None).status
    click.echo(json.dumps(status_json(status), indent=1) if as_json else "\n".join(status_lines(status)))


