"""Time to first sound of `voicecoach play`, with a fake audio device.

    python benchmarks/first_sound.py ROUTINE CACHE_DIR [--engine NAME]

Follows the path of `voicecoach play` (LiveBuild -> Player -> a pull backend) with a device
that pulls frames as fast as a sound card would be fed, and prints the seconds from the
start of playing (the routine file given, imports done) to the moment the first non-silent
frame is requested.  Also prints, on stderr, the time since the interpreter started.
"""

from __future__ import annotations

import os
import sys
import time

PROCESS_START = time.perf_counter()

from voicecoach.pipeline import LiveBuild, Settings  # noqa: E402
from voicecoach.play.backends import FakeBackend  # noqa: E402
from voicecoach.play.player import Player  # noqa: E402


class FirstSoundBackend(FakeBackend):
    """Records when a pulled chunk first holds a non-silent frame, then stops."""

    def __init__(self) -> None:
        super().__init__(chunk_frames=1024)
        self.first_sound_at: float | None = None

    def _pull_until_done(self, player: Player) -> None:
        while not self._closing.is_set():
            chunk = player.pull(self.chunk_frames)
            if chunk.any():
                self.first_sound_at = time.perf_counter()
                player.quit()
                return
            if player.state().ended:
                return


def main() -> None:
    routine, cache = sys.argv[1:3]
    engine = sys.argv[4] if sys.argv[3:4] == ["--engine"] else None
    began = time.perf_counter()
    source = LiveBuild(routine, settings=Settings(engine=engine, cache_dir=cache))
    source.wait(chapters=1)  # what `play` does before it starts the device
    player = Player(source)
    backend = FirstSoundBackend()
    backend.start(player)
    while backend.first_sound_at is None and not player.state().ended:
        time.sleep(0.001)
    backend.close()
    source.close()
    if backend.first_sound_at is None:
        raise SystemExit("the routine never made a sound")
    print(f"since interpreter start: {backend.first_sound_at - PROCESS_START:.3f} s", file=sys.stderr)
    launched = os.environ.get("VOICECOACH_BENCH_LAUNCHED")  # the parent's time.time() when it started us
    if launched:
        wall = time.time() - (time.perf_counter() - backend.first_sound_at) - float(launched)
        print(f"since process start: {wall:.3f} s", file=sys.stderr)
    print(f"{backend.first_sound_at - began:.4f}")


if __name__ == "__main__":
    main()
