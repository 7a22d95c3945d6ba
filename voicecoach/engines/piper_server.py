"""A speech server around Piper (neural TTS, ONNX Runtime): ``python -m voicecoach.engines.piper_server``.

Why a server with warm children (forkserver.WorkerPool):
- Loading a voice model takes a fraction of a second: the server loads each model once, and
  its children (one per core) inherit it (copy-on-write), so a compile pays for loading once.
- A Piper voice adds random noise while it speaks (VITS ``noise_scale``/``noise_w``), drawn by
  ONNX Runtime's generators, which advance on every run.  The model is loaded with that noise
  turned into inputs (piper_noise), filled per sentence from a fixed seed, so a phrase comes
  out byte-identical whatever the session said before it, in this process or another.  So a
  child runs phrase after phrase in its warm session: a fresh child per phrase cost about a
  third more CPU (ONNX Runtime's memory allocated and faulted in anew, its first run).
- One intra-op and one inter-op thread per session: ONNX Runtime starts no thread pool, so
  forking is safe, and the children (one per core) are the parallelism.
- No graph optimization (``ORT_DISABLE_ALL``): the model runs as it is written.  Optimizing
  it took about 0.5 s of every model load and made these voices no faster (a little slower).

Protocol (forkserver's): ``{"ready": true, "version": ..}`` first; requests
``{"op": "synth", "id": .., "text": .., "model": path, "config": path, "length_scale": ..,
"speaker_id": n or null, "sample_rate": .., "out": path}`` (a child writes the finished clip, see mix.process_clip),
then ``{"op": "run", "jobs": N, "timeout": s}`` loads the models the batch needs and runs it,
answering ``{"id": .., "ok": bool, "error": ..}`` per phrase, then ``{"done": true}``.
``{"op": "load", "model": path, "config": path}`` loads a model ahead of its phrases (no answer;
a model that fails is reported when a phrase needs it).
EOF ends the server.  Anything here that changes a clip's samples (the noise and its seed, the
silence between sentences, the synthesis settings) must bump ``piper.PiperEngine.PROTOCOL``.
"""

from __future__ import annotations

import json
import os
import sys
from collections import deque

# ONNX Runtime (1.32) starts Microsoft telemetry on Linux too: it writes a session file (.ses) to
# $TMPDIR and may post events to mobile.events.data.microsoft.com.  Nothing may leave the
# machine at run time, so it is switched off before onnxruntime is first imported (this
# module is imported before any use of it: the server, and `voices add`'s check).
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

from voicecoach.engines.forkserver import WorkerPool, open_protocol, serve, write_finished_clip

SENTENCE_SILENCE_S = 0.2
"""Silence between the sentences of one phrase (Piper speaks each sentence separately)."""

_VOICES: dict[str, object] = {}  # model path -> PiperVoice, loaded in the server, used by children


def load_voice(model: str, config: str):
    """A PiperVoice for ``model``: CPU, one thread, its noise as inputs (piper_noise)."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    from voicecoach.engines.piper_noise import NoisySession, noise_as_inputs

    with open(config, encoding="utf-8") as handle:
        piper_config = PiperConfig.from_dict(json.load(handle))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    with open(model, "rb") as handle:
        edited, noise_inputs = noise_as_inputs(handle.read())
    session = onnxruntime.InferenceSession(edited, sess_options=options, providers=["CPUExecutionProvider"])
    voice = PiperVoice(session=NoisySession(session, noise_inputs), config=piper_config)
    voice.phonemize("")  # starts Piper's espeak-ng phonemizer here, once, not in every child
    return voice


def synthesize(voice, text: str, *, length_scale: float, speaker_id: int | None = None):
    """Piper's float samples for ``text``, sentences joined by a short silence."""
    import numpy as np
    from piper.config import SynthesisConfig

    config = SynthesisConfig(length_scale=length_scale, normalize_audio=False, speaker_id=speaker_id)
    voice.session.phrase()  # its sentences get the noise of their place in it, nothing else
    gap = np.zeros(round(SENTENCE_SILENCE_S * voice.config.sample_rate), dtype=np.float32)
    parts = []
    for chunk in voice.synthesize(text, syn_config=config):
        if parts:
            parts.append(gap)
        parts.append(chunk.audio_float_array)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def child_synth(request: dict) -> int:
    """In a child: one phrase from the inherited voice, one finished WAV file."""
    import numpy as np

    voice = _VOICES[request["model"]]
    audio = synthesize(voice, request["text"], length_scale=float(request["length_scale"]),
                       speaker_id=request.get("speaker_id"))
    if not len(audio):
        return 3
    raw = np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)
    return write_finished_clip(raw, source_rate=voice.config.sample_rate, request=request)


def load_models(batch: deque, reply) -> deque:
    """Load every model the batch needs; requests whose model fails are answered as failed."""
    runnable: deque = deque()
    failed: dict[str, str] = {}
    for request in batch:
        model = request["model"]
        if model not in _VOICES and model not in failed:
            try:
                _VOICES[model] = load_voice(model, request["config"])
            except Exception as error:  # a missing, truncated or foreign model file
                failed[model] = f"cannot load the voice model: {type(error).__name__}: {error}"
        if model in failed:
            reply({"id": request["id"], "ok": False, "error": failed[model]})
        else:
            runnable.append(request)
    return runnable


def preload(request: dict) -> None:
    """``{"op": "load"}``: load a model before its phrases come (a failure is reported then)."""
    if request.get("op") == "load" and request.get("model") not in _VOICES:
        try:
            _VOICES[request["model"]] = load_voice(request["model"], request["config"])
        except Exception:  # load_models tries again and answers each phrase with the error
            pass


def main() -> int:
    reply = open_protocol()
    try:
        from importlib import metadata

        import numpy  # noqa: F401  (imported once, for every child)
        import onnxruntime  # noqa: F401
        import piper  # noqa: F401
        import voicecoach.mix  # noqa: F401

        version = metadata.version("piper-tts")
    except Exception as error:  # piper-tts is not installed, or broken
        reply({"ready": False, "error": f"{type(error).__name__}: {error}"})
        return 1
    reply({"ready": True, "version": version})

    pool = WorkerPool(child_synth, "piper")

    def run(batch: deque, jobs: int, timeout: float) -> None:
        runnable = load_models(batch, reply)
        pool.run(runnable, jobs, timeout, reply, key=tuple(_VOICES))  # models loaded since: new children

    try:
        serve(reply, run, other=preload)
    finally:
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
