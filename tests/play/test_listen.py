"""listen.py without a sound server: command words, the echo filter, the recognizer on the
project's own synthesized speech, and the voice input source fed from a stand-in microphone."""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest
import yaml

from voicecoach.model import EventKind
from voicecoach.pipeline import Settings, plan
from voicecoach.play.controller import Action, Controller
from voicecoach.play.listen import (
    COMMAND_ACTIONS,
    DEFAULT_THRESHOLD,
    NEAR_END_DB,
    EchoMeter,
    EchoSuppressor,
    SAMPLE_RATE,
    CommandFilter,
    Hit,
    Recognizer,
    Thresholds,
    VoiceCommands,
    acknowledgement,
    calibrated_thresholds,
    command_languages,
    command_words,
    feed_all,
    pronunciations,
    spoken_recently,
    thresholds_for,
)
from voicecoach.play.player import Player
from voicecoach.play.status import StatusView

from tests.play.spoken import noise, spoken_words, to_int16
from tests.play.tracks import RATE, timeline, track  # noqa: F401  (fixtures)

REST_ROUTINE = """\
routine: Echo
steps:
  - massage: Sweep
    strokes: 2
    tempo: 1s
  - rest: 6s
  - massage: Circles
    strokes: 2
    tempo: 1s
"""


def test_word_lists_have_every_command_and_fall_back_to_english():
    assert set(command_languages()) >= {"en", "de", "fr", "es"}
    for language in command_languages():
        data = yaml.safe_load((resources.files("voicecoach") / "vocab" / "commands" / f"{language}.yaml").read_text())
        assert set(data["commands"]) == set(COMMAND_ACTIONS), language
    english = command_words("en")
    assert english.phrases["pause"] is Action.PAUSE and english.phrases["continue"] is Action.RESUME
    assert english.phrases["stop"] is Action.QUIT and english.model == "en-us"
    assert command_words("de").phrases == english.phrases  # no German model: the English words work
    assert command_words("en-GB").phrases == english.phrases
    woken = english.with_wake_word("Coach")
    assert woken.phrases["coach next"] is Action.NEXT and "next" not in woken.phrases


def test_thresholds_come_from_the_calibration_file():
    data = calibrated_thresholds("en-us")
    written = json.loads((resources.files("voicecoach") / "vocab" / "commands" / "thresholds-en-us.json").read_text())
    assert set(written["wake_words"]) == {"coach"}  # calibrate_listen.py --wake-word coach
    woken = command_words("en").with_wake_word("coach")
    for state in (data.quiet, data.speaking):
        assert set(state) == set(command_words("en").phrases) | set(woken.phrases)
        assert all(0 < value < float("inf") for value in state.values())
    assert thresholds_for(woken).quiet == {phrase: data.quiet[phrase] for phrase in woken.phrases}
    assert written["made_by"] == "benchmarks/calibrate_listen.py"  # calibrated, not set by hand
    assert written["thresholds"]["speaking"] == data.speaking and written["thresholds"]["quiet"] == data.quiet
    assert data.clear_db == written["clear_db"] and NEAR_END_DB < data.clear_db < float("inf")
    assert thresholds_for(command_words("en")).clear_db == data.clear_db
    assert VoiceCommands(command_words("en"), capture=object()).filter.clear_db == data.clear_db  # play uses it
    assert Thresholds.same({"pause": 1e-5}).clear_db == float("inf")  # uncalibrated: never


def test_overrides_hold_in_both_states_and_unknown_phrases_get_the_default():
    words = command_words("en").with_wake_word("coach")
    chosen = thresholds_for(words, {"coach next": 1e-5})
    assert chosen.quiet["coach next"] == chosen.speaking["coach next"] == 1e-5
    assert chosen.quiet["coach pause"] == calibrated_thresholds("en-us").quiet["coach pause"]
    other = thresholds_for(command_words("en").with_wake_word("trainer"))  # a wake word of one's own
    assert other.quiet["trainer pause"] == other.speaking["trainer pause"] == DEFAULT_THRESHOLD


@pytest.fixture(scope="module")
def rest_timeline(tmp_path_factory):
    path = tmp_path_factory.mktemp("listen") / "echo.yaml"
    path.write_text(REST_ROUTINE)
    return plan(path, settings=Settings(sample_rate=RATE))


def test_a_word_the_coach_just_said_is_echo(rest_timeline):
    announce = next(e for e in rest_timeline.events if e.kind is EventKind.SPEECH and e.text.startswith("Next up"))
    during = announce.start_sample + announce.length_samples // 2
    assert spoken_recently(rest_timeline, during, ["next"])
    assert spoken_recently(rest_timeline, announce.end_sample + RATE, ["next"])  # 1 s after: still within 1.5 s
    assert not spoken_recently(rest_timeline, announce.end_sample + 2 * RATE, ["next"])
    assert not spoken_recently(rest_timeline, during, ["pause"])
    words = command_words("en")
    guard = CommandFilter(words)
    assert guard.decide(Hit("next", 1.0, 1.1), rest_timeline, during).reason == "echo"
    assert guard.decide(Hit("pause", 1.0, 1.1), rest_timeline, during).reason == "gate"  # the coach is speaking
    # ... unless spotted at the threshold that holds while the coach speaks
    assert CommandFilter(words).decide(Hit("pause", 1.0, 1.1, True), rest_timeline, during).action is Action.PAUSE
    # With an echo meter: at the echo's level even the strict spotter's hit is the coach; above
    # it, the strict spotter's hit is a voice in the room, the permissive one's still the coach's;
    # and while the meter does not know the echo yet (its first seconds), nothing over the coach acts.
    assert CommandFilter(words).decide(Hit("pause", 1.0, 1.1, True, NEAR_END_DB - 3, True), rest_timeline,
                                       during).reason == "gate"
    assert CommandFilter(words).decide(Hit("pause", 1.0, 1.1, True, NEAR_END_DB + 3, True), rest_timeline,
                                       during).action is Action.PAUSE
    assert CommandFilter(words).decide(Hit("pause", 1.0, 1.1, False, NEAR_END_DB + 3, True), rest_timeline,
                                       during).reason == "gate"
    assert CommandFilter(words).decide(Hit("pause", 1.0, 1.1, True, None, True), rest_timeline,
                                       during).reason == "gate"
    # A word that rose clear_db above the echo is clear of the coach: the quiet set holds for it
    # (also where the meter heard the coach silent); clear_db infinite (uncalibrated): never.
    clear = CommandFilter(words, clear_db=24.0)
    assert clear.decide(Hit("pause", 1.0, 1.1, False, 24.0, True), rest_timeline, during).action is Action.PAUSE
    assert CommandFilter(words, clear_db=24.0).decide(Hit("pause", 1.0, 1.1, False, math.inf, True), rest_timeline,
                                                      during).action is Action.PAUSE
    assert CommandFilter(words, clear_db=24.0).decide(Hit("pause", 1.0, 1.1, False, 23.0, True), rest_timeline,
                                                      during).reason == "gate"
    assert CommandFilter(words).decide(Hit("pause", 1.0, 1.1, False, math.inf, True), rest_timeline,
                                       during).reason == "gate"
    assert CommandFilter(words, clear_db=24.0).decide(Hit("next", 1.0, 1.1, False, 40.0, True), rest_timeline,
                                                      during).reason == "echo"  # the coach's own word: never
    speech = [e for e in rest_timeline.events if e.kind is EventKind.SPEECH]
    quiet = next(p for p in range(0, rest_timeline.length_samples, RATE // 10)  # 1.5 s without the coach's voice
                 if not any(e.start_sample < p and e.end_sample > p - 3 * RATE // 2 for e in speech) and p > RATE)
    taken = guard.decide(Hit("pause", 1.0, 1.1), rest_timeline, quiet)
    assert taken.action is Action.PAUSE
    assert CommandFilter(words).decide(Hit("pause", 1.0, 1.1, False, NEAR_END_DB - 3), rest_timeline,
                                       quiet).reason == "gate"  # the coach's tones and music are echo too
    assert guard.decide(Hit("pause", 1.3, 1.4), rest_timeline, quiet).reason == "repeat"  # spotted twice
    assert guard.decide(Hit("stop", 3.0, 3.1), rest_timeline, quiet).action is Action.QUIT
    woken = CommandFilter(words.with_wake_word("coach"))
    assert woken.decide(Hit("coach next", 1.0, 1.1), rest_timeline, during).reason == "echo"
    assert woken.decide(Hit("coach back", 1.0, 1.1), rest_timeline, quiet).action is Action.BACK


def _bursts(seconds: float, seed: int) -> np.ndarray:
    """Speech-like output: noise bursts of 0.1-0.4 s with pauses, at the track's rate."""
    rng = np.random.default_rng(seed)
    out = np.zeros(round(seconds * RATE))
    at = 0
    while at < len(out):
        length = int(rng.uniform(0.1, 0.4) * RATE)
        out[at : at + length] = rng.normal(0, 3000, len(out[at : at + length]))
        at += length + int(rng.uniform(0.05, 0.3) * RATE)
    return out


def test_the_echo_meter_tells_a_voice_in_the_room_from_the_coach():
    coach = _bursts(12.0, seed=1)
    mic_rate = np.interp(np.arange(round(12.0 * SAMPLE_RATE)) * RATE / SAMPLE_RATE, np.arange(len(coach)), coach)
    delay = round(0.12 * SAMPLE_RATE)  # the output reaches the microphone 120 ms late, at -10 dB
    mic = np.zeros_like(mic_rate)
    mic[delay:] = mic_rate[:-delay] * 10 ** (-10 / 20)
    mic += np.random.default_rng(2).normal(0, 30, len(mic))  # the room
    voice = slice(round(10.0 * SAMPLE_RATE), round(10.5 * SAMPLE_RATE))  # someone speaks over the coach
    mic[voice] += np.random.default_rng(3).normal(0, 3000, voice.stop - voice.start)
    meter = EchoMeter()
    for start in range(0, len(mic), 480):  # as play does it: output and microphone piece by piece
        meter.output(start / SAMPLE_RATE, coach[round(start * RATE / SAMPLE_RATE) : round((start + 480) * RATE / SAMPLE_RATE)],
                     RATE)
        meter.mic(start / SAMPLE_RATE, np.clip(mic[start : start + 480], -32768, 32767).astype(np.int16))
    assert meter.near_end_db(10.0, 10.5) >= NEAR_END_DB + 3
    # A word's run of sound takes in some of the coach's echo around it: here more than half.
    assert meter.near_end_db(9.5, 10.6) >= NEAR_END_DB
    coach_only = [meter.near_end_db(t, t + 0.5) for t in (8.0, 8.6, 9.2)]
    assert all(db is not None and db < NEAR_END_DB - 3 for db in coach_only), coach_only
    silent = EchoMeter()
    silent.mic(0.0, np.zeros(5 * SAMPLE_RATE, np.int16))
    assert silent.near_end_db(4.0, 4.5) == math.inf  # nothing sounded: whatever was heard, not the coach
    silent.output(3.0, coach[: RATE], RATE)
    assert silent.near_end_db(4.0, 4.5) is None  # the coach sounded, its echo is not known yet


def test_the_echo_meter_takes_the_rooms_reverberation_for_the_coach():
    # Short sounds (a cue's clicks) in a reverberant room: the microphone goes on hearing each
    # one after the output stopped.  That tail is the coach's echo, not someone in the room.
    rng = np.random.default_rng(4)
    clicks = np.zeros(12 * SAMPLE_RATE)
    starts = np.cumsum(rng.uniform(0.4, 0.7, 30))  # irregular: the echo's delay is not ambiguous
    starts = starts[starts < 11.5]
    for start in starts:
        at = round(start * SAMPLE_RATE)
        clicks[at : at + 800] = rng.normal(0, 5000, 800)  # 50 ms
    t = np.arange(round(0.4 * SAMPLE_RATE)) / SAMPLE_RATE
    room = rng.normal(0, 1, len(t)) * np.exp(-6.9 * t / 0.4)  # reverberation time 0.4 s
    room = np.concatenate([np.zeros(round(0.06 * SAMPLE_RATE)), room]) * 10 ** (-10 / 20) / np.sqrt(np.sum(room**2))
    mic = np.convolve(clicks, room)[: len(clicks)] + noise(len(clicks), level_db=-60, seed=1)
    meter = EchoMeter()
    _fed_piece_by_piece(clicks, mic, meter, meter.mic)
    tails = [meter.near_end_db(s + 0.12, s + 0.4) for s in starts if s > 8.0]  # after each click: its tail
    assert all(db is not None and db < NEAR_END_DB for db in tails), tails


def test_the_acknowledgement_is_short_and_not_a_cue_tone():
    ack = acknowledgement(44100)
    assert 0.1 < len(ack) / 44100 < 0.2 and 0 < np.abs(ack).max() < 32767 // 2
    spectrum = np.abs(np.fft.rfft(ack.astype(float)))
    peak_hz = np.argmax(spectrum) * 44100 / len(ack)
    assert 1100 < peak_hz < 1900


COACH_SAYS = ("Breathe in slowly, and let your shoulders drop.", "Sweep from the chin up to the ear, gently, with both hands.")
"""The coach's own sentences, for its echo."""


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spoken")
    return spoken_words(sorted(command_words("en").phrases) + ["coach pause", "coach next", *COACH_SAYS], engine="piper",
                        rate=1.0, folder=folder, cache_dir=folder / "cache")


def _coach_talking(spoken, times: int = 4) -> np.ndarray:
    """The coach's two sentences again and again, 0.15 s apart (float, 16 kHz)."""
    gap = np.zeros(round(0.15 * SAMPLE_RATE), np.int16)
    return np.concatenate([spoken[COACH_SAYS[0]], gap, spoken[COACH_SAYS[1]], gap] * times).astype(np.float64)


def _through_a_room(output: np.ndarray, *, delay_s: float = 0.15, level_db: float = -10.0) -> np.ndarray:
    """What a microphone hears of ``output``: ``delay_s`` late, with a short decaying room tail, ``level_db`` down."""
    tail_t = np.arange(1, round(0.1 * SAMPLE_RATE)) / SAMPLE_RATE
    tail = np.random.default_rng(5).normal(0, 1, len(tail_t)) * np.exp(-6.9 * tail_t / 0.25) * 0.04
    response = np.concatenate([np.zeros(round(delay_s * SAMPLE_RATE)), [1.0], tail])
    response *= 10 ** (level_db / 20) / np.sqrt(np.sum(response**2))
    return np.convolve(output, response)[: len(output)]


def _fed_piece_by_piece(output: np.ndarray, mic: np.ndarray, meter: EchoMeter, take) -> None:
    """As play does it: the player's output block and the microphone's piece, 30 ms at a time."""
    for start in range(0, len(mic), 480):
        meter.output(start / SAMPLE_RATE, output[start : start + 480], SAMPLE_RATE)
        take(start / SAMPLE_RATE, np.clip(np.rint(mic[start : start + 480]), -32768, 32767).astype(np.int16))


def test_the_echo_suppressor_takes_a_delayed_room_echo_out_and_keeps_a_word_said_over_it(spoken):
    coach = _coach_talking(spoken)
    echo = _through_a_room(coach) + noise(len(coach), level_db=-50, seed=2)
    word = np.zeros_like(coach)
    at = round(10.0 * SAMPLE_RATE)
    word[at : at + len(spoken["pause"])] = spoken["pause"]  # someone says "pause" over the coach
    meter = EchoMeter()
    suppressor = EchoSuppressor(meter)
    cleaned = []

    def through(start_s: float, piece: np.ndarray) -> None:  # what the recognizer does with a meter
        meter.mic(start_s, piece)
        cleaned.append(suppressor.process(piece))

    _fed_piece_by_piece(coach, echo + word, meter, through)
    out = np.concatenate(cleaned).astype(np.float64)
    assert len(out) > len(coach) - 2 * 512  # lags the microphone by less than two frames

    def db(x: np.ndarray) -> float:
        return 10 * np.log10(np.mean(x**2) + 1e-9)

    # Echo return loss enhancement where only the coach sounds, once the echo is known (from 4 s on):
    erle = db(echo[4 * SAMPLE_RATE : at]) - db(out[4 * SAMPLE_RATE : at])
    said = slice(at, at + len(spoken["pause"]))
    before = db(word[said]) - db(echo[said])  # the word over what is not the word
    after = db(word[said]) - db(out[said] - word[said])
    assert erle >= 12.0, erle  # measured 18.7 and 19.0 dB (Piper's clips before and after piper-server-2)
    assert after - before >= 3.0, (before, after)  # measured 10.6 -> 16.0 and 10.5 -> 14.4 dB
    assert abs(db(out[said]) - db(word[said])) < 1.0  # the word keeps its energy (measured -0.1 dB)


def _with_silence(*clips: np.ndarray, gap_s: float = 1.0) -> np.ndarray:
    gap = np.zeros(round(gap_s * SAMPLE_RATE), np.int16)
    return np.concatenate([gap] + [part for clip in clips for part in (clip, gap)])


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The command words in Piper's voice at rate 1.15, quicker than ``spoken``'s."""
    folder = tmp_path_factory.mktemp("quick")
    return spoken_words(sorted(command_words("en").phrases), engine="piper", rate=1.15, folder=folder,
                        cache_dir=folder / "cache")


def _bare_in_a_room(clips) -> np.ndarray:
    """The command words, one after another without a wake word, over room noise at -40 dB."""
    audio = _with_silence(*(clips[word] for word in sorted(command_words("en").phrases)))
    return np.clip(audio + noise(len(audio), level_db=-40, seed=3), -32768, 32767).astype(np.int16)


def test_a_word_said_over_the_coachs_voice_is_heard_with_the_suppressor_and_not_without(spoken):
    # The coach talks on; 150 ms later the microphone hears it, through a room, 10 dB down, and
    # someone says "pause" over it.  Without the suppressor, the coach's voice around the word
    # makes one long run of sound with it, which the grammar hears as "louder"; with it, the
    # word stands alone and is heard as itself (and measured well above the coach's echo).
    coach = _coach_talking(spoken, times=2)
    mic = _through_a_room(coach) + noise(len(coach), level_db=-50, seed=2)
    at = round(8.0 * SAMPLE_RATE)
    mic[at : at + len(spoken["pause"])] += spoken["pause"]
    word_end_s = (at + len(spoken["pause"])) / SAMPLE_RATE

    def heard(suppress: bool) -> list[Hit]:
        meter, hits = EchoMeter(), []
        recognizer = Recognizer(thresholds_for(command_words("en")), meter=meter, suppress=suppress)
        _fed_piece_by_piece(coach, mic, meter, lambda _, piece: hits.extend(recognizer.feed(piece)))
        return [h for h in hits if abs(h.end_s - word_end_s) < 1.0]

    without = heard(False)
    assert "pause" not in [h.phrase for h in without], without
    [hit] = heard(True)
    assert hit.phrase == "pause" and abs(hit.end_s - word_end_s) < 0.1 and hit.near_end_db >= NEAR_END_DB, hit


def test_the_recognizer_spots_the_project_voices_words(spoken):
    recognizer = Recognizer(thresholds_for(command_words("en")))
    audio = _with_silence(spoken["pause"], spoken["continue"])
    hits = feed_all(recognizer, audio)
    first_end = (SAMPLE_RATE + len(spoken["pause"])) / SAMPLE_RATE
    assert [h.phrase for h in hits] == ["pause", "continue"]
    assert abs(hits[0].end_s - first_end) < 0.05 and hits[0].found_s >= hits[0].end_s  # where the word stopped
    assert feed_all(Recognizer(thresholds_for(command_words("en"))), np.zeros(3 * SAMPLE_RATE, np.int16)) == []


def test_alike_commands_compete_in_the_confirmation(spoken):
    # Spotted on their own with permissive thresholds, "softer" also sets off "stop" and "next"
    # "back"; the grammar of all the commands hears which one was said.
    permissive = {phrase: 1e-45 for phrase in command_words("en").phrases}
    audio = _with_silence(spoken["softer"], spoken["next"], spoken["pause"])
    assert [h.phrase for h in feed_all(Recognizer(permissive), audio)] == ["softer", "next", "pause"]


def test_the_confirmation_alone_finds_a_phrase_no_spotter_offers_where_calibrated(spoken):
    # No spotter offers "back" here (its threshold is past reach, as espeak's "back" is for the
    # real spotter), but other phrases' spotters fire in it; the grammar hears it as "back".  It
    # acts only where "back" is in grammar_alone, and then only as the quiet set would.
    unreachable = {phrase: 1e-45 for phrase in command_words("en").phrases} | {"back": 1e30}
    audio = _with_silence(spoken["next"], spoken["back"], spoken["pause"])
    assert [h.phrase for h in feed_all(Recognizer(Thresholds.same(unreachable)), audio)] == ["next", "pause"]
    alone = Thresholds(unreachable, unreachable, grammar_alone=frozenset({"back"}))
    hits = feed_all(Recognizer(alone), audio)
    assert [(h.phrase, h.grammar_alone, h.while_speaking) for h in hits] == [
        ("next", False, True), ("back", True, False), ("pause", False, True)]
    # the calibrated set, for the words the routine's language listens for (none with a wake word)
    assert thresholds_for(command_words("en")).grammar_alone == calibrated_thresholds("en-us").grammar_alone
    assert thresholds_for(command_words("en").with_wake_word("coach")).grammar_alone == frozenset()


def test_each_spoken_word_acts_once_as_the_phrase_that_fits_it_whole(spoken):
    # At the most permissive thresholds the spotters find several commands in most words
    # ("stop" early in "back", "pause" in "repeat"); each word is decoded whole, once, so every
    # word is heard as itself and nothing else.  (Confirming each candidate on a window cut at
    # its own end made 13 hits of these 10 words in this quiet room.)
    permissive = {phrase: 1e-45 for phrase in command_words("en").phrases}
    said = sorted(command_words("en").phrases)
    audio = _with_silence(*(spoken[word] for word in said))
    room = np.clip(audio + noise(len(audio), level_db=-50, seed=1), -32768, 32767).astype(np.int16)
    assert [h.phrase for h in feed_all(Recognizer(permissive), room)] == said


def test_with_a_wake_word_only_the_wake_phrases_count(spoken):
    words = command_words("en").with_wake_word("coach")
    audio = _with_silence(spoken["coach pause"], spoken["pause"], spoken["coach next"])
    assert [h.phrase for h in feed_all(Recognizer(thresholds_for(words)), audio)] == ["coach pause", "coach next"]


def test_with_a_wake_word_a_command_said_without_it_does_not_act(spoken, quick):
    # The nine command words without "coach", in room noise, at a permissive threshold.  Piper's
    # quicker words: the spotter finds "coach resume" in one, and so did the grammar until it
    # knew the bare words too (CommandWords.rivals): it hears the word as itself.  Its words
    # at rate 1: the grammar fitted a short "coach" into the quiet before "stop", until every
    # word of a phrase had to sound (Recognizer._every_word_sounds).  Nothing acts.
    words = command_words("en").with_wake_word("coach")
    assert words.rivals == tuple(sorted(command_words("en").phrases))
    permissive = {phrase: 1e-20 for phrase in words.phrases}
    for clips in (quick, spoken):
        room = _bare_in_a_room(clips)
        if clips is quick:
            assert [h.phrase for h in feed_all(Recognizer(permissive), room)] == ["coach resume"]  # no rivals
        assert [h.phrase for h in feed_all(Recognizer(permissive, rivals=words.rivals), room)] == []
    # and the wake phrases themselves still act
    said = _with_silence(spoken["coach pause"], spoken["coach next"])
    assert [h.phrase for h in feed_all(Recognizer(permissive, rivals=words.rivals), said)] == ["coach pause", "coach next"]


def test_with_an_echo_meter_the_coachs_own_words_are_not_words(spoken):
    # The coach says command words; the microphone hears them 10 dB down.  Without a meter they
    # are words like any other; with one, once it knows the echo (its first second or so), no run
    # of sound rises above the echo, so the recognizer hears nothing at all.
    said = ["softer", "pause", "repeat", "next", "louder", "pause", "back", "resume"]
    coach = _with_silence(*(spoken[word] for word in said), gap_s=0.5).astype(np.float64)
    mic = np.clip(coach * 10 ** (-10 / 20) + noise(len(coach), level_db=-50, seed=3), -32768, 32767).astype(np.int16)
    permissive = {phrase: 1e-45 for phrase in command_words("en").phrases}

    def heard(meter: EchoMeter | None) -> list[Hit]:
        recognizer, hits = Recognizer(permissive, meter=meter), []
        for start in range(0, len(mic), 480):
            if meter is not None:
                meter.output(start / SAMPLE_RATE, coach[start : start + 480], SAMPLE_RATE)
            hits += recognizer.feed(mic[start : start + 480])
        return hits

    assert [h.phrase for h in heard(None)] == said
    assert [h.phrase for h in heard(EchoMeter()) if h.end_s > 2.0] == []


def test_steady_noise_makes_no_word(spoken):
    # Room noise and a mains hum, nothing said: at the most permissive thresholds the spotters
    # still find "pause" in it (each candidate confirmed on its own window, it was heard 4
    # times), but no run of sound rises above the floor, so nothing is heard.
    room = noise(20 * SAMPLE_RATE, level_db=-40, seed=1)
    hum = np.sin(2 * np.pi * 120 * np.arange(len(room)) / SAMPLE_RATE) * 300
    audio = np.clip(room + hum, -32768, 32767).astype(np.int16)
    recognizer = Recognizer({phrase: 1e-50 for phrase in command_words("en").phrases})
    assert feed_all(recognizer, audio) == []
    recognizer.reset()
    assert [h.phrase for h in feed_all(recognizer, np.concatenate([audio, spoken["pause"], audio]))] == ["pause"]


class StandInMic:
    """Delivers a whole recording at once, as 30 ms pieces, when started."""

    def __init__(self, audio: np.ndarray) -> None:
        self.audio = audio
        self.closed = False

    def start(self, deliver) -> None:
        for start in range(0, len(self.audio), 480):
            deliver(self.audio[start : start + 480])

    def close(self) -> None:
        self.closed = True


def test_a_spoken_command_becomes_an_action_with_an_acknowledgement(spoken, track):
    player = Player(track)
    seen = []
    controller = Controller(player, on_action=seen.append)
    mic = StandInMic(_with_silence(spoken["pause"]))
    voice = VoiceCommands(command_words("en"), capture=mic)
    voice.start(controller)
    assert player.output_tap is not None  # what the player sounds goes to the echo meter
    voice.close()  # returns once everything delivered is decoded
    assert mic.closed and voice.error is None and player.output_tap is None
    assert controller.counts() == {"voice": 1} and player.state().paused
    assert seen[0].heard == "pause" and seen[0].source == "voice"
    ack = acknowledgement(RATE)
    out = player.pull(len(ack) + 100)
    assert np.array_equal(out[: len(ack)], ack) and not out[len(ack) :].any()  # over the pause's silence
    view = StatusView(track.timeline, live=True, clock=lambda: 0.0)
    view.listening = True
    assert view.action(seen[0]) is None
    line = view.tick(0, paused=True, volume_percent=100)
    assert line.startswith("\r(mic) | PAUSED | heard: pause | Test routine | ")
    assert StatusView(track.timeline, live=False).action(seen[0]) == "voice: pause at 0:00.00"


def test_play_with_a_wake_word_takes_no_action_on_commands_said_without_it(spoken, quick, track):
    words = command_words("en").with_wake_word("coach")
    said = np.concatenate([_bare_in_a_room(quick), _with_silence(spoken["coach pause"])])
    player = Player(track)
    controller = Controller(player)
    voice = VoiceCommands(words, capture=StandInMic(said))
    voice.thresholds = Thresholds.same({phrase: 1e-20 for phrase in words.phrases})  # permissive (see above)
    voice.start(controller)
    voice.close()
    assert voice.error is None and controller.counts() == {"voice": 1} and player.state().paused


def test_output_blocks_are_stamped_back_to_back_though_the_device_asks_in_bursts():
    voice = VoiceCommands(command_words("en"), capture=StandInMic(np.zeros(0, np.int16)))
    stamps = []

    class Meter:
        def output(self, start_s, samples, sample_rate):
            stamps.append(start_s)

    voice.meter = Meter()
    requested = iter([0.0, 0.08, 0.09, 0.21, 0.22, 1.5])  # the clock at each request; then a stall
    voice.stream_seconds = lambda: next(requested)
    for _ in range(6):
        voice._tap(np.zeros(800, np.int16), 16000)  # 50 ms blocks
    assert np.allclose(np.diff(stamps[:5]), 0.05, atol=0.005)  # the clock's jitter: 10-120 ms
    assert stamps[5] == 1.5


def test_a_british_speaker_is_heard_too(tmp_path):
    # espeak's English voice is British: "back" [bak], "softer" /ˈsɒftə/, no final r.  The
    # model's dictionary is American; with only its pronunciations the grammar hears espeak's
    # "back" as "stop" or as nothing, and "softer" as "stop".
    said = sorted(command_words("en").phrases)
    permissive = {phrase: 1e-45 for phrase in said}
    for rate in (0.85, 1.15):
        clips = spoken_words(said, engine="espeak", rate=rate, folder=tmp_path, cache_dir=tmp_path / "cache")
        audio = _with_silence(*(clips[word] for word in said))
        room = to_int16(audio + noise(len(audio), level_db=-50, seed=1))
        assert [h.phrase for h in feed_all(Recognizer(permissive), room)] == said, rate


def test_other_pronunciations_are_of_command_words_in_the_models_phones():
    variants = pronunciations("en-us")
    assert set(variants) >= {"back", "softer"} and set(variants) <= set(command_words("en").phrases)
    dictionary = resources.files("pocketsphinx").joinpath("model/en-us/cmudict-en-us.dict").read_text()
    phones = {phone for line in dictionary.splitlines() for phone in line.split()[1:]}
    for word, ways in variants.items():
        assert all(set(way.split()) <= phones for way in ways), word


def test_a_word_is_heard_the_same_whatever_was_decoded_before_it(tmp_path):
    # The grammar's features are normalized by a running mean; carried over from the words it
    # decoded before, it made espeak's "next" (rate 1.15) "back" in these five rooms of thirty
    # (the live test's words and gaps, the room's noise and the speaker's level drawn by seed).
    def words(word: str, engine: str, rate: float) -> np.ndarray:
        return spoken_words([word], engine=engine, rate=rate, folder=tmp_path, cache_dir=tmp_path / "cache")[word]

    pause, resume, skip = words("pause", "piper", 0.85), words("continue", "espeak", 0.85), words("next", "espeak", 1.15)
    for seed in (3, 4, 6, 17, 20):
        rng = np.random.default_rng(seed)
        parts = [np.zeros(int(rng.uniform(2, 3) * SAMPLE_RATE)), pause, np.zeros(int(rng.uniform(2, 3) * SAMPLE_RATE)),
                 resume, np.zeros(int(rng.uniform(4, 8) * SAMPLE_RATE)), skip, np.zeros(2 * SAMPLE_RATE)]
        audio = np.concatenate([part.astype(np.float64) for part in parts]) * rng.uniform(0.5, 1.0)
        room = to_int16(audio + noise(len(audio), level_db=-45, seed=seed))
        heard = [h.phrase for h in feed_all(Recognizer(thresholds_for(command_words("en"))), room)]
        assert heard == ["pause", "continue", "next"], (seed, heard)
