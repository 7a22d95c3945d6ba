"""Writing files so that nobody ever sees half of one."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

TEMP_SUFFIX = ".vctmp"
"""Every temporary file we create ends with this, so leftovers of a killed run can be found."""

STALE_TEMP_S = 300
"""A temporary file unwritten for this long is a killed run's leftover (a live writer keeps writing)."""


def remove_stale_temp_files(folder: str | os.PathLike, *, prefix: str = ".", max_age_s: float = STALE_TEMP_S) -> int:
    """Remove our temporary files directly in ``folder`` that start with ``prefix`` and are stale; how many.

    Only files older than ``max_age_s`` go: a younger one may belong to a run still writing.
    Problems (a missing or read-only folder, a file gone meanwhile) are ignored.
    """
    removed = 0
    limit_ns = time.time_ns() - int(max_age_s * 1e9)
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(prefix) and entry.name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime_ns < limit_ns:
                        os.unlink(entry.path)
                        removed += 1
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, fsync: bool = True, sweep: bool = True,
                 mode: int = 0o666, rename_to: Callable[[], str | os.PathLike] | None = None) -> Iterator[BinaryIO]:
    """Yield a binary file in the target's folder; on success it replaces ``path`` at once.

    ``mode`` (less the umask) is the new file's permissions: 0o600 for a secret.
    ``rename_to``: where the finished file goes instead of ``path``, asked once it is written
    (in the same folder: a cache entry whose key is known only at its end).

    On any exception the temporary file is removed and ``path`` is left as it was.  ``sweep``
    first removes stale temporary files of the same target left by a killed run.
    """
    target = Path(path)
    if sweep:
        remove_stale_temp_files(target.parent, prefix=f".{target.name}.")
    tmp = None
    try:
        while True:
            # The name is known before the file exists, so that Ctrl-C (or SIGTERM, see cli.py)
            # at any moment after it is created finds it in ``tmp`` and removes it below.
            tmp = os.path.join(target.parent, f".{target.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
            try:
                # 0o666 less the umask by default: an ordinary file, like any other the user makes
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
                break
            except FileExistsError:  # another writer's name: never ours to remove
                tmp = None
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, rename_to() if rename_to is not None else target)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
