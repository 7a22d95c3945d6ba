"""The command line: a thin layer over the library (which never imports click).

User errors become one line on stderr and exit code 2, here and only here (see ``main``).
"""

from __future__ import annotations

import json
import signal
import sys
from fractions import Fraction
from pathlib import Path

import click

from . import __version__
from .cache import ENV_VAR, default_cache_dir
from .errors import RoutineErrors, VoicecoachError, raise_terminated, stop_message
from .formats import FORMAT_NAMES, FORMATS
from .grammar import count, noun
from .pipeline import Settings, build, check_output_path, export, plan
from .model import flat_steps
from .script import load_routine
from .engines import AUTO, DEFAULT_ENGINE, ENGINE_CHOICES, ENGINES
from .summary import plan_steps
from .timing import format_duration

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_DATE = click.DateTime(["%Y-%m-%d"])


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
    _check_files(files, strict, _settings(engine, voice, rate, cache_dir, no_cache, jobs) if deep else None)


def _check_files(files: tuple[Path, ...], strict: bool, deep_settings: Settings | None) -> None:
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
    settings = _settings(engine, voice, rate, cache_dir, no_cache, jobs)
    with _Progress() as progress:
        result = build(file, settings=settings, progress=progress)
        export(result, out, settings=settings, timeline_json=timeline_path, captions=captions, progress=progress)
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


@cli.group(context_settings=CONTEXT, invoke_without_command=True)
@click.option("--engine", type=click.Choice(sorted(ENGINES)), help="Only this engine [default: every speech engine].")
@click.option("--language", help="Only voices for this language (e.g. en, de).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def voices(ctx: click.Context, engine: str | None, language: str | None, as_json: bool) -> None:
    """List the speech engines, their voices and languages, and how to install a missing engine.

    A voice marked [auto: ...] is the one the default engine, auto, speaks those languages with.
    Add a Piper voice with `voicecoach voices add MODEL.onnx`.

    \b
    Example:
      voicecoach voices --language en
      voicecoach voices --engine piper
    """
    if ctx.invoked_subcommand is not None:
        return
    from .engines import auto_picks, list_voices, missing_engines, speech_engines

    missing = missing_engines()
    names = [engine] if engine else list(dict.fromkeys([*speech_engines(), *missing]))
    found = list_voices(engine, language)
    picks = auto_picks(found)
    if as_json:
        click.echo(json.dumps([{"engine": v.engine, "id": v.id, "name": v.name, "languages": list(v.languages),
                                "auto": list(picks.get((v.engine, v.id), ()))} for v in found], indent=1))
        return
    for name in names:
        if name in missing:
            click.echo(f"{name}: not installed ({missing[name].about}); install it with: {missing[name].install}")
            continue
        these = [v for v in found if v.engine == name]
        click.echo(f"{name}: {count(len(these), 'voice')} (write the id in a routine's `voice:` or pass --voice)")
        for v in these:
            auto = picks.get((v.engine, v.id))
            mark = f"  [auto: {', '.join(auto)}]" if auto else ""
            click.echo(f"  {v.id:<24} {', '.join(v.languages):<12} {v.name}{mark}")


@voices.command("add", context_settings=CONTEXT)
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="What `voice:` will call it [default: the model file's name without .onnx].")
@click.option("--language", help="Refuse the model unless its config says it speaks this language (e.g. de).")
def voices_add(model: Path, name: str | None, language: str | None) -> None:
    """Add a Piper voice: MODEL.onnx with its MODEL.onnx.json beside it.

    The model is checked (it loads and speaks; language, sample rate and speakers come from
    its config) and copied with its config into the data folder's voices/
    ($VOICECOACH_DATA_DIR/voices). From then on auto speaks its language with it, and
    `voice: NAME` (or NAME#speaker for a multi-speaker model) picks it in any routine.

    \b
    Example:
      voicecoach voices add ~/Downloads/de_DE-thorsten-medium.onnx
    """
    from .engines.piper_voices import add_voice, voices_dir

    added = add_voice(model, name=name, language=language)
    speakers = f", {len(added.speakers)} speakers (voice: {added.name}#SPEAKER)" if added.speakers else ""
    click.echo(f"added {added.name}: {added.language}, {added.sample_rate} Hz{speakers}; licence: {added.licence} "
               f"-> {voices_dir()}")


@voices.command("remove", context_settings=CONTEXT)
@click.argument("name")
def voices_remove(name: str) -> None:
    """Remove a Piper voice added with `voicecoach voices add`.

    \b
    Example:
      voicecoach voices remove de_DE-thorsten-medium
    """
    from .engines.piper_voices import remove_voice

    removed = remove_voice(name)
    click.echo(f"removed {removed.name} ({removed.language})")


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


@cli.command(name="export", context_settings=CONTEXT)
@click.argument("routines", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-d", "--dir", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to export into (created if its parent exists).")
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), default="mp3", show_default=True,
              help="; ".join(f"{f.name}: {f.description}" for f in FORMATS.values()) + ".")
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
    from .phone.library import LibrarySettings, Outcome, export_library

    settings = _settings(engine, voice, rate, cache_dir, no_cache, jobs)
    with _Progress() as progress:
        report = export_library(routines, out_dir, settings=settings,
                                library=LibrarySettings(format=FORMATS[fmt], split=split, jobs=jobs),
                                progress=progress)
    shown: set[str] = set()  # one cache folder for many routines: each warning once
    for result in report.results:
        if result.outcome is Outcome.SKIPPED:
            click.echo(f"note: {result.path}: {result.message}; skipped", err=True)
        elif result.outcome is Outcome.FAILED:
            click.echo(result.message, err=True)
        elif result.entry is not None:
            entry = result.entry
            for note in result.notes:
                click.echo(f"note: {note}", err=True)
            for warning in result.warnings:
                if warning not in shown:
                    shown.add(warning)
                    click.echo(f"warning: {warning}", err=True)
            parts = count(len(entry.tracks), "track") if entry.split else count(entry.steps, "chapter")
            click.echo(f"{entry.playlist or entry.tracks[0].file}: {entry.title}, "
                       f"{format_duration(round(entry.duration_s))}, {parts} ({result.outcome.value})")
    for path, layout, files in report.replaced:  # one export per routine and folder: say what went
        click.echo(f"note: {path}: replaced its earlier {layout} export ({', '.join(files)})", err=True)
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
@click.option("--new-token", is_flag=True, help="Make a new secret for the URLs: old links and subscriptions stop working.")
@click.option("--no-token", is_flag=True, help="Serve without the secret in the URLs: anyone on the network gets in.")
@click.option("--verbose", is_flag=True, help="Print each request.")
def serve(folder: Path, host: str | None, port: int, no_qr: bool, new_token: bool, no_token: bool,
          verbose: bool) -> None:
    """Serve FOLDER and its podcast feed over HTTP on the local network.

    Prints the feed URL and a QR code of it: scan it with the phone, or add the URL to a
    podcast app. Every URL carries a secret token (kept in the user's data folder and reused,
    so subscriptions keep working); requests without it get 404. Players can seek (HTTP range
    requests); only files in FOLDER are served. Ctrl-C stops.

    \b
    Example:
      voicecoach serve phone/ --port 8000
      voicecoach serve phone/ --new-token     # old links stop working
    """
    from .phone.library import read_manifest
    from .phone.serve import feed_url, make_server, qr_text, serve_token

    if new_token and no_token:
        raise VoicecoachError("--new-token and --no-token contradict each other", hint="give one of them")
    log = (lambda line: click.echo(line, err=True)) if verbose else None
    token = None if no_token else serve_token(new=new_token)
    server = make_server(folder, host=host, port=port, token=token, log=log)
    if no_token:
        click.echo("warning: --no-token: anyone on this network can list and download everything in "
                   f"{folder}", err=True)
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


def _play(source, *, from_step: str | None, loop: bool, no_keys: bool, volume: int, backend_name: str,
          device: str | None, script_keys: str | None, log_file: Path | None, engine: str, voice: str | None,
          rate: float | None, cache_dir: Path | None, no_cache: bool, jobs: int | None, log_fields=None) -> None:
    """Play a routine file or a made source with the command line's options (`play`, `today`)."""
    from .play.session import PlayOptions, play_routine

    options = PlayOptions(from_step=from_step, loop=loop, keys=not no_keys, volume_percent=volume, backend=backend_name,
                          device=device, script_keys=script_keys or "", log_path=log_file, log_fields=log_fields or {},
                          settings=_settings(engine, voice, rate, cache_dir, no_cache, jobs))
    play_routine(source, options, show=lambda text: click.echo(text, nl=False),
                 warn=lambda line: click.echo(line, err=True))


@cli.command(context_settings=CONTEXT)
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
    from .play.backends import device_report

    if show_devices:
        devices, why = device_report(options["backend_name"])
        for info in devices:
            click.echo(f"{info.number:>3}  {info.name}  ({info.backend})")
        if not devices:  # what exists is nothing: say why and what to do (not an error)
            click.echo(f"no output devices: {why}")
        return
    if file is None:
        raise VoicecoachError("no routine to play", hint="give its file: voicecoach play ROUTINE.yaml (--devices lists devices)")
    _play(file, **options)


@cli.command(context_settings=CONTEXT)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--day", type=click.IntRange(1), help="Play this day of the program instead of today's.")
@click.option("--date", "on", type=_DATE, help="Take today to be this date (YYYY-MM-DD); the session counts for it.")
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
    from .pipeline import LiveBuild
    from .practice_log import PracticeLog
    from .programs.today import plan_today

    plan = plan_today(file, day=day, today=on.date() if on else None, log=PracticeLog(options["log_file"]))
    click.echo(plan.heading())
    if plan.routine is not None:
        keys = ("engine", "voice", "rate", "cache_dir", "no_cache", "jobs")
        source = LiveBuild(plan.routine, settings=_settings(*(options[k] for k in keys)))
        source.path = Path(plan.program.path)  # the log keeps the program file's hash
        _play(source, **options, log_fields=plan.log_fields())


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


class _Size(click.ParamType):
    """A size like 500M or 2G (powers of 1024), or a number of bytes."""

    name = "size"

    def convert(self, value, param, ctx) -> int:
        from .cache import parse_size

        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


def _human(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _cache_dir_option(func):
    return click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                        help=f"Cache folder [default: ${ENV_VAR}, else the audio_cache/ of the project around "
                             "the current folder, else ~/.cache/voicecoach].")(func)


def _open_cache(cache_dir: Path | None):
    from .cache import Cache

    return Cache(cache_dir or default_cache_dir())


def _cache_location(cache_dir: Path | None):
    from .cache import CacheLocation, locate_cache

    return CacheLocation(cache_dir, "--cache-dir") if cache_dir else locate_cache()


@cli.group(name="cache", context_settings=CONTEXT)
def cache_group() -> None:
    """Inspect and manage the audio cache of synthesized clips and mixed tracks.

    The cache is --cache-dir, else $VOICECOACH_CACHE_DIR, else the audio_cache/ folder of the
    project you are in (the nearest existing one in the current folder or above, as git finds
    .git), else ~/.cache/voicecoach ($XDG_CACHE_HOME/voicecoach). After each run it is pruned to
    its size cap, least recently used first: 1 GiB, or $VOICECOACH_CACHE_MAX (500M, 2G, none).
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
    """Show where the cache is and why, its entries and their size by kind, and its size cap.

    \b
    Example:
      voicecoach cache info --cache-dir audio_cache/
    """
    from .cache import MAX_ENV_VAR

    location = _cache_location(cache_dir)
    cache = _open_cache(location.path)
    info = cache.info()
    if as_json:
        click.echo(json.dumps({"cache_dir": str(info.root), "chosen_by": location.reason, "entries": info.entries,
                               "bytes": info.bytes, "max_bytes": cache.max_bytes,
                               "by_kind": {k: {"entries": v.entries, "bytes": v.bytes} for k, v in info.by_kind.items()},
                               "temp_files": info.temp_files}, indent=1))
        return
    click.echo(f"cache {info.root}")
    click.echo(f"  chosen: {location.reason}")
    for kind, part in info.by_kind.items():
        click.echo(f"  {kind:<7} {part.entries:>7} {noun(part.entries, 'entry', 'entries'):<7}  {_human(part.bytes):>11}")
    click.echo(f"  {'total':<7} {info.entries:>7} {noun(info.entries, 'entry', 'entries'):<7}  {_human(info.bytes):>11}")
    cap = _human(cache.max_bytes) if cache.max_bytes is not None else "none"
    click.echo(f"  cap     {cap} (least recently used entries go after each run; set ${MAX_ENV_VAR})")
    if info.temp_files:
        click.echo(f"  {count(info.temp_files, 'temporary file')} (being written, or left by an interrupted run)")


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
        click.echo(f"{count(report.checked, 'entry', 'entries')} checked: {report.valid} valid, "
                   f"{len(report.bad)} damaged" + (f", {count(report.stale_removed, 'leftover temporary file')} removed"
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
    click.echo(f"removed {count(report.removed, 'entry', 'entries')} ({_human(report.freed_bytes)}); "
               f"kept {count(report.kept, 'entry', 'entries')} ({_human(report.kept_bytes)})")


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
    click.echo(f"removed {count(removed, 'entry', 'entries')} from {cache.root}")


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
