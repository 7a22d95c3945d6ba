"""`voicecoach export`, `feed` and `serve`: routines and programs to a phone.

Click lives only in the command modules (cli.py, cli_options.py and a feature's commands.py); the
library they call never imports it.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..cli_options import CONTEXT, Progress, settings_from_options, speech_options
from ..errors import VoicecoachError
from ..formats import FORMAT_NAMES, FORMATS
from ..grammar import count
from ..timing import format_duration


@click.command(name="export", context_settings=CONTEXT)
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
    from .library import LibrarySettings, Outcome, export_library

    settings = settings_from_options(engine, voice, rate, cache_dir, no_cache, jobs)
    with Progress() as progress:
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


@click.command(context_settings=CONTEXT)
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
    from .feed import FeedSettings, write_feed

    extra = {"description": description} if description else {}
    settings = FeedSettings(base_url=base_url, title=title, author=author, **extra)
    path, missing = write_feed(folder, settings=settings)
    for name in missing:
        click.echo(f"warning: {folder / name} is missing; export again to bring it back", err=True)
    click.echo(f"wrote {path}")


@click.command(context_settings=CONTEXT)
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
    from .library import read_manifest
    from .serve import feed_url, make_server, qr_text, serve_token

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


