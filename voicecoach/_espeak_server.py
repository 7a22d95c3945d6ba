"""A speech server around pyttsx3 + espeak-ng: ``python -m voicecoach._espeak_server``.

Why a server that forks a child per phrase:
- espeak-ng keeps synthesis state between utterances in a process (the same text comes out a
  few samples different depending on what was said before), so clips would not be a pure
  function of their cache key.  A child forked from a process that loaded the library but
  never initialized it starts every phrase from the same state: byte-identical clips.
- pyttsx3 allows one engine per process and queues one ``save_to_file`` per ``runAndWait``:
  each child has exactly one engine and one phrase.
- Children run in parallel (one per core) and a hung or crashed child is killed after a
  timeout and reported with its text, without taking the command down.
- This process is single-threaded (fork-safe); pyttsx3's prints go to /dev/null so they
  cannot corrupt the JSON-lines protocol on the real stdout.

Protocol (JSON lines): the server first writes ``{"ready": true, "sample_rate": ..,
"version": ..}``.  Requests: ``{"op": "synth", "id": .., "text": .., "voice": .., "wpm": ..,
"out": path}`` ... then ``{"op": "run", "jobs": N, "timeout": s}`` runs the batch, answering
``{"id": .., "ok": bool, "error": ..}`` per phrase as each finishes, then ``{"done": true}``.
``{"op": "voices", "out": path}`` writes the voice list as JSON.  EOF ends the server.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from collections import deque

ESPEAK_SAMPLE_RATE = 22050  # pyttsx3's espeak driver writes its WAVs at this rate


def load_espeak() -> None:
    """Preload the espeak-ng of the espeakng-loader wheel and point it at its data.

    pyttsx3 opens ``libespeak-ng.so.1`` by name; once the wheel's copy (same soname) is
    loaded globally, that lookup finds it, so no system package is needed.
    """
    import espeakng_loader

    ctypes.CDLL(espeakng_loader.get_library_path(), mode=ctypes.RTLD_GLOBAL)
    os.environ["ESPEAK_DATA_PATH"] = espeakng_loader.get_data_path()
    import pyttsx3.drivers.espeak  # noqa: F401  (loads the library, starts no thread)


def espeak_version() -> str:
    from pyttsx3.drivers import _espeak

    return _espeak.Info(None).decode("ascii", "replace")


def _child_synth(request: dict) -> int:
    """In a fresh child: one engine, one phrase, one WAV file."""
    import pyttsx3
    from pyttsx3.drivers import _espeak

    engine = pyttsx3.init("espeak")
    # pyttsx3 swallows a failed voice change and keeps the default voice: check it here.
    if _espeak.SetVoiceByName(request["voice"].encode("utf-8")) != 0:
        raise ValueError(f"SetVoiceByName failed for {request['voice']!r}")
    engine.setProperty("voice", request["voice"])
    engine.setProperty("rate", int(request["wpm"]))
    engine.save_to_file(request["text"], request["out"])
    engine.runAndWait()
    return 0 if os.path.getsize(request["out"]) > 44 else 3


def _child_voices(request: dict) -> int:
    import pyttsx3

    engine = pyttsx3.init("espeak")
    voices = [
        {"id": v.id, "name": v.name, "languages": list(v.languages or []), "gender": v.gender}
        for v in engine.getProperty("voices")
    ]
    with open(request["out"], "w", encoding="utf-8") as handle:
        json.dump(voices, handle)
    return 0


def _fork(request: dict, work) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        code = work(request)
    except BaseException as error:  # report any failure through a side file
        try:
            with open(request["out"] + ".err", "w", encoding="utf-8") as handle:
                handle.write(f"{type(error).__name__}: {error}")
        except OSError:
            pass
        code = 2
    finally:
        os._exit(code)


def _run_batch(batch: deque, jobs: int, timeout: float, reply) -> None:
    running: dict[int, tuple[dict, float]] = {}
    while batch or running:
        while batch and len(running) < jobs:
            request = batch.popleft()
            pid = _fork(request, _child_synth)
            running[pid] = (request, time.monotonic() + timeout)
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for child, (request, deadline) in list(running.items()):
                if now > deadline:
                    os.kill(child, signal.SIGKILL)
                    os.waitpid(child, 0)
                    del running[child]
                    reply({"id": request["id"], "ok": False, "error": f"espeak did not finish within {timeout:g} s"})
            time.sleep(0.001)
            continue
        request, _ = running.pop(pid)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            reply({"id": request["id"], "ok": True})
            continue
        error = f"espeak exited with status {status}"
        try:
            with open(request["out"] + ".err", encoding="utf-8") as handle:
                error = handle.read() or error
            os.unlink(request["out"] + ".err")
        except OSError:
            pass
        reply({"id": request["id"], "ok": False, "error": error})


def main() -> int:
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # pyttsx3 prints "Audio saved to ..." on stdout

    def reply(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    try:
        load_espeak()
        version = espeak_version()
    except Exception as error:  # the library or its data is missing
        reply({"ready": False, "error": f"{type(error).__name__}: {error}"})
        return 1
    reply({"ready": True, "sample_rate": ESPEAK_SAMPLE_RATE, "version": version})
    batch: deque = deque()
    for line in sys.stdin:
        request = json.loads(line)
        op = request.get("op")
        if op == "synth":
            batch.append(request)
        elif op == "run":
            _run_batch(batch, max(1, int(request.get("jobs", 1))), float(request.get("timeout", 60)), reply)
            reply({"done": True})
        elif op == "voices":
            pid = _fork(request, _child_voices)
            _, status = os.waitpid(pid, 0)
            reply({"ok": os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0})
    return 0


if __name__ == "__main__":
    sys.exit(main())
