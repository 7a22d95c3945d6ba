"""`voicecoach cache ...`: the audio cache's size, checks and pruning.

Click lives only in the command modules (cli.py, cli_options.py and a feature's commands.py); the
library they call never imports it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .cache import ENV_VAR, default_cache_dir
from .cli_options import CONTEXT
from .grammar import count, noun


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


@click.group(name="cache", context_settings=CONTEXT)
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


