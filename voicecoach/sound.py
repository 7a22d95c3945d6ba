"""Sound files in a routine: a music bed under the speech, and files that replace the tones.

Decoding: WAV, MP3, FLAC and OGG (Vorbis) through miniaudio, straight to the track's rate and
mono; M4A through the ffmpeg binary of the imageio-ffmpeg wheel (pydub would need ffprobe,
which that wheel does not ship).  Decoded samples are cached, content-addressed by the file's
sha256 and the sample rate, so a long MP3 is decoded once.

The music bed is normalized once to :data:`MUSIC_LOUDNESS_LUFS` (times the routine's
``volume``), looped with a crossfade or cut to the routine, faded in and out, and ducked under
speech.  Its gain at sample ``n`` is a pure function of ``n`` and the timeline's speech events
(ramps are tables indexed by the distance to an event's edge), so any span renders exactly as
the whole track has it -- the mixer's promise (see mix.Mixer).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
import os
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .cache import Cache, digest
from .errors import Location, VoicecoachError
from .mix import LoudnessMeter, tone_length, tone_samples
from .model import EventKind, Music, Routine, Sound, Timeline, Tone
from .timing import to_samples

__all__ = [
    "AUDIO_EXTENSIONS",
    "DuckedMusic",
    "MUSIC_LOUDNESS_LUFS",
    "MusicBed",
    "SoundDesign",
    "decode_audio",
    "file_sha256",
    "load_audio",
    "load_sound_design",
    "probe_music",
]

AUDIO_EXTENSIONS = (".wav", ".mp3", ".flac", ".ogg", ".m4a")
"""Audio files a routine may name under ``music:`` and ``sounds:``."""

_MINIAUDIO_EXTENSIONS = (".wav", ".mp3", ".flac", ".ogg")

DECODE_VERSION = "decode-1"
"""Bump when decoding gives other samples for the same file (part of the decoded-audio cache key)."""

SOUND_VERSION = "sound-1"
"""Bump when music or sound processing changes its output (part of the track cache key)."""

MUSIC_LOUDNESS_LUFS = -36.0
"""Where the music bed sits at ``volume: 1``: 20 LU under the speech (clips are at -16 LUFS), low
enough that the quiet stretches it fills stay under the loudness gate, so a track with music
measures like one without (within about 0.3 LU on the library routines)."""

_MAX_MUSIC_GAIN_DB = 24.0  # a near-silent file is not blown up into noise
_MAX_SOUND_S = 30  # a tone's replacement; longer is surely the wrong file
_MAX_AUDIO_S = 2 * 3600  # decoded audio beyond this is refused (memory)
_MAX_MUSIC_S = 3600  # the bed uses at most the first hour of a file (and loops it)

# Music bed shape (seconds).
_ATTACK_S = Fraction(1, 4)  # the music starts going down this long before speech starts
_RELEASE_S = Fraction(3, 5)  # and comes back up over this long after it ends
_MERGE_GAP_S = Fraction(1)  # speech this close together stays ducked (no pumping between counts)
_FADE_IN_S = Fraction(1)
_FADE_OUT_S = Fraction(3)
_CROSSFADE_S = Fraction(2)  # where a loop of the music meets its own start

# Replacement tones: peak like the built-in tone they replace; faded so they start and end at zero.
_SOUND_FADE_IN_S = 0.003
_SOUND_FADE_OUT_S = 0.010


# ---------------------------------------------------------------------------------------
# Files


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int, inode: int, device: int) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            hasher.update(block)
    return hasher.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, computed once per process for an unchanged file (the same
    path, size, modification time and inode: a file replaced by another is hashed again)."""
    info = os.stat(path)
    return _sha256(os.path.realpath(path), info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev)


def _file_error(what: str, path: str, problem: str, location: Location | None, hint: str) -> VoicecoachError:
    return VoicecoachError(f"{what} {os.path.basename(path)!r} {problem}", location=location, hint=hint)


def decode_audio(path: str | os.PathLike, *, sample_rate: int, what: str = "audio file",
                 location: Location | None = None, probe: bool = False) -> np.ndarray:
    """A file's sound as mono int16 at ``sample_rate`` (deterministic; no dither).

    ``probe`` only reads the file's header (the first 0.1 s of an M4A) and returns no
    samples: the same errors, without the time and memory of decoding (``check``).
    """
    path = os.fspath(path)
    hint = "use a WAV, MP3, FLAC, OGG (Vorbis) or M4A file"
    if not os.path.isabs(path):
        raise _file_error(what, path, "cannot be read: the routine was not read from a file", location,
                          "load the routine from its file so its folder is known")
    extension = os.path.splitext(path)[1].lower()
    if extension not in AUDIO_EXTENSIONS:
        raise _file_error(what, path, "is not a known audio file type", location, hint)
    try:
        if extension in _MINIAUDIO_EXTENSIONS:
            samples = _probe_miniaudio(path) if probe else _decode_miniaudio(path, sample_rate)
        else:
            samples = _decode_ffmpeg(path, sample_rate, seconds=0.1 if probe else None)
    except FileNotFoundError:
        raise _file_error(what, path, "was not found", location, "check the path") from None
    except OSError as error:
        raise _file_error(what, path, f"cannot be read: {error.strerror or error}", location,
                          "check the file and its permissions") from None
    except ValueError as error:
        raise _file_error(what, path, f"cannot be decoded: {error}", location, hint) from None
    if len(samples) > _MAX_AUDIO_S * sample_rate:
        raise _file_error(what, path, f"is longer than {_MAX_AUDIO_S // 3600} hours", location,
                          "use a shorter file; music loops to fill the routine")
    return samples


def _decode_miniaudio(path: str, sample_rate: int) -> np.ndarray:
    import miniaudio

    try:
        decoded = miniaudio.decode_file(path, output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1,
                                        sample_rate=sample_rate, dither=miniaudio.DitherMode.NONE)
    except miniaudio.DecodeError as error:
        raise ValueError(str(error) or "not a supported audio stream") from None
    return np.frombuffer(decoded.samples, dtype=np.int16).copy()


def _probe_miniaudio(path: str) -> np.ndarray:
    import miniaudio

    try:
        info = miniaudio.get_file_info(path)
    except miniaudio.DecodeError as error:
        raise ValueError(str(error) or "not a supported audio stream") from None
    if info.num_frames == 0:
        raise ValueError("it has no sound")
    return np.zeros(0, dtype=np.int16)


def _decode_ffmpeg(path: str, sample_rate: int, seconds: float | None = None) -> np.ndarray:
    from .encode import ffmpeg_exe

    limit = ["-t", str(seconds)] if seconds is not None else []
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", path, *limit, "-vn", "-ac", "1",
               "-ar", str(sample_rate), "-f", "s16le", "-acodec", "pcm_s16le", "-bitexact", "-"]
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ValueError(message[-1] if message else f"ffmpeg exited with status {done.returncode}")
    return np.frombuffer(done.stdout, dtype="<i2").astype(np.int16)


def load_audio(path: str | os.PathLike, *, sample_rate: int, cache: Cache, what: str = "audio file",
               location: Location | None = None) -> np.ndarray:
    """:func:`decode_audio`, through the cache (keyed by the file's sha256 and the rate)."""
    path = os.fspath(path)
    if not os.path.isabs(path):
        return decode_audio(path, sample_rate=sample_rate, what=what, location=location)  # says why not
    try:
        sha = file_sha256(path)
    except OSError:
        return decode_audio(path, sample_rate=sample_rate, what=what, location=location)  # says why not
    key = digest("decoded-audio", sha, sample_rate, DECODE_VERSION)
    samples = cache.get_clip(key, sample_rate=sample_rate)
    if samples is None:
        samples = decode_audio(path, sample_rate=sample_rate, what=what, location=location)
        cache.put_clip(key, samples, sample_rate=sample_rate)
    return samples


# ---------------------------------------------------------------------------------------
# Replacement tones


def prepare_sound(samples: np.ndarray, tone: Tone, *, sample_rate: int) -> np.ndarray:
    """A decoded file made a tone: silence trimmed, peak of the built-in tone, ends at zero."""
    from .mix import fade, trim_bounds

    x = samples.astype(np.float64) / 32768.0
    bounds = trim_bounds(x, sample_rate)
    if bounds is None:
        raise ValueError("is silent")
    x = x[bounds[0] : bounds[1]].copy()
    fade(x, round(_SOUND_FADE_IN_S * sample_rate), rising=True)
    fade(x, round(_SOUND_FADE_OUT_S * sample_rate), rising=False)
    peak = float(np.max(np.abs(x)))
    target = float(np.max(np.abs(tone_samples(tone, sample_rate=sample_rate))))
    out = (x * (target / peak) if peak > 0 else x).astype(np.float32)
    out.setflags(write=False)
    return out


# ---------------------------------------------------------------------------------------
# The music bed


def _raised_cosine(n: int) -> np.ndarray:
    """``n`` values rising from just above 0 to exactly 1 (a half cosine)."""
    return 0.5 - 0.5 * np.cos(np.pi * np.arange(1, n + 1) / n) if n > 0 else np.zeros(0)


@dataclass(frozen=True, eq=False)
class MusicBed:
    """A decoded, normalized background track, ready to be laid under any timeline."""

    samples: np.ndarray = field(repr=False)
    """The music at the track's rate, float32, loudness-normalized and times ``volume``."""
    sample_rate: int
    """Samples per second."""
    duck_db: float
    """How far the music goes down under speech."""
    key: str
    """Everything that decides its sound: part of the track cache key."""

    @functools.cached_property
    def _loop(self) -> tuple[int, np.ndarray]:
        """Where the loop starts and one period of it: the end crossfaded into the start."""
        m = self.samples
        crossfade = min(to_samples(_CROSSFADE_S, self.sample_rate), len(m) // 4)
        period = len(m) - crossfade
        theta = np.pi / 2 * np.arange(1, crossfade + 1) / (crossfade + 1)
        loop = m[:period].astype(np.float64)  # m[crossfade:period] as it is ...
        loop[:crossfade] = m[period:] * np.cos(theta) + m[:crossfade] * np.sin(theta)  # equal power
        return period, loop

    def value(self, n: np.ndarray) -> np.ndarray:
        """Music samples at track positions ``n``: once through, then looping."""
        period, loop = self._loop
        first = n < period
        out = np.empty(len(n))
        out[first] = self.samples[n[first]]
        out[~first] = loop[(n[~first] - period) % period]
        return out

    def under(self, timeline: Timeline) -> "DuckedMusic":
        return DuckedMusic(self, timeline)


class DuckedMusic:
    """The music bed under one timeline: faded in and out, ducked under its speech.

    Speech events closer than a second are one ducked stretch; each stretch ramps down over
    :data:`_ATTACK_S` before it and back up over :data:`_RELEASE_S` after it (raised cosines
    in dB).  Gains are taken from precomputed tables by integer distance and combined with
    ``min``, so the value at a sample never depends on the span asked for.
    """

    def __init__(self, bed: MusicBed, timeline: Timeline) -> None:
        rate = bed.sample_rate
        self.bed = bed
        self.length = timeline.length_samples
        self.attack = to_samples(_ATTACK_S, rate)
        self.release = to_samples(_RELEASE_S, rate)
        merge = to_samples(_MERGE_GAP_S, rate)
        floor = 10.0 ** (-bed.duck_db / 20.0)
        self.attack_gain = floor ** _raised_cosine(self.attack)  # 1 -> floor, a raised cosine in dB
        self.release_gain = floor ** (1.0 - _raised_cosine(self.release))  # floor -> 1
        self.floor = floor
        self.fade_in = _raised_cosine(to_samples(_FADE_IN_S, rate))
        self.fade_out = _raised_cosine(to_samples(_FADE_OUT_S, rate))[::-1]
        stretches: list[list[int]] = []
        for start, end in sorted((e.start_sample, e.end_sample) for e in timeline.events
                                 if e.kind is EventKind.SPEECH and e.length_samples > 0):
            if stretches and start - stretches[-1][1] < merge:
                stretches[-1][1] = max(stretches[-1][1], end)
            else:
                stretches.append([start, end])
        self.starts = [s for s, _ in stretches]
        self.ends = [e for _, e in stretches]
        self.lookahead_samples = music_lookahead(rate)

    def span(self, a: int, b: int) -> np.ndarray:
        """The ducked music of samples ``[a, b)`` (float64)."""
        if b <= a:
            return np.zeros(0)
        n = np.arange(a, b, dtype=np.int64)
        gain = np.ones(b - a)
        head = len(self.fade_in)
        if a < head:
            hi = min(b, head)
            np.minimum(gain[: hi - a], self.fade_in[a:hi], out=gain[: hi - a])
        tail = self.length - len(self.fade_out)
        if b > tail:
            lo = max(a, tail)
            np.minimum(gain[lo - a :], self.fade_out[lo - tail : b - tail], out=gain[lo - a :])
        # Stretches that reach into [a, b) with their ramps (both lists are sorted).
        first = bisect.bisect_right(self.ends, a - self.release)
        last = bisect.bisect_left(self.starts, b + self.attack)
        for start, end in zip(self.starts[first:last], self.ends[first:last]):
            self._ramp(gain, a, b, start - self.attack, start, self.attack_gain)
            lo, hi = max(a, start), min(b, end)
            if lo < hi:
                np.minimum(gain[lo - a : hi - a], self.floor, out=gain[lo - a : hi - a])
            self._ramp(gain, a, b, end, end + self.release, self.release_gain)
        return self.bed.value(n) * gain

    @staticmethod
    def _ramp(gain: np.ndarray, a: int, b: int, lo: int, hi: int, table: np.ndarray) -> None:
        """``gain[n] = min(gain[n], table[n - lo])`` for ``n`` in ``[lo, hi)`` within ``[a, b)``."""
        x, y = max(a, lo), min(b, hi)
        if x < y:
            np.minimum(gain[x - a : y - a], table[x - lo : y - lo], out=gain[x - a : y - a])


def music_lookahead(sample_rate: int) -> int:
    """How far before the end of a growing timeline the music may still change.

    What a timeline gains later starts at or after its current end; it can pull the music
    down that early (an attack, or a gap that becomes short enough to stay ducked), and the
    fade-out moves with the end.
    """
    return max(to_samples(_ATTACK_S, sample_rate), to_samples(_MERGE_GAP_S, sample_rate),
               to_samples(_FADE_OUT_S, sample_rate))


def prepare_music(samples: np.ndarray, music: Music, *, sample_rate: int, sha256: str) -> MusicBed:
    """Decoded music made a bed: its first hour at most, loudness-normalized once, times ``volume``."""
    x = samples[: _MAX_MUSIC_S * sample_rate].astype(np.float32) / np.float32(32768.0)
    meter = LoudnessMeter(sample_rate=sample_rate)
    for start in range(0, len(x), 1 << 20):  # in pieces: an hour of float64 at once would be a gigabyte
        meter.add(x[start : start + (1 << 20)])
    level = meter.loudness()
    gain_db = min(MUSIC_LOUDNESS_LUFS - level, _MAX_MUSIC_GAIN_DB) if math.isfinite(level) else 0.0
    x *= np.float32(10.0 ** (gain_db / 20.0) * float(music.volume))
    x.setflags(write=False)
    key = digest("music", SOUND_VERSION, sha256, sample_rate, str(music.volume), str(music.duck_db))
    return MusicBed(samples=x, sample_rate=sample_rate, duck_db=float(music.duck_db), key=key)


# ---------------------------------------------------------------------------------------
# A routine's sound design


@dataclass
class SoundDesign:
    """A routine's music bed and replacement tones, decoded and ready for compile and mix."""

    sample_rate: int
    """The track's rate."""
    music: MusicBed | None = None
    """The background track, if the routine has one."""
    tones: dict[Tone, np.ndarray] = field(default_factory=dict)
    """Replacement tones (float32), by the tone they replace."""
    tone_keys: dict[Tone, str] = field(default_factory=dict)
    """The sha256 of each replacement's file."""

    def tone_samples(self, tone: Tone) -> np.ndarray:
        """A tone's samples: the routine's file, or the built-in tone."""
        custom = self.tones.get(tone)
        return custom if custom is not None else tone_samples(tone, sample_rate=self.sample_rate)

    def tone_length(self, tone: Tone) -> int:
        """A tone's length in samples (what compile schedules)."""
        custom = self.tones.get(tone)
        return len(custom) if custom is not None else tone_length(tone, sample_rate=self.sample_rate)

    def lookahead_samples(self) -> int:
        """See :func:`music_lookahead` (0 without music)."""
        return 0 if self.music is None else music_lookahead(self.sample_rate)

    def background(self, timeline: Timeline) -> DuckedMusic | None:
        """The music under ``timeline`` (``None`` without music)."""
        return None if self.music is None else self.music.under(timeline)

    def key(self) -> str:
        """Everything here that changes the track ("" when nothing does: built-in tones, no music)."""
        if self.music is None and not self.tones:
            return ""
        tones = sorted((tone.value, sha) for tone, sha in self.tone_keys.items())
        return digest("sound-design", SOUND_VERSION, self.music.key if self.music else None, tones)


def load_sound_design(routine: Routine, *, sample_rate: int, cache: Cache | None = None,
                      music: bool = True) -> SoundDesign:
    """Decode (or take from the cache) the routine's ``music:`` and ``sounds:`` files.

    ``music=False`` skips the music (it does not change the timing: ``preview`` and ``check``).
    Problems are errors located where the file is named.
    """
    cache = cache or Cache(None)
    design = SoundDesign(sample_rate=sample_rate)
    for sound in routine.sounds:
        design.tones[sound.tone], design.tone_keys[sound.tone] = _load_sound(sound, sample_rate, cache)
    if music and routine.music is not None:
        spec = routine.music
        samples = load_audio(spec.file, sample_rate=sample_rate, cache=cache, what="music file", location=spec.loc)
        if not len(samples):
            raise _file_error("music file", spec.file, "has no sound", spec.loc, "choose another file")
        design.music = prepare_music(samples, spec, sample_rate=sample_rate, sha256=file_sha256(spec.file))
    return design


def probe_music(routine: Routine) -> None:
    """Read the header of the routine's music file: what :func:`load_sound_design` would refuse,
    found without decoding it (``check``)."""
    if routine.music is not None:
        decode_audio(routine.music.file, sample_rate=44100, what="music file", location=routine.music.loc, probe=True)


def _load_sound(sound: Sound, sample_rate: int, cache: Cache) -> tuple[np.ndarray, str]:
    what = f"{sound.tone.value} sound"
    samples = load_audio(sound.file, sample_rate=sample_rate, cache=cache, what=what, location=sound.loc)
    if len(samples) > _MAX_SOUND_S * sample_rate:
        raise _file_error(what, sound.file, f"is longer than {_MAX_SOUND_S} seconds", sound.loc,
                          "a tone should be short: trim the file")
    try:
        prepared = prepare_sound(samples, sound.tone, sample_rate=sample_rate)
    except ValueError as error:
        raise _file_error(what, sound.file, str(error), sound.loc, "choose a file with a sound in it") from None
    return prepared, file_sha256(sound.file)
