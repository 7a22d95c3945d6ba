"""What each output format really costs: the bitrates ffmpeg reports for a compiled routine.

    python benchmarks/bitrates.py [ROUTINE] [--engine espeak]

Compiles ROUTINE (default scripts/morning.yaml) once into every format of the format table
(voicecoach/formats.py), in a temporary folder with its own cache, and prints per format the
file size, the bitrate of the whole file and of the audio stream as the bundled ffmpeg reports
them (``ffmpeg -i``).  The README's phone-export section quotes these figures: M4B is asked for
64 kb/s, but AAC spends bits only where there is sound, so speech with pauses averages less.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from voicecoach.encode import ffmpeg_exe
from voicecoach.formats import FORMATS
from voicecoach.pipeline import Settings, build, export

ROOT = Path(__file__).resolve().parent.parent


def reported(path: Path) -> tuple[str, str]:
    """(file bitrate, audio stream bitrate) as ``ffmpeg -i`` prints them ("" when not shown)."""
    text = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    whole = re.search(r"bitrate: (\d+ kb/s)", text)
    stream = re.search(r"Audio: .*?, (\d+ kb/s)", text)
    return (whole.group(1) if whole else "", stream.group(1) if stream else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("routine", nargs="?", default=str(ROOT / "scripts" / "morning.yaml"))
    parser.add_argument("--engine", default="espeak")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(engine=args.engine, cache_dir=Path(folder) / "cache")
        result = build(args.routine, settings=settings)
        print(f"{result.routine.title}: {result.timeline.duration_s:.1f} s, engine {args.engine}")
        print(f"{'format':<7} {'bytes':>10}  {'file':>9}  {'audio':>9}")
        for fmt in FORMATS.values():
            out = Path(folder) / f"routine{fmt.extension}"
            export(result, out, settings=settings)
            whole, stream = reported(out)
            print(f"{fmt.name:<7} {out.stat().st_size:>10}  {whole:>9}  {stream:>9}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
