"""`voicecoach play` and `voicecoach log`: playing hands-free, and the practice log.

Click lives only in the command modules (cli.py, cli_options.py and a feature's commands.py); the
library they call never imports it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..cli_options import CONTEXT, play_options, play_with_options
from ..errors import VoicecoachError
from ..grammar import count, noun
from ..timing import format_duration


@click.command(context_settings=CONTEXT)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--devices", "show_devices", is_flag=True, help="List the output devices and exit.")
@play_options
def play(file: Path | None, show_devices: bool, **options) -> None:
    """Play a routine hands-free, controlled with single keys.

    Shows the step, its phase (hold 3 of 5, stroke 4 of 8, rest), the time left and what is
    next on one line (plain log lines when the output is not a terminal). Each session is
    recorded in the practice log (see `voicecoach log`).

    \b
    Keys (no Enter):
      space       pause / resume
      n or ->     next step
      p or <-     back to the start of the step (twice quickly: previous step)
      r           repeat the current step
      + / -       volume
      q           quit (Ctrl-C too)

    \b
    Example:
      voicecoach play scripts/morning.yaml --from 2
    """
    from .backends import device_report

    if show_devices:
        devices, why = device_report(options["backend_name"])
        for info in devices:
            click.echo(f"{info.number:>3}  {info.name}  ({info.backend})")
        if not devices:  # what exists is nothing: say why and what to do (not an error)
            click.echo(f"no output devices: {why}")
        return
    if file is None:
        raise VoicecoachError("no routine to play", hint="give its file: voicecoach play ROUTINE.yaml (--devices lists devices)")
    play_with_options(file, **options)


@click.command(name="log", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=10, show_default=True, help="Recent sessions to show.")
def log_command(as_json: bool, limit: int) -> None:
    """Show recent practice sessions, the streak of practice days and minutes per face area.

    Sessions are recorded by `voicecoach play` in practice.sqlite3 in $VOICECOACH_DATA_DIR,
    else $XDG_DATA_HOME/voicecoach, else ~/.local/share/voicecoach.

    \b
    Example:
      voicecoach log --limit 5
    """
    from ..practice_log import PracticeLog

    practice = PracticeLog()
    summary = practice.summary(limit=limit)
    if as_json:
        click.echo(json.dumps(summary.as_json(database=practice.path), indent=1))
        return
    if not summary.total_sessions:
        click.echo(f"No sessions logged yet in {practice.path}: play a routine with `voicecoach play ROUTINE`.")
        return
    click.echo(f"Streak: {count(summary.current_streak_days, 'day')} "
               f"(longest {count(summary.longest_streak_days, 'day')})")
    for label, minutes in (("last 7 days", summary.minutes_7_days), ("last 30 days", summary.minutes_30_days)):
        areas = ", ".join(f"{area} {m:.1f}" for area, m in minutes.items()) or "none"
        click.echo(f"Minutes per area, {label}: {areas}")
    click.echo(f"Recent sessions ({len(summary.sessions)} of {summary.total_sessions}):")
    for s in summary.sessions:
        when = s.started_utc.astimezone().strftime("%Y-%m-%d %H:%M")
        steps = f"{s.steps_completed}/{s.steps_total}" if s.steps_total else str(s.steps_completed)
        click.echo(f"  {when}  {s.routine:<28} {format_duration(round(s.seconds_played)):>7}  {steps} "
                   f"{noun(s.steps_total or s.steps_completed, 'step')}"
                   + ("  finished" if s.finished else "" if s.practised else "  (under 80 %: not a practice day)"))


