"""A speech server around pyttsx3 + espeak-ng: ``python -m voicecoach._espeak_server``.

Why a server that forks a child per phrase:
- espeak-ng keeps synthesis state between utterances in a process (the same text comes out a
  few samples different depending on what was said before), so clips would not be a pure
  function of their cache key.  A child forked from a process that loaded the library but
  never initialized it starts every phrase from the same state: byte-identical clips.
- pyttsx3's engine loop runs espeak asynchronously (a callback thread, an ``IsPlaying``
  check that can cancel a phrase, a 10 ms polling sleep); under this server's load it now and
  then returned before the WAV was written, or wrote it empty, and its queued rate change was
  sometimes not in force yet.  So each child uses pyttsx3's espeak binding synchronously:
  initialize, set voice and rate (checked), ``Synth`` returns when the phrase is complete.
  One engine per process, one phrase per engine, no thread.
- Children run in parallel (one per core) and a hung or crashed child is killed after a
  timeout and reported with its text, without taking the command down.
- This process is single-threaded (fork-safe); pyttsx3's prints go to /dev/null so they
  cannot corrupt the JSON-lines protocol on the real stdout.

Protocol (JSON lines): the server first writes ``{"ready": true, "sample_rate": ..,
"version": ..}``.  Requests: ``{"op": "synth", "id": .., "text": .., "voice": .., "wpm": ..,
"sample_rate": .., "out": path}`` (the child writes the finished clip, see mix.process_clip) ... then ``{"op": "run", "jobs": N, "timeout": s}`` runs the batch, answering
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
import wave
from collections import deque

ESPEAK_SAMPLE_RATE = 22050  # pyttsx3's espeak driver writes its WAVs at this rate

FAULT_ENV = "VOICECOACH_TEST_ESPEAK_FAULT"
"""Test hook, read only by this server's children: ``hang:MARKER`` or ``crash:MARKER`` makes the
child of every text containing MARKER sleep forever or abort, so tests can prove that a hung or
crashed engine is caught (tests/test_reliability.py).  Unset in normal use."""


def _test_fault(text: str) -> None:
    kind, _, marker = os.environ.get(FAULT_ENV, "").partition(":")
    if not marker or marker not in text:
        return
    if kind == "hang":
        while True:
            time.sleep(3600)
    if kind == "crash":
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
        os.abort()


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


def _synchronous_espeak(voice: str | None):
    """espeak-ng, through pyttsx3's binding, initialized synchronously in this (child) process."""
    from pyttsx3.drivers import _espeak

    rate = _espeak.Initialize(_espeak.AUDIO_OUTPUT_SYNCHRONOUS, 0)
    if rate != ESPEAK_SAMPLE_RATE:
        raise RuntimeError(f"could not initialize espeak-ng (got {rate})")
    if voice is not None and _espeak.dll.espeak_SetVoiceByName(voice.encode("utf-8")) != 0:
        raise ValueError(f"SetVoiceByName failed for {voice!r}")
    return _espeak


def _child_synth(request: dict) -> int:
    """In a fresh child: one engine, one phrase, one WAV file."""
    _test_fault(request["text"])
    _espeak = _synchronous_espeak(request["voice"])
    wpm = int(request["wpm"])
    _espeak.SetParameter(_espeak.RATE, wpm, 0)
    if _espeak.dll.espeak_GetParameter(_espeak.RATE, 1) != wpm:
        raise RuntimeError(f"espeak did not take the speech rate {wpm}")
    chunks: list[bytes] = []

    def on_audio(samples, count, events) -> int:
        if count > 0:
            chunks.append(ctypes.string_at(samples, count * 2))
        return 0  # go on

    _espeak.SetSynthCallback(on_audio)
    status = _espeak.Synth(request["text"], flags=_espeak.ENDPAUSE | _espeak.CHARS_UTF8)
    if status != 0:
        raise RuntimeError(f"espeak_Synth returned {status}")
    audio = b"".join(chunks)
    if not audio:
        return 3
    import numpy as np

    return write_finished_clip(np.frombuffer(audio, dtype="<i2"), source_rate=ESPEAK_SAMPLE_RATE, request=request)


def write_finished_clip(raw, *, source_rate: int, request: dict) -> int:
    """Finish a raw int16 clip (mix.process_clip) and write it as the request's WAV.

    Done in the child, so clips are finished in parallel, not one by one in the client.
    """
    from voicecoach.mix import process_clip

    rate = int(request["sample_rate"])
    clip = process_clip(raw, source_rate=source_rate, sample_rate=rate)
    with wave.open(request["out"], "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(clip.astype("<i2").tobytes())
    return 0


def _child_voices(request: dict) -> int:
    import pyttsx3

    _synchronous_espeak(None)
    from pyttsx3.drivers.espeak import EspeakDriver

    EspeakDriver._moduleInitialized = True  # initialized above; the driver must not do it again
    EspeakDriver._defaultVoice = "gmw/en"
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


def _run_batch(batch: deque, jobs: int, timeout: float, reply, *, work=None, engine: str = "espeak") -> None:
    """Run every request of ``batch`` in its own child, ``jobs`` at a time (``work(request)`` in
    the child; _piper_server uses this too), answering each as it finishes."""
    running: dict[int, tuple[dict, float]] = {}
    while batch or running:
        while batch and len(running) < jobs:
            request = batch.popleft()
            pid = _fork(request, work or _child_synth)
            running[pid] = (request, time.monotonic() + timeout)
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for child, (request, deadline) in list(running.items()):
                if now > deadline:
                    os.kill(child, signal.SIGKILL)
                    os.waitpid(child, 0)
                    del running[child]
                    reply({"id": request["id"], "ok": False, "error": f"{engine} did not finish within {timeout:g} s"})
            time.sleep(0.001)
            continue
        request, _ = running.pop(pid)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            reply({"id": request["id"], "ok": True})
            continue
        if os.WIFSIGNALED(status):
            error = f"{engine} crashed ({signal.Signals(os.WTERMSIG(status)).name})"
        else:
            error = f"{engine} exited with status {os.WEXITSTATUS(status)}"
        try:
            with open(request["out"] + ".err", encoding="utf-8") as handle:
                error = handle.read() or error
            os.unlink(request["out"] + ".err")
        except OSError:
            pass
        reply({"id": request["id"], "ok": False, "error": error})


def open_protocol():
    """``reply(message)``, writing JSON lines to the real stdout; stdout itself then goes to
    /dev/null, so nothing a library prints (pyttsx3: "Audio saved to ...") corrupts the protocol."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)

    def reply(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    return reply


def main() -> int:
    reply = open_protocol()
    try:
        load_espeak()
        version = espeak_version()
    except Exception as error:  # the library or its data is missing
        reply({"ready": False, "error": f"{type(error).__name__}: {error}"})
        return 1
    import voicecoach.mix  # noqa: F401  (numpy and the clip processing, imported once for every child)

    reply({"ready": True, "sample_rate": ESPEAK_SAMPLE_RATE, "version": version})

    def voices(request: dict) -> None:
        if request.get("op") == "voices":
            pid = _fork(request, _child_voices)
            _, status = os.waitpid(pid, 0)
            reply({"ok": os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0})

    serve(reply, lambda batch, jobs, timeout: _run_batch(batch, jobs, timeout, reply), other=voices)
    return 0


def serve(reply, run, *, other=None) -> None:
    """Answer requests from stdin until EOF (both servers): ``synth`` requests are collected,
    ``run`` hands the batch to ``run(batch, jobs, timeout)`` and answers ``done``; any other
    request goes to ``other``."""
    batch: deque = deque()
    for line in sys.stdin:
        request = json.loads(line)
        op = request.get("op")
        if op == "synth":
            batch.append(request)
        elif op == "run":
            run(batch, max(1, int(request.get("jobs", 1))), float(request.get("timeout", 60)))
            batch.clear()
            reply({"done": True})
        elif other is not None:
            other(request)


if __name__ == "__main__":
    sys.exit(main())
