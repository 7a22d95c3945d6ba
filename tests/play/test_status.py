"""status.py: the live line and plain log lines, computed from a real timeline and a position."""

from __future__ import annotations

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from voicecoach.pipeline import Settings, plan
from voicecoach.play.status import Notice, NoticeKind, StatusView, TimelineIndex, clock, live_line, log_line, status_at

RATE = 8000
ROUTINE = """\
routine: Test routine
steps:
  - exercise: Lift
    area: brows
    reps: 2
    hold: 2s
    release: 1s
  - rest: 5s
  - massage: Sweep
    area: cheeks
    strokes: 3
    tempo: 1s
"""


@pytest.fixture(scope="module")
def timeline(tmp_path_factory):
    path = tmp_path_factory.mktemp("status") / "routine.yaml"
    path.write_text(ROUTINE)
    return plan(path, settings=Settings(sample_rate=RATE))


def first(timeline, label: str) -> int:
    return next(e.start_sample for e in timeline.events if e.label == label)


def test_status_names_step_phase_time_left_and_next(timeline):
    hold = first(timeline, "hold 2 of 2")
    s = status_at(timeline, hold + RATE)  # one second into the second hold
    lift, rest, sweep = timeline.chapters
    assert (s.routine, s.step, s.steps, s.title, s.phase) == ("Test routine", 0, 3, "Lift", "hold 2 of 2")
    assert s.step_left_s == pytest.approx((lift.end_sample - hold - RATE) / RATE)
    assert s.elapsed_s == pytest.approx((hold + RATE) / RATE)
    assert s.elapsed_s + s.remaining_s == pytest.approx(timeline.duration_s)
    assert s.next_title == "Rest"
    assert status_at(timeline, rest.start_sample + 10).phase == "rest"
    assert status_at(timeline, first(timeline, "stroke 2 of 3")).phase == "stroke 2 of 3"
    assert status_at(timeline, first(timeline, "stroke 2 of 3") - 1).phase == "stroke 1 of 3"
    last = status_at(timeline, sweep.start_sample)
    assert (last.step, last.next_title, last.phase) == (2, None, "start")


def test_chapter_edges_and_clamping(timeline):
    index = TimelineIndex(timeline)
    for i, chapter in enumerate(timeline.chapters):
        assert index.chapter_at(chapter.start_sample) == i
        assert index.chapter_at(chapter.end_sample - 1) == i
    assert index.chapter_at(-5) == 0 and index.chapter_at(timeline.length_samples + 9) == 2
    end = index.status(timeline.length_samples)
    assert end.remaining_s == 0 and end.step_left_s == 0 and end.step == 2


@hsettings(max_examples=200, deadline=None)
@given(st.data())
def test_phase_is_the_label_of_the_last_event_started_in_the_step(timeline, data):
    sample = data.draw(st.integers(0, timeline.length_samples - 1))
    s = TimelineIndex(timeline).status(sample)
    started = [e for e in timeline.events if e.start_sample <= sample and e.step == s.step and e.label]
    assert s.phase == (started[-1].label if started else "")
    chapter = timeline.chapters[s.step]
    assert chapter.start_sample <= sample < chapter.end_sample


def test_boundaries_are_where_the_key_changes(timeline):
    index = TimelineIndex(timeline)
    bounds = index.boundaries()
    changes = [s for s in range(1, timeline.length_samples) if index.status(s).key != index.status(s - 1).key]
    assert set(changes) <= set(bounds)
    assert all(index.status(b).key != index.status(b - 1).key for b in bounds if b)


def test_clock_formats():
    assert clock(0) == "0:00" and clock(59.99) == "0:59" and clock(83.4) == "1:23" and clock(3723) == "1:02:03"


def test_live_line_content_and_width(timeline):
    s = status_at(timeline, first(timeline, "hold 1 of 2"), paused=True, volume_percent=70)
    line = live_line(s, width=200)
    assert line.startswith("PAUSED | Test routine | 1/3 Lift: hold 1 of 2 | ")
    assert "left | " in line and "vol 70%" in line and line.endswith("next: Rest")
    assert f" / {clock(round(timeline.duration_s))} | " in line
    short = live_line(s, width=30)
    assert len(short) == 29 and short.endswith("...")
    assert "vol" not in live_line(status_at(timeline, 0), width=200)
    assert live_line(status_at(timeline, timeline.chapters[2].start_sample), width=200).endswith("last step")


def test_log_line(timeline):
    line = log_line(status_at(timeline, timeline.chapters[1].start_sample))
    rest_s = (timeline.chapters[1].end_sample - timeline.chapters[1].start_sample) / RATE
    assert line == f"[{clock(timeline.chapters[1].start_sample / RATE)}] step 2/3 Rest: rest, {clock(rest_s)} left (next: Sweep)"


def test_plain_view_prints_one_line_per_step_or_phase_change(timeline):
    view = StatusView(timeline, live=False)
    index = TimelineIndex(timeline)
    lines = [view.notice(Notice(NoticeKind.START, 0))]
    # The player reports every boundary it crosses; repeated keys print nothing.
    for b in index.boundaries():
        lines.append(view.notice(Notice(NoticeKind.PHASE, b)))
        lines.append(view.notice(Notice(NoticeKind.PHASE, b + 1)))
    printed = [l for l in lines if l]
    keys = []
    for b in [0, *index.boundaries()]:
        if index.status(b).key not in keys[-1:]:
            keys.append(index.status(b).key)
    assert len(printed) == len(keys)
    assert any(": hold 2 of 2," in l for l in printed) and any(": stroke 3 of 3," in l for l in printed)
    here = index.boundaries()[-1] + 1
    at = f"[{clock(here / RATE)}]"
    assert view.notice(Notice(NoticeKind.PAUSE, here)) == f"{at} paused"
    assert view.notice(Notice(NoticeKind.VOLUME, here, volume_percent=60)) == f"{at} volume 60%"
    assert view.notice(Notice(NoticeKind.RESUME, here)) == f"{at} resumed"  # same step and phase: no status line
    seek = view.notice(Notice(NoticeKind.SEEK, timeline.chapters[2].start_sample))
    assert seek.splitlines()[0].endswith("jump to step 3") and "step 3/3 Sweep: start" in seek.splitlines()[1]
    assert view.notice(Notice(NoticeKind.END, timeline.length_samples)).endswith("finished")
    assert view.close() == ""


def test_live_view_redraws_only_on_change(timeline):
    view = StatusView(timeline, live=True, width=120)
    assert view.notice(Notice(NoticeKind.PHASE, 0)) is None
    first_line = view.tick(0, paused=False, volume_percent=100)
    assert first_line.startswith("\r") and first_line.endswith("\x1b[K")
    assert view.tick(10, paused=False, volume_percent=100) is None  # same second, same phase
    assert "PAUSED" in view.tick(10, paused=True, volume_percent=100)
    assert view.close() == "\n"
