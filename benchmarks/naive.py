"""The pipeline most people would write first: the benchmark's baseline.

pyttsx3 saves every cue of the timeline to a WAV file (no cache, no de-duplication, one
engine, one phrase per runAndWait), pydub concatenates clips and silences (and overlays what
overlaps), and pydub exports the MP3 through ffmpeg.  It follows the same timeline as
voicecoach, so both produce the same routine.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from pydub import AudioSegment

from voicecoach.engines.espeak_server import load_espeak
from voicecoach.mix import tone_samples
from voicecoach.model import EventKind, Timeline


def naive_compile(timeline: Timeline, out_mp3: Path, *, wpm: int = 175, bitrate: str = "96k") -> None:
    load_espeak()  # the same espeak-ng library as voicecoach, so only the pipeline differs
    import pyttsx3

    AudioSegment.converter = imageio_ffmpeg.get_ffmpeg_exe()
    engine = pyttsx3.init("espeak")
    engine.setProperty("rate", wpm)
    rate = timeline.sample_rate
    track = AudioSegment.silent(duration=0, frame_rate=rate)
    with tempfile.TemporaryDirectory() as folder:
        wav = os.path.join(folder, "cue.wav")
        for event in timeline.events:
            if event.kind is EventKind.SPEECH:
                with contextlib.redirect_stdout(io.StringIO()):  # pyttsx3 prints "Audio saved to ..."
                    engine.save_to_file(event.text, wav)
                    engine.runAndWait()
                clip = AudioSegment.from_wav(wav).set_frame_rate(rate)
            else:
                samples = np.round(tone_samples(event.tone, sample_rate=rate) * 32767).astype("<i2")
                clip = AudioSegment(samples.tobytes(), frame_rate=rate, sample_width=2, channels=1)
            start_ms = event.start_sample * 1000 / rate
            if start_ms >= len(track):
                track = track + AudioSegment.silent(duration=start_ms - len(track), frame_rate=rate) + clip
            else:  # overlaps what is already there (a bell under "Release")
                if start_ms + len(clip) > len(track):
                    track = track + AudioSegment.silent(duration=start_ms + len(clip) - len(track), frame_rate=rate)
                track = track.overlay(clip, position=start_ms)
        end_ms = timeline.length_samples * 1000 / rate
        if end_ms > len(track):
            track = track + AudioSegment.silent(duration=end_ms - len(track), frame_rate=rate)
        track.export(str(out_mp3), format="mp3", bitrate=bitrate)
