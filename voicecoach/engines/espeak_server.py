"""A speech server around pyttsx3 + espeak-ng: ``python -m voicecoach.engines.espeak_server``.

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

Protocol: forkserver's, with ``{"ready": true, "sample_rate": .., "version": ..}`` first and
``synth`` requests ``{"text": .., "voice": .., "wpm": .., "sample_rate": ..}``; ``{"op": "voices",
"out": path}`` writes the voice list as JSON.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time

from voicecoach.engines.forkserver import fork_child, open_protocol, run_batch, serve, write_finished_clip

ESPEAK_SAMPLE_RATE = 22050  # pyttsx3's espeak driver writes its WAVs at this rate

FAULT_ENV = "VOICECOACH_TEST_ESPEAK_FAULT"
"""Test hook, read only by this server's children: ``hang:MARKER`` or ``crash:MARKER`` makes the
child of every text containing MARKER sleep forever or abort, so tests can prove that a hung or
crashed engine is caught (tests/test_reliability.py).  Unset in normal use."""


def inject_test_fault(text: str) -> None:
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


def synchronous_espeak(voice: str | None):
    """espeak-ng, through pyttsx3's binding, initialized synchronously in this (child) process."""
    from pyttsx3.drivers import _espeak

    rate = _espeak.Initialize(_espeak.AUDIO_OUTPUT_SYNCHRONOUS, 0)
    if rate != ESPEAK_SAMPLE_RATE:
        raise RuntimeError(f"could not initialize espeak-ng (got {rate})")
    if voice is not None and _espeak.dll.espeak_SetVoiceByName(voice.encode("utf-8")) != 0:
        raise ValueError(f"SetVoiceByName failed for {voice!r}")
    return _espeak


def child_synth(request: dict) -> int:
    """In a fresh child: one engine, one phrase, one WAV file."""
    inject_test_fault(request["text"])
    _espeak = synchronous_espeak(request["voice"])
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




def child_voices(request: dict) -> int:
    import pyttsx3

    synchronous_espeak(None)
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
            pid = fork_child(request, child_voices)
            _, status = os.waitpid(pid, 0)
            reply({"ok": os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0})

    serve(reply, lambda batch, jobs, timeout: run_batch(batch, jobs, timeout, reply, work=child_synth, engine="espeak"),
          other=voices)
    return 0


if __name__ == "__main__":
    sys.exit(main())
