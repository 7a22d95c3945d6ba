"""The command line: a thin layer over the library (which never imports click).

User errors become one line on stderr and exit code 2, here and only here (see ``main``).
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
from fractions import Fraction
from pathlib import Path

import click

from . import __version__
from .cache import ENV_VAR, default_cache_dir
from .errors import AudioDeviceError, RoutineErrors, VoicecoachError, raise_terminated, stop_message
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
        click.option("--engine", type=click.Choice(sorted(ENGINES)),
                     help="Speech engine [default: the routine's engine:, else espeak]; piper is a natural voice "
                          "(pip install 'voicecoach[piper]'); 'fake' hums instead of speaking: fast timing checks."),
        click.option("--voice", help="Voice to use instead of the routine's (see `voicecoach voices`), or a Piper "
                                     ".onnx model file with --engine piper."),
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
@click.option("--strict", is_flag=True, help="Treat safety and quality warnings as errors (exit 2).")
@click.option("--deep", is_flag=True,
              help="Also compile with real speech (synthesized and cached) to find speech too long for its slot.")
@speech_options
def check(files: tuple[Path, ...], strict: bool, deep: bool, engine: str, voice: str | None, rate: float | None,
          cache_dir: Path | None, no_cache: bool, jobs: int | None) -> None:
    """Validate routine and program files; print each problem as path:line:col: message.

    Then the safety and quality rules run on every valid routine, and on every day of a
    program as it will be played: each finding is printed as path:line:col: RULE warning:
    reason (info notes never fail). The speech options apply to
    --deep only. Exits 0 when every file is valid (warnings allowed unless --strict), 2 otherwise.

    \b
    Example:
      voicecoach check scripts/*.yaml
      voicecoach check --strict --deep scripts/morning.yaml
    """
    _check_files(files, strict, _settings(engine, voice, rate, cache_dir, no_cache, jobs) if deep else None)


def _check_files(files: tuple[Path, ...], strict: bool, deep_settings: Settings | None) -> None:
    """`check` and `program check`: routines and programs (a file with `program:`), each problem once."""
    from .programs.days import check_program
    from .programs.format import is_program_file, load_program
    from .rules import Severity, check_routine

    problems = 0
    for path in files:
        try:
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
            warnings = sum(f.severity is Severity.WARNING for f in findings)
            noted = f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
            size = (f"{len(flat_steps(routine.steps))} steps" if routine else
                    f"{program.days} days, {len(program.practice_days())} practice days")
            click.echo(f"{path}: ok ({size}{noted})")
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
@click.option("-v", "--verbose", is_flag=True, help="Also report cache repairs (damaged entries rendered again).")
@speech_options
def compile_command(file: Path, out: Path, timeline_path: Path | None, captions: Path | None, verbose: bool,
                    engine: str, voice: str | None, rate: float | None, cache_dir: Path | None, no_cache: bool,
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
    cache_stats = result.cache.stats
    repairs = [f"{_count(cache_stats.corrupt, 'damaged entry', 'damaged entries')} rendered again"
               * bool(cache_stats.corrupt),
               f"{_count(cache_stats.stale_removed, 'leftover temporary file')} of an interrupted run removed"
               * bool(cache_stats.stale_removed)]
    if verbose and any(repairs):  # one line per run, only when asked: the cache repaired itself
        click.echo(f"note: cache {result.cache.root}: " + "; ".join(filter(None, repairs)), err=True)
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
    """List the speech engines, their voices and languages, and how to install a missing engine.

    \b
    Example:
      voicecoach voices --language en
      voicecoach voices --engine piper
    """
    from .speech import missing_engines

    missing = missing_engines()
    names = [engine] if engine else list(dict.fromkeys([*SPEECH_ENGINES, *missing]))
    found = []
    for name in names:
        if name in missing:
            continue
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
    for name in names:
        if name in missing:
            about, command = missing[name]
            click.echo(f"{name}: not installed ({about}); install it with: {command}")
            continue
        these = [v for v in found if v.engine == name]
        click.echo(f"{name}: {len(these)} voice{'s' if len(these) != 1 else ''} (write the id in a routine's `voice:` or pass --voice)")
        for v in these:
            click.echo(f"  {v.id:<24} {', '.join(v.languages):<12} {v.name}")


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write [default: the name in lower case with dashes, .yaml].")
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
def new(name: str, out: Path | None, force: bool) -> None:
    """Write a commented starter routine titled NAME that documents every field.

    It passes `check --strict` and compiles as it is; edit it from there.

    \b
    Example:
      voicecoach new "Evening calm" -o scripts/evening-calm.yaml
    """
    from .schema import default_file_name, starter_routine, write_new_file

    text = starter_routine(name)
    target = write_new_file(out or Path(default_file_name(name)), text, force=force)
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


_EXPORT_FORMATS = ("mp3", "m4b", "opus")  # formats.AudioFormat values (literal: cli imports stay light)


@cli.command(name="export", context_settings=CONTEXT)
@click.argument("routines", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-d", "--dir", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to export into (created if its parent exists).")
@click.option("--format", "fmt", type=click.Choice(_EXPORT_FORMATS), default="mp3", show_default=True,
              help="mp3 (ID3 chapters), m4b (AAC with chapters, Apple Books) or opus.")
@click.option("--split", is_flag=True, help="One numbered track per step, with an .m3u8 playlist per routine.")
@speech_options
def export_command(routines: tuple[Path, ...], out_dir: Path, fmt: str, split: bool, engine: str,
                   voice: str | None, rate: float | None, cache_dir: Path | None, no_cache: bool,
                   jobs: int | None) -> None:
    """Export routines (files or folders of them) for a phone, in parallel.

    Each routine becomes a file named after its title, with chapters, cover art and a
    Podcasting 2.0 chapters file (or, with --split, one track per step and a playlist).
    Unchanged routines are not encoded again. A folder means every routine in it;
    include-only blocks are skipped. --jobs caps the worker processes. A routine that
    fails is reported and the others still export (exit 2).

    \b
    Example:
      voicecoach export scripts/ -d phone/
      voicecoach export scripts/morning.yaml -d phone/ --format m4b --split
    """
    from .formats import AudioFormat
    from .phone.library import LibrarySettings, Outcome, export_library

    settings = _settings(engine, voice, rate, cache_dir, no_cache, jobs)
    with _Progress() as progress:
        report = export_library(routines, out_dir, settings=settings,
                                library=LibrarySettings(format=AudioFormat(fmt), split=split, jobs=jobs),
                                progress=progress)
    for result in report.results:
        if result.outcome is Outcome.SKIPPED:
            click.echo(f"note: {result.path}: {result.message}; skipped", err=True)
        elif result.outcome is Outcome.FAILED:
            click.echo(result.message, err=True)
        elif result.entry is not None:
            entry = result.entry
            for warning in result.warnings:
                click.echo(f"warning: {warning}", err=True)
            parts = f"{len(entry.tracks)} tracks" if entry.split else f"{entry.steps} chapters"
            click.echo(f"{entry.playlist or entry.tracks[0].file}: {entry.title}, "
                       f"{format_duration(round(entry.duration_s))}, {parts} ({result.outcome.value})")
    counts = {o: len(report.of(o)) for o in Outcome}
    if counts[Outcome.SKIPPED] == len(report.results):
        raise VoicecoachError("no routines found in " + ", ".join(map(str, routines)),
                              hint="give routine .yaml files, or folders that hold them")
    click.echo(", ".join(f"{counts[o]} {o.value}" for o in Outcome if counts[o]) + f" -> {out_dir}")
    if counts[Outcome.FAILED]:
        raise VoicecoachError(f"{counts[Outcome.FAILED]} of {len(report.results) - counts[Outcome.SKIPPED]} "
                              "routines failed to export", hint="fix the problems above and export again")


@cli.command(context_settings=CONTEXT)
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--base-url", required=True, help="Where FOLDER is served, e.g. http://192.168.1.20:8000/.")
@click.option("--title", default="voicecoach routines", show_default=True, help="The podcast's title.")
@click.option("--description", help="The podcast's description.")
@click.option("--author", default="voicecoach", show_default=True, help="The podcast's author.")
def feed(folder: Path, base_url: str, title: str, description: str | None, author: str) -> None:
    """Write FOLDER/feed.xml: a podcast feed (RSS 2.0, iTunes, Podcasting 2.0) of the exports.

    A phone's podcast app subscribes to it and downloads the routines with their chapters.
    `voicecoach serve` serves the folder and this feed.

    \b
    Example:
      voicecoach feed phone/ --base-url http://192.168.1.20:8000/ --title "My face routines"
    """
    from .phone.feed import FeedSettings, write_feed

    extra = {"description": description} if description else {}
    settings = FeedSettings(base_url=base_url, title=title, author=author, **extra)
    path, missing = write_feed(folder, settings=settings)
    for name in missing:
        click.echo(f"warning: {folder / name} is missing; export again to bring it back", err=True)
    click.echo(f"wrote {path}")


@cli.command(context_settings=CONTEXT)
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", help="Address to listen on [default: this machine's LAN address]; 0.0.0.0 for all.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free).")
@click.option("--no-qr", is_flag=True, help="Do not print the QR code of the feed URL.")
@click.option("--verbose", is_flag=True, help="Print each request.")
def serve(folder: Path, host: str | None, port: int, no_qr: bool, verbose: bool) -> None:
    """Serve FOLDER and its podcast feed over HTTP on the local network.

    Prints the feed URL and a QR code of it: scan it with the phone, or add the URL to a
    podcast app. Players can seek (HTTP range requests); only files in FOLDER are served.
    Ctrl-C stops.

    \b
    Example:
      voicecoach serve phone/ --port 8000
    """
    from .phone.library import read_manifest
    from .phone.serve import feed_url, make_server, qr_text

    log = (lambda line: click.echo(line, err=True)) if verbose else None
    server = make_server(folder, host=host, port=port, log=log)
    if not read_manifest(folder):
        click.echo(f"warning: {folder} has no exported routines yet; run `voicecoach export ROUTINE... -d {folder}`",
                   err=True)
    url = feed_url(server)
    click.echo(f"Serving {folder} at {server.app.base_url}")
    click.echo(f"Podcast feed: {url}")
    if not no_qr:
        click.echo(qr_text(url), nl=False)
    click.echo("Ctrl-C stops.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        server.server_close()


@cli.command(context_settings=CONTEXT)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--from", "from_step", metavar="STEP", help="Start at this step: its number or the start of its name.")
@click.option("--loop", is_flag=True, help="When the routine ends, play it again from the start step (until q).")
@click.option("--no-keys", is_flag=True, help="Do not read keys from the terminal (scripted use).")
@click.option("--volume", type=click.IntRange(0, 100), default=100, show_default=True, help="Volume in percent.")
@click.option("--backend", "backend_name", type=click.Choice(["miniaudio", "simpleaudio", "fake"]), default="miniaudio",
              show_default=True, help="Sound output: miniaudio (PulseAudio, PipeWire, ALSA, ...), simpleaudio "
              "(pip install 'voicecoach[simpleaudio]'), or fake (no sound, as fast as possible: for tests).")
@click.option("--device", help="Output device: a number or (part of) a name from --devices.")
@click.option("--devices", "show_devices", is_flag=True, help="List the output devices and exit.")
@click.option("--script-keys", hidden=True,
              help="Timed keys, e.g. 'wait:1.0,space,wait:1.0,space,n' (seconds of device time; for tests).")
@speech_options
def play(file: Path | None, from_step: str | None, loop: bool, no_keys: bool, volume: int, backend_name: str,
         device: str | None, show_devices: bool, script_keys: str | None, engine: str, voice: str | None,
         rate: float | None, cache_dir: Path | None, no_cache: bool, jobs: int | None) -> None:
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
    import shutil
    from datetime import datetime, timezone

    from .compile import step_title
    from .keys import HELP, RawTerminal, parse_script
    from .pipeline import LiveBuild
    from .player import Player, find_step, list_devices, make_backend, run_session
    from .practice_log import PracticeLog, PracticeLogError
    from .status import StatusView

    if show_devices:
        for info in list_devices(backend_name):
            click.echo(f"{info.number:>3}  {info.name}  ({info.backend})")
        return
    if file is None:
        raise VoicecoachError("no routine to play", hint="give its file: voicecoach play ROUTINE.yaml (--devices lists devices)")
    script = parse_script(script_keys) if script_keys else []
    audio = make_backend(backend_name, device=device)
    # Plays while later steps are still being synthesized and scheduled: the same samples as compile.
    source = LiveBuild(file, settings=_settings(engine, voice, rate, cache_dir, no_cache, jobs))
    try:
        routine = source.routine
        titles = [step_title(step, label) for step, label in flat_steps(routine.steps)]
        start = find_step(titles, from_step, routine=routine.title) if from_step else 0
        source.wait(chapters=start + 1)
        practice: PracticeLog | None = PracticeLog()
        try:
            practice.check()
        except PracticeLogError as error:  # never blocks playing
            click.echo(f"warning: {error.format()}; this session will not be logged", err=True)
            practice = None
        player = Player(source, start_step=start, loop=loop, volume_percent=volume)
        terminal = RawTerminal() if not no_keys and RawTerminal.available() else None
        click.echo(f"{routine.title}: {len(titles)} steps" + (f" | {HELP}" if terminal else ""))
        view = StatusView(player.timeline, live=sys.stdout.isatty(), width=shutil.get_terminal_size().columns,
                          steps_total=len(titles))
        started = datetime.now(timezone.utc)
        interrupt, failure = None, None
        try:
            run_session(player, audio, view=view, show=lambda text: click.echo(text, nl=False), terminal=terminal,
                        script=script)
        except KeyboardInterrupt as stop:  # Ctrl-C (or SIGTERM): stop cleanly, log, then exit as interrupted
            interrupt = stop
        except VoicecoachError as error:  # e.g. the device went away: still log what was played
            failure = error
    finally:
        source.close()
    outcome = player.result()
    if failure is not None and not outcome.played_s:
        raise failure
    if isinstance(failure, AudioDeviceError):  # lost mid-session: say how to go on from here
        failure = AudioDeviceError(failure.message, hint=(
            "reconnect it or restart the sound server, then go on from this step: "
            f"voicecoach play {shlex.quote(str(file))} --from {player.current_step() + 1}"))
    click.echo(f"{'Stopped' if interrupt else 'Played'} {format_duration(round(outcome.played_s))}: "
               f"{outcome.steps_completed} of {outcome.steps_total} steps completed"
               + (", finished." if outcome.finished else "."))
    if practice is not None and outcome.played_s > 0:
        _log_session(practice, file, player.timeline, outcome, started)
    if failure is not None:
        raise failure
    if interrupt is not None:
        raise interrupt


def _log_session(practice, file: Path, timeline, outcome, started) -> None:
    """Record a played session; a broken log only warns."""
    from .practice_log import PracticeLogError, file_hash, new_session

    areas: dict[str, float] = {}
    for chapter, seconds in zip(timeline.chapters, outcome.seconds_per_step):
        if chapter.area is not None and seconds:
            areas[chapter.area.value] = areas.get(chapter.area.value, 0.0) + seconds
    session = new_session(
        routine=timeline.routine, file_hash=file_hash(file), started=started, seconds_played=outcome.played_s,
        steps_completed=outcome.steps_completed, steps_total=outcome.steps_total, finished=outcome.finished,
        area_seconds=areas, seconds_total=timeline.duration_s,
    )
    try:
        practice.record(session)
        streak = practice.summary().current_streak_days
    except PracticeLogError as error:
        click.echo(f"warning: {error.format()}; this session was not logged", err=True)
        return
    click.echo(f"Logged. Practice streak: {streak} day{'s' if streak != 1 else ''}.")


@cli.command(name="log", context_settings=CONTEXT)
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
    from .practice_log import PracticeLog

    practice = PracticeLog()
    summary = practice.summary(limit=limit)
    if as_json:
        click.echo(json.dumps({
            "database": str(practice.path),
            "today": summary.today.isoformat(),
            "total_sessions": summary.total_sessions,
            "streak": {"current_days": summary.current_streak_days, "longest_days": summary.longest_streak_days},
            "minutes_per_area": {"last_7_days": {a: round(m, 3) for a, m in summary.minutes_7_days.items()},
                                 "last_30_days": {a: round(m, 3) for a, m in summary.minutes_30_days.items()}},
            "sessions": [{
                "routine": s.routine, "file_hash": s.file_hash,
                "started_utc": s.started_utc.isoformat(timespec="seconds"), "local_date": s.local_date.isoformat(),
                "seconds_played": round(s.seconds_played, 3), "steps_completed": s.steps_completed,
                "steps_total": s.steps_total, "finished": s.finished, "practised": s.practised,
                "program": s.program, "program_day": s.program_day,
                "minutes_per_area": {a: round(sec / 60, 3) for a, sec in sorted(s.area_seconds.items())},
            } for s in summary.sessions],
        }, indent=1))
        return
    if not summary.total_sessions:
        click.echo(f"No sessions logged yet in {practice.path}: play a routine with `voicecoach play ROUTINE`.")
        return
    days = lambda n: f"{n} day{'s' if n != 1 else ''}"  # noqa: E731
    click.echo(f"Streak: {days(summary.current_streak_days)} (longest {days(summary.longest_streak_days)})")
    for label, minutes in (("last 7 days", summary.minutes_7_days), ("last 30 days", summary.minutes_30_days)):
        areas = ", ".join(f"{area} {m:.1f}" for area, m in minutes.items()) or "none"
        click.echo(f"Minutes per area, {label}: {areas}")
    click.echo(f"Recent sessions ({len(summary.sessions)} of {summary.total_sessions}):")
    for s in summary.sessions:
        when = s.started_utc.astimezone().strftime("%Y-%m-%d %H:%M")
        steps = f"{s.steps_completed}/{s.steps_total}" if s.steps_total else str(s.steps_completed)
        click.echo(f"  {when}  {s.routine:<28} {format_duration(round(s.seconds_played)):>7}  {steps} steps"
                   + ("  finished" if s.finished else "" if s.practised else "  (under 80 %: not a practice day)"))


_PROGRAM = "scripts/programs/thirty-days-face-fitness.yaml"
_DATE = click.DateTime(["%Y-%m-%d"])


@cli.group(name="program", context_settings=CONTEXT)
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
    _check_files(files, strict, _settings(engine, voice, rate, cache_dir, no_cache, jobs) if deep else None)


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
    from .programs.days import preview_lines, program_plan
    from .programs.format import load_program

    data = program_plan(load_program(file), day=day)
    click.echo(json.dumps(data, indent=1) if as_json else "\n".join(preview_lines(data)))


@program_group.command(name="status", context_settings=CONTEXT)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--date", "on", type=_DATE, help="Show it as of this date (YYYY-MM-DD) [default: today].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def program_status(file: Path | None, on, as_json: bool) -> None:
    """Day n of N, days done, streak, what is next, and a calendar heatmap (no colour needed).

    Without FILE: the program played last (see `voicecoach today`).

    \b
    Example:
      voicecoach program status scripts/programs/thirty-days-face-fitness.yaml
    """
    from .programs.today import plan_today, status_json, status_lines

    status = plan_today(file, today=on.date() if on else None).status
    click.echo(json.dumps(status_json(status), indent=1) if as_json else "\n".join(status_lines(status)))


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class _Size(click.ParamType):
    """A size like 500M or 2G (powers of 1024), or a number of bytes."""

    name = "size"

    def convert(self, value, param, ctx) -> int:
        import re

        if isinstance(value, int):
            return value
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(value), re.IGNORECASE)
        if not match:
            self.fail(f"{value!r} is not a size; write e.g. 500M, 2G or 1000000", param, ctx)
        return int(float(match[1]) * _SIZE_UNITS[match[2].upper()])


def _human(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _cache_dir_option(func):
    return click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                        help=f"Cache folder [default: ${ENV_VAR} or audio_cache/].")(func)


def _open_cache(cache_dir: Path | None):
    from .cache import Cache

    return Cache(cache_dir or default_cache_dir())


@cli.group(name="cache", context_settings=CONTEXT)
def cache_group() -> None:
    """Inspect and manage the audio cache of synthesized clips and mixed tracks.

    Entries carry a checksum: a damaged one is found, removed and rendered again when needed.
    Several runs may share one cache at the same time.

    \b
    Example:
      voicecoach cache info
      voicecoach cache verify
      voicecoach cache prune --max-size 500M
      voicecoach cache clear
    """


@cache_group.command(name="info", context_settings=CONTEXT)
@_cache_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cache_info(cache_dir: Path | None, as_json: bool) -> None:
    """Show how many entries the cache holds and their size, by kind.

    \b
    Example:
      voicecoach cache info --cache-dir audio_cache/
    """
    info = _open_cache(cache_dir).info()
    if as_json:
        click.echo(json.dumps({"cache_dir": str(info.root), "entries": info.entries, "bytes": info.bytes,
                               "by_kind": {k: {"entries": v.entries, "bytes": v.bytes} for k, v in info.by_kind.items()},
                               "temp_files": info.temp_files}, indent=1))
        return
    click.echo(f"cache {info.root}")
    for kind, part in info.by_kind.items():
        click.echo(f"  {kind:<7} {part.entries:>7} entries  {_human(part.bytes):>11}")
    click.echo(f"  {'total':<7} {info.entries:>7} entries  {_human(info.bytes):>11}")
    if info.temp_files:
        click.echo(f"  {_count(info.temp_files, 'temporary file')} (being written, or left by an interrupted run)")


@cache_group.command(name="verify", context_settings=CONTEXT)
@_cache_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cache_verify(cache_dir: Path | None, as_json: bool) -> None:
    """Check every entry's checksum; remove damaged ones (they are rendered again when needed).

    Also removes temporary files that interrupted runs left behind. Exits 0 when every entry
    was valid, 1 when damaged entries were found (and removed).

    \b
    Example:
      voicecoach cache verify
    """
    report = _open_cache(cache_dir).verify()
    if as_json:
        click.echo(json.dumps({"checked": report.checked, "valid": report.valid, "damaged": [str(p) for p in report.bad],
                               "stale_temp_files_removed": report.stale_removed}, indent=1))
    else:
        for path in report.bad:
            click.echo(f"damaged, removed: {path}")
        click.echo(f"{_count(report.checked, 'entry', 'entries')} checked: {report.valid} valid, "
                   f"{len(report.bad)} damaged" + (f", {_count(report.stale_removed, 'leftover temporary file')} removed"
                                                   if report.stale_removed else ""))
    if report.bad:
        raise click.exceptions.Exit(1)


@cache_group.command(name="prune", context_settings=CONTEXT)
@_cache_dir_option
@click.option("--max-size", "max_size", type=_Size(), required=True,
              help="Keep at most this much: 500M, 2G (powers of 1024) or bytes.")
def cache_prune(cache_dir: Path | None, max_size: int) -> None:
    """Remove the least recently used entries until the cache fits in --max-size.

    Every use of an entry marks it as recently used, so routines you compile often stay.

    \b
    Example:
      voicecoach cache prune --max-size 500M
    """
    report = _open_cache(cache_dir).prune(max_bytes=max_size)
    click.echo(f"removed {_count(report.removed, 'entry', 'entries')} ({_human(report.freed_bytes)}); "
               f"kept {_count(report.kept, 'entry', 'entries')} ({_human(report.kept_bytes)})")


@cache_group.command(name="clear", context_settings=CONTEXT)
@_cache_dir_option
def cache_clear(cache_dir: Path | None) -> None:
    """Remove every entry from the cache (it fills again as routines are compiled).

    \b
    Example:
      voicecoach cache clear --cache-dir audio_cache/
    """
    cache = _open_cache(cache_dir)
    removed = cache.clear()
    click.echo(f"removed {_count(removed, 'entry', 'entries')} from {cache.root}")


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
    signal.signal(signal.SIGTERM, raise_terminated)  # `kill` cleans up like Ctrl-C does (exit 143)
    cli(prog_name="voicecoach")


if __name__ == "__main__":
    main()
