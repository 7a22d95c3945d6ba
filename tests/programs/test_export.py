"""A program exported one file per practice day, and its feed read back with feedparser."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
from click.testing import CliRunner
from mutagen.id3 import ID3

from voicecoach.cli import cli
from voicecoach.phone.feed import FeedSettings, build_feed
from voicecoach.phone.library import Outcome, export_library, read_manifest
from voicecoach.pipeline import Settings

ROUTINE = """\
routine: {title}
steps:
  - massage: Sweep
    area: {area}
    strokes: 3
    tempo: 1s
  - rest: 6s
"""


def make_program(tmp_path: Path) -> Path:
    (tmp_path / "programs").mkdir()
    (tmp_path / "a.yaml").write_text(ROUTINE.format(title="Cheeks", area="cheeks"))
    (tmp_path / "b.yaml").write_text(ROUTINE.format(title="Neck", area="neck"))
    path = tmp_path / "programs" / "p.yaml"
    path.write_text("program: Tiny plan\ndays: 5\nschedule:\n  - [../a.yaml]\n  - [../a.yaml, ../b.yaml]\n  - rest\n"
                    "progress: {strokes: +2}\n")
    return path


def test_one_file_per_practice_day_and_a_serial_feed(tmp_path):
    program = make_program(tmp_path)
    out = tmp_path / "phone"
    settings = Settings(engine="fake", cache_dir=tmp_path / "cache", sample_rate=16000)
    report = export_library([program, tmp_path / "a.yaml"], out, settings=settings)
    assert not report.failed, [r.message for r in report.results]
    names = sorted(p.name for p in out.glob("*.mp3"))
    assert names == ["cheeks.mp3", "day-01-tiny-plan.mp3", "day-02-tiny-plan.mp3", "day-04-tiny-plan.mp3",
                     "day-05-tiny-plan.mp3"]  # day 3 is a rest day
    manifest = read_manifest(out)
    day2 = manifest["day-02-tiny-plan"]
    assert (day2.program, day2.episode, day2.title) == ("Tiny plan", 2, "Tiny plan, day 2")
    chapters = [frame.element_id for frame in ID3(out / "day-02-tiny-plan.mp3").getall("CHAP")]
    assert len(chapters) == day2.steps == 5  # a step per chapter: two routines and the announcement between
    assert (out / "day-02-tiny-plan.png").read_bytes() != (out / "day-01-tiny-plan.png").read_bytes()  # day number

    again = export_library([program], out, settings=settings)
    assert {r.outcome for r in again.results} == {Outcome.UNCHANGED}

    data, missing = build_feed(out, settings=FeedSettings(base_url="http://192.168.1.20:8000/"))
    feed = feedparser.parse(data)
    assert not feed.bozo and missing == []
    assert feed.feed.itunes_type == "serial"
    program_items = [e for e in feed.entries if "itunes_episode" in e]
    assert [e.itunes_episode for e in program_items] == ["1", "2", "4", "5"]
    assert [e.title for e in program_items] == [f"Tiny plan, day {n}" for n in (1, 2, 4, 5)]
    assert feed.entries[program_items.__len__()].title == "Cheeks"  # routines after the program's days
    for entry in feed.entries:  # every item carries its chapters inline (Podlove Simple Chapters)
        marks = entry.psc_chapters["chapters"]
        assert marks[0]["start"] == "00:00:00.000" and marks[0]["title"] == "Sweep"
    day2_marks = [m["title"] for m in program_items[1].psc_chapters["chapters"]]
    assert day2_marks[:3] == ["Sweep", "Rest", "Neck."]


def test_a_routine_only_feed_stays_episodic(tmp_path):
    program = make_program(tmp_path)
    out = tmp_path / "phone"
    settings = Settings(engine="fake", cache_dir=tmp_path / "cache", sample_rate=16000)
    report = export_library([tmp_path], out, settings=settings)  # a folder: the program is skipped, named
    skipped = [r for r in report.results if r.outcome is Outcome.SKIPPED]
    assert [Path(r.path).name for r in skipped] == [program.name] and "export it by name" in skipped[0].message
    feed = feedparser.parse(build_feed(out, settings=FeedSettings(base_url="http://h:1/"))[0])
    assert feed.feed.itunes_type == "episodic" and all("itunes_episode" not in e for e in feed.entries)


def test_export_and_feed_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "cache"))
    program = make_program(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(program), "-d", str(tmp_path / "out"), "--engine", "fake"])
    assert result.exit_code == 0, result.output
    assert "day-01-tiny-plan.mp3: Tiny plan, day 1" in result.output and "4 exported" in result.output
    fed = runner.invoke(cli, ["feed", str(tmp_path / "out"), "--base-url", "http://h:8000/"])
    assert fed.exit_code == 0, fed.output
    feed = feedparser.parse((tmp_path / "out" / "feed.xml").read_bytes())
    assert [int(e.itunes_episode) for e in feed.entries] == [1, 2, 4, 5]
    assert feed.feed.title == "Tiny plan"  # a folder of one program: the show is named after it
    json.loads((tmp_path / "out" / "day-04-tiny-plan.chapters.json").read_text())
