"""player.py and controller.py: the sample-exact player and the actions that drive it, without a device."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from voicecoach.errors import VoicecoachError
from voicecoach.pipeline import Settings
from voicecoach.play.controller import BACK_TWICE_S, Action, Controller
from voicecoach.play.keyboard import ScriptedKey, schedule_keys
from voicecoach.play.player import Player, find_step
from voicecoach.play.status import Notice, NoticeKind, StatusView, clock

from tests.play.tracks import RATE, ROUTINE, Track, pull_all, starts, timeline, track  # noqa: F401  (fixtures)


def test_plays_the_whole_track_then_silence(track):
    player = Player(track)
    length = len(track.samples)
    out = pull_all(player, length + 1000)
    assert np.array_equal(out[:length], track.samples) and not out[length:].any()
    state = player.state()
    assert state.ended and state.position == length and state.ended_at_frame == length
    result = player.result()
    assert result.finished and result.steps_completed == result.steps_total == 3
    assert result.played_s == pytest.approx(length / RATE)
    chapters = track.timeline.chapters
    assert result.seconds_per_step == tuple((c.end_sample - c.start_sample) / RATE for c in chapters)


def test_volume_100_leaves_the_bytes_alone_and_other_volumes_scale(track):
    player = Player(track)
    assert player.pull(500).tobytes() == track.samples[:500].tobytes()
    player.change_volume(-50)
    half = player.pull(500)
    assert np.array_equal(half, np.rint(track.samples[500:1000] * 0.5).astype(np.int16))
    for _ in range(20):
        player.change_volume(-10)
    assert player.state().volume_percent == 0 and not player.pull(100).any()
    for _ in range(20):
        player.change_volume(+10)
    assert player.state().volume_percent == 100
    assert np.array_equal(player.pull(100), track.samples[1100:1200])
    assert Player(track, volume_percent=30).state().volume_percent == 30


@hsettings(max_examples=60, deadline=None)
@given(
    pause_at=st.integers(1, 3 * RATE),
    pause_frames=st.integers(1, RATE),
    play_frames=st.integers(1, RATE),
    chunk=st.integers(1, 5000),
)
def test_pause_resume_and_skip_are_sample_exact_for_any_device_chunking(timeline, pause_at, pause_frames, play_frames, chunk):
    track = Track(timeline)
    player = Player(track)
    script = [
        ScriptedKey(pause_at / RATE, "space"),
        ScriptedKey((pause_at + pause_frames) / RATE, "space"),
        ScriptedKey((pause_at + pause_frames + play_frames) / RATE, "n"),
    ]
    schedule_keys(player, script)
    total = pause_at + pause_frames + play_frames + 2 * RATE
    out = pull_all(player, total, chunk)
    position = pause_at + play_frames  # where 'n' was pressed, in track samples
    next_start = next(s for s in starts(timeline) if s > position)
    expected = np.concatenate([
        track.samples[:pause_at],
        np.zeros(pause_frames, np.int16),
        track.samples[pause_at:position],
        track.samples[next_start : next_start + 2 * RATE],
    ])
    assert np.array_equal(out, expected)
    assert player.result().played_s == pytest.approx((position + 2 * RATE) / RATE)


def test_a_source_that_falls_behind_leaves_gaps_but_skips_nothing(timeline):
    class Slow(Track):
        def read(self, start_sample, count):
            return super().read(start_sample, min(count, 300))  # as if only 300 samples were ready

    track = Slow(timeline)
    player = Player(track)
    out = pull_all(player, 10 * 1000, chunk=1000)
    assert np.array_equal(out[out != 0], track.samples[:3000]) and player.state().position == 3000
    assert player.result().played_s == pytest.approx(3000 / RATE)


def test_back_goes_to_the_step_start_and_twice_quickly_to_the_previous_step(track):
    timeline = track.timeline
    player = Player(track, start_step=2)
    controller = Controller(player)
    player.pull(RATE)
    controller.apply(Action.BACK, now_s=10.0)
    assert player.state().position == starts(timeline)[2]
    controller.apply(Action.BACK, now_s=10.0 + BACK_TWICE_S / 2)
    assert player.state().position == starts(timeline)[1]
    controller.apply(Action.BACK, now_s=10.0 + BACK_TWICE_S)  # still quick: one more step back
    assert player.state().position == starts(timeline)[0]
    player.pull(RATE)
    controller.apply(Action.BACK, now_s=20.0)  # slow: start of the same step only
    assert player.state().position == starts(timeline)[0]
    assert np.array_equal(player.pull(10), track.samples[:10])


def test_repeat_next_and_the_end(track):
    timeline = track.timeline
    player = Player(track)
    controller = Controller(player)
    player.pull(RATE)
    controller.apply(Action.REPEAT, 0.0)
    assert player.state().position == 0
    controller.apply(Action.REPEAT, 0.1)  # repeat never goes back further
    assert player.state().position == 0
    controller.apply(Action.NEXT, 0.2)
    controller.apply(Action.NEXT, 0.3)
    assert player.state().position == starts(timeline)[2]
    controller.apply(Action.NEXT, 0.4)  # past the last step: the end
    state = player.state()
    assert state.ended and state.position == timeline.length_samples and not player.pull(50).any()
    result = player.result()
    assert result.steps_completed == 0 and result.played_s == pytest.approx(1.0)
    controller.apply(Action.PLAY_PAUSE, 0.5)
    assert not player.state().paused  # nothing to pause after the end


def test_seek_while_paused_stays_paused_and_quit_silences(track):
    player = Player(track)
    controller = Controller(player)
    controller.apply(Action.PLAY_PAUSE, 0.0)
    controller.apply(Action.NEXT, 0.1)
    assert not player.pull(100).any() and player.state().position == starts(track.timeline)[1]
    controller.apply(Action.PLAY_PAUSE, 0.2)
    assert np.array_equal(player.pull(100), track.samples[starts(track.timeline)[1] :][:100])
    controller.apply(Action.QUIT, 0.3)
    assert player.state().stopped and not player.pull(100).any()


def test_loop_plays_again_from_the_start_step(track):
    player = Player(track, start_step=1, loop=True)
    first = starts(track.timeline)[1]
    length = len(track.samples) - first
    out = pull_all(player, 2 * length + 10)
    assert np.array_equal(out[:length], track.samples[first:])
    assert np.array_equal(out[length : 2 * length], track.samples[first:])
    state = player.state()
    assert not state.ended and player.result().finished
    # counted per pass: the two steps from the start step, twice round -- not "4 of 3 steps"
    result = player.result()
    assert (result.steps_completed, result.steps_total, result.passes) == (2, 3, 2)


def test_a_step_played_again_counts_once(track):
    player = Player(track)
    first, second = starts(track.timeline)[:2]
    pull_all(player, second + 10)
    player.seek_step(0)  # back to the first step and through it again
    pull_all(player, second + 10)
    result = player.result()
    assert result.steps_completed == 1 and result.passes == 0 and not result.finished


def test_notices_report_every_boundary_and_action(track):
    player = Player(track)
    pull_all(player, len(track.samples) + 10)
    kinds = []
    while not player.notices.empty():
        kinds.append(player.notices.get())
    assert kinds[0].kind is NoticeKind.START and kinds[-1].kind is NoticeKind.END
    phases = [n.position for n in kinds if n.kind is NoticeKind.PHASE]
    assert phases == [b for b in player.index.boundaries() if b > 0]


def test_find_step_by_number_name_and_prefix(timeline):
    titles = [c.title for c in timeline.chapters]
    assert titles == ["Lift", "Rest", "Sweep"]
    find = lambda spec: find_step(titles, spec, routine="Test routine")  # noqa: E731
    assert find("1") == 0 and find(" 3 ") == 2
    assert find("sweep") == 2 and find("RE") == 1 and find("Lift") == 0
    assert find_step(["Rest (round 1 of 2)", "Rest (round 2 of 2)", "Rest"], "rest", routine="R") == 2  # exact first
    for bad in ["0", "4", "massage", ""]:
        with pytest.raises(VoicecoachError) as error:
            find(bad)
        assert error.value.format() == (
            f"no step {bad!r} in 'Test routine'; give a number 1-3 or the start of a step's name: 1 Lift, 2 Rest, 3 Sweep"
        )
    assert Player(Track(timeline), start_step=2).state().position == starts(timeline)[2]


# -- streaming sources --------------------------------------------------------------------


class Growing(Track):
    """A source still being made: only its first chapters are scheduled until grow() is called."""

    def __init__(self, timeline, known: int) -> None:
        super().__init__(timeline)
        self.full, self.steps = timeline, len(timeline.chapters)
        self.known = known
        self.timeline = self._partial()

    @property
    def complete(self) -> bool:
        return self.known >= self.steps

    def _partial(self):
        chapters = self.full.chapters[: self.known]
        return dataclasses.replace(self.full, chapters=chapters, length_samples=chapters[-1].end_sample,
                                   events=tuple(e for e in self.full.events if e.step < self.known))

    def grow(self) -> None:
        self.known += 1
        self.timeline = self._partial()

    def read(self, start_sample, count):
        end = self.timeline.length_samples if not self.complete else len(self.samples)
        return super().read(start_sample, max(0, min(count, end - start_sample)))  # not made yet: falls short


def test_a_growing_source_plays_what_is_made_and_skips_only_to_known_steps(timeline):
    source = Growing(timeline, known=1)
    player = Player(source)
    assert StatusView(source.timeline, live=True, steps_total=3).tick(0, paused=False, volume_percent=100).endswith(
        "| next: ...\x1b[K")
    assert player.steps_total == 3 and len(player.timeline.chapters) == 1
    c1, c2 = starts(timeline)[1:]
    player.next_step()  # step 2 is not scheduled yet: ignored, and not taken for the end
    state = player.state()
    assert state.position == 0 and not state.ended
    out = pull_all(player, c1 + 500)  # runs past what is made: a gap, not the end
    assert np.array_equal(out[:c1], source.samples[:c1]) and not out[c1:].any() and not player.state().ended
    source.grow()
    assert np.array_equal(player.pull(100), source.samples[c1 : c1 + 100])
    assert StatusView(source.timeline, live=False, steps_total=3).notice(Notice(NoticeKind.START, c1)).startswith(
        f"[{clock(c1 / RATE)}] step 2/3 Rest: rest")
    player.next_step()
    assert player.state().position == c1 + 100  # step 3 is not scheduled yet: stays
    source.grow()
    player.next_step()
    assert player.state().position == c2
    pull_all(player, len(source.samples))
    result = player.result()
    assert player.state().ended and result.finished and result.steps_total == 3 and len(result.seconds_per_step) == 3


def test_live_build_plays_exactly_the_exported_samples(tmp_path):
    from voicecoach.pipeline import LiveBuild, build

    path = tmp_path / "routine.yaml"
    path.write_text(ROUTINE)
    settings = Settings(engine="fake", sample_rate=RATE, cache_dir=tmp_path / "cache")
    live = LiveBuild(path, settings=settings)
    live.wait(chapters=1)
    player = Player(live)
    assert player.steps_total == 3
    got = []
    while not player.state().ended:
        got.append(player.pull(1000))
    whole = build(path, settings=settings)
    track = whole.read(0, whole.timeline.length_samples)
    played = np.concatenate(got)
    assert np.array_equal(played[: len(track)], track) and not played[len(track) :].any()
    assert player.timeline.chapters == whole.timeline.chapters and player.result().steps_completed == 3
