"""practice_log.py and `voicecoach log`: sessions, streaks across days, DST and zones, migrations, damage."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from voicecoach.cli import cli
from voicecoach.practice_log import (
    FILE_NAME,
    MIGRATIONS,
    SCHEMA_VERSION,
    PracticeLog,
    PracticeLogError,
    default_data_dir,
    new_session,
    streaks,
)

NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
BERLIN = ZoneInfo("Europe/Berlin")
ROUTINE = """\
routine: Short practice
steps:
  - exercise: Brow lift
    area: brows
    reps: 2
    hold: 2s
    release: 1s
  - massage: Cheek sweep
    area: cheeks
    strokes: 4
    tempo: 1s
  - rest: 3s
"""


def session(started: datetime, zone, *, seconds: float = 300.0, areas=None, routine: str = "Morning wake-up"):
    return new_session(
        routine=routine, file_hash="ab" * 32, started=started, zone=zone, seconds_played=seconds,
        steps_completed=6, steps_total=6, finished=True, area_seconds=areas or {"brows": 120.0, "cheeks": 60.0},
    )


def local(zone, *args) -> datetime:
    return datetime(*args, tzinfo=zone)


@pytest.fixture
def log(tmp_path) -> PracticeLog:
    return PracticeLog(tmp_path / "data" / FILE_NAME)


# -- streak arithmetic ------------------------------------------------------------------


def test_streaks_basic():
    d = date(2024, 5, 10)
    assert streaks([], d) == (0, 0)
    assert streaks([d], d) == (1, 1)
    assert streaks([d - timedelta(days=1)], d) == (1, 1)  # not practised yet today: still alive
    assert streaks([d - timedelta(days=2)], d) == (0, 1)  # a whole day missed: broken
    days = [d - timedelta(days=k) for k in (0, 1, 2, 5, 6, 7, 8, 20)]
    assert streaks(days + days, d) == (3, 4)


def brute_streaks(days: set[date], today: date) -> tuple[int, int]:
    longest = max((n for start in days for n in range(1, 400)
                   if all(start + timedelta(days=k) in days for k in range(n))), default=0)
    for anchor in (today, today - timedelta(days=1)):
        n = 0
        while anchor - timedelta(days=n) in days:
            n += 1
        if n:
            return n, longest
    return 0, longest


@settings(deadline=None)  # a loaded CI machine is slow; the count is what is checked
@given(st.sets(st.integers(0, 40), max_size=25), st.integers(0, 42))
def test_streaks_match_a_brute_force_count(offsets, today_offset):
    base = date(2024, 2, 20)  # spans a leap day
    days = {base + timedelta(days=o) for o in offsets}
    today = base + timedelta(days=today_offset)
    days = {d for d in days if d <= today}
    assert streaks(days, today) == brute_streaks(days, today)


def test_local_dates_across_dst_and_time_zones(log):
    # Late-evening sessions in New York across the spring-forward night (2024-03-10, 2:00 -> 3:00):
    # each is on its own local day although UTC already says the next day.
    for day in (9, 10, 11):
        log.record(session(local(NEW_YORK, 2024, 3, day, 23, 30), NEW_YORK))
    stored = log.sessions()
    assert [s.local_date for s in stored] == [date(2024, 3, 11), date(2024, 3, 10), date(2024, 3, 9)]
    assert stored[0].started_utc == datetime(2024, 3, 12, 3, 30, tzinfo=timezone.utc)  # EDT: UTC-4
    assert stored[-1].started_utc == datetime(2024, 3, 10, 4, 30, tzinfo=timezone.utc)  # EST: UTC-5
    summary = log.summary(now=local(NEW_YORK, 2024, 3, 12, 8, 0), zone=NEW_YORK)
    assert (summary.current_streak_days, summary.longest_streak_days) == (3, 3)
    # The same moment is already the 13th in Tokyo: a day without practice there, so no current streak.
    assert log.summary(now=local(NEW_YORK, 2024, 3, 12, 12, 0), zone=TOKYO).current_streak_days == 0
    # Flying to Tokyo and practising there on the evening of the 12th keeps the chain of local days.
    log.record(session(local(TOKYO, 2024, 3, 12, 20, 0), TOKYO))
    assert log.sessions()[0].local_date == date(2024, 3, 12)
    assert log.summary(now=local(TOKYO, 2024, 3, 12, 21, 0), zone=TOKYO).current_streak_days == 4


def test_fall_back_night_is_one_day(log):
    # Berlin 2024-10-27 has 25 hours: 00:30 and 23:30 that day are one practice day.
    log.record(session(local(BERLIN, 2024, 10, 27, 0, 30), BERLIN))
    log.record(session(local(BERLIN, 2024, 10, 27, 23, 30), BERLIN))
    log.record(session(local(BERLIN, 2024, 10, 28, 0, 10), BERLIN))
    summary = log.summary(now=local(BERLIN, 2024, 10, 28, 9, 0), zone=BERLIN)
    assert (summary.current_streak_days, summary.longest_streak_days, summary.total_sessions) == (2, 2, 3)


def test_minutes_per_area_over_7_and_30_days(log):
    now = local(BERLIN, 2024, 6, 30, 12, 0)
    for days_ago, areas in [(0, {"brows": 60.0}), (6, {"brows": 120.0, "neck": 30.0}), (7, {"jaw": 600.0}),
                            (29, {"neck": 90.0}), (30, {"cheeks": 600.0})]:
        log.record(session(now - timedelta(days=days_ago), BERLIN, areas=areas))
    summary = log.summary(now=now, zone=BERLIN, limit=2)
    assert summary.minutes_7_days == {"brows": 3.0, "neck": 0.5}
    assert summary.minutes_30_days == {"brows": 3.0, "jaw": 10.0, "neck": 2.0}
    assert len(summary.sessions) == 2 and summary.total_sessions == 5
    assert summary.sessions[0].started_utc == now.astimezone(timezone.utc)


def test_record_round_trip(log):
    started = local(TOKYO, 2025, 1, 2, 6, 45, 10)
    log.record(new_session(routine="Jaw", file_hash="f" * 64, started=started, zone=TOKYO, seconds_played=61.5,
                           steps_completed=2, steps_total=5, finished=False, area_seconds={"jaw": 40.0, "neck": 0.0}))
    (s,) = log.sessions()
    assert (s.routine, s.file_hash, s.seconds_played, s.steps_completed, s.steps_total, s.finished) == (
        "Jaw", "f" * 64, 61.5, 2, 5, False)
    assert s.started_utc == started and s.local_date == date(2025, 1, 2) and s.area_seconds == {"jaw": 40.0}
    with pytest.raises(ValueError):
        session(datetime(2025, 1, 1), TOKYO)  # naive times are refused


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("VOICECOACH_DATA_DIR", str(tmp_path / "vc"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "vc"
    monkeypatch.delenv("VOICECOACH_DATA_DIR")
    assert default_data_dir() == tmp_path / "xdg" / "voicecoach"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".local" / "share" / "voicecoach"
    assert PracticeLog().path == tmp_path / "home" / ".local" / "share" / "voicecoach" / FILE_NAME


# -- migrations and damage ----------------------------------------------------------------


def version_of(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT version FROM schema_version").fetchone()[0]


def test_a_new_log_is_created_at_the_current_version(log):
    assert not log.path.exists() and log.sessions() == []  # reading creates nothing
    assert not log.path.exists()
    log.check()
    assert version_of(log.path) == SCHEMA_VERSION == len(MIGRATIONS)


@pytest.mark.parametrize("empty_file", [True, False])
def test_upgrade_from_v0(tmp_path, empty_file):
    path = tmp_path / FILE_NAME
    if empty_file:
        path.write_bytes(b"")  # an empty file is an empty SQLite database
    else:
        sqlite3.connect(path).close()
    log = PracticeLog(path)
    log.record(session(local(BERLIN, 2024, 1, 1, 8, 0), BERLIN))
    assert version_of(path) == SCHEMA_VERSION and len(log.sessions()) == 1


def test_upgrade_from_v1_keeps_its_sessions(tmp_path):
    path = tmp_path / FILE_NAME
    with sqlite3.connect(path) as conn:  # a log as version 1 wrote it
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("UPDATE schema_version SET version = 1")
        conn.execute("INSERT INTO sessions (routine, file_hash, started_utc, local_date, seconds_played,"
                     " steps_completed, finished) VALUES ('Old', 'cd', '2024-01-01T07:00:00+00:00', '2024-01-01',"
                     " 95.0, 3, 1)")
    log = PracticeLog(path)
    (old,) = log.sessions()
    assert version_of(path) == SCHEMA_VERSION
    assert (old.routine, old.seconds_played, old.steps_completed, old.steps_total, old.area_seconds) == (
        "Old", 95.0, 3, 0, {})
    log.record(session(local(BERLIN, 2024, 1, 2, 8, 0), BERLIN))
    assert [s.routine for s in log.sessions()] == ["Morning wake-up", "Old"]
    assert log.summary(now=local(BERLIN, 2024, 1, 2, 9, 0), zone=BERLIN).current_streak_days == 2


def test_upgrade_from_v2_adds_actions_per_source(tmp_path):
    path = tmp_path / FILE_NAME
    with sqlite3.connect(path) as conn:  # a log as version 2 wrote it
        for statement in MIGRATIONS[0] + MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute("UPDATE schema_version SET version = 2")
        conn.execute("INSERT INTO sessions (routine, file_hash, started_utc, local_date, seconds_played,"
                     " steps_completed, finished, steps_total) VALUES ('Old', 'cd', '2024-01-01T07:00:00+00:00',"
                     " '2024-01-01', 95.0, 3, 1, 3)")
    log = PracticeLog(path)
    (old,) = log.sessions()
    assert version_of(path) == SCHEMA_VERSION and old.action_counts == {}
    new = dataclasses.replace(session(local(BERLIN, 2024, 1, 2, 8, 0), BERLIN),
                              action_counts={"voice": 3, "media": 1, "keys": 0})
    log.record(new)
    latest = log.sessions()[0]
    assert latest.action_counts == {"voice": 3, "media": 1} and latest.as_json()["actions"] == {"media": 1, "voice": 3}


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / FILE_NAME
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (99)")
    with pytest.raises(PracticeLogError, match=r"was written by a newer voicecoach \(schema 99\); update voicecoach"):
        PracticeLog(path).sessions()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign", "no version row"])
def test_a_damaged_log_is_a_clear_error(tmp_path, damage):
    path = tmp_path / FILE_NAME
    if damage == "garbage":
        path.write_bytes(b"this is not a database at all" * 100)
    elif damage == "foreign":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE recipes (name TEXT)")
    else:
        PracticeLog(path).check()
        with sqlite3.connect(path) as conn:
            conn.executemany("INSERT INTO sessions (routine, file_hash, started_utc, local_date, seconds_played,"
                             " steps_completed, finished) VALUES (?, '', '2024-01-01T07:00:00+00:00', '2024-01-01',"
                             " 1, 1, 1)", [("x" * 500,)] * 200)
        if damage == "truncated":
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 3] + b"\xff" * 4096)
        else:
            with sqlite3.connect(path) as conn:
                conn.execute("DELETE FROM schema_version")
    with pytest.raises(PracticeLogError) as error:
        PracticeLog(path).summary()
    message = error.value.format()
    assert message.startswith(f"the practice log '{path}' cannot be used (")
    assert message.endswith(f"; move it aside to start a new one: mv '{path}' '{path}.broken'")


# -- the CLI ----------------------------------------------------------------------------


@pytest.fixture
def script(tmp_path) -> str:
    path = tmp_path / "short.yaml"
    path.write_text(ROUTINE)
    return str(path)


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VOICECOACH_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), catch_exceptions=False)


def test_log_is_empty_before_any_session(run, tmp_path):
    result = run("log")
    assert result.exit_code == 0
    assert result.output.startswith(f"No sessions logged yet in {tmp_path / 'data' / FILE_NAME}")
    assert json.loads(run("log", "--json").output)["sessions"] == []


def test_play_then_log_shows_the_session_and_streak(run, script, tmp_path):
    log = str(tmp_path / "data" / FILE_NAME)  # the fake backend's sessions go only into a log named so
    played = run("play", script, "--engine", "fake", "--backend", "fake", "--script-keys", "wait:5,n", "--log-file", log)
    assert played.exit_code == 0, played.output
    assert "Logged. Practice streak: 1 day." in played.output
    assert run("play", script, "--engine", "fake", "--backend", "fake", "--log-file", log).exit_code == 0
    data = json.loads(run("log", "--json").output)
    assert data["streak"] == {"current_days": 1, "longest_days": 1} and data["total_sessions"] == 2
    whole, skipped = data["sessions"]
    assert whole["routine"] == "Short practice" and whole["finished"] and whole["steps_completed"] == whole["steps_total"]
    assert skipped["finished"] and skipped["steps_completed"] == skipped["steps_total"] - 1  # step 1 was skipped
    assert whole["seconds_played"] > skipped["seconds_played"] >= 5
    assert set(whole["minutes_per_area"]) == {"brows", "cheeks"}
    assert data["minutes_per_area"]["last_7_days"]["brows"] == pytest.approx(
        whole["minutes_per_area"]["brows"] + skipped["minutes_per_area"].get("brows", 0), abs=0.01)
    text = run("log", "--limit", "1").output.splitlines()
    assert text[0] == "Streak: 1 day (longest 1 day)"
    assert text[1].startswith("Minutes per area, last 7 days: brows ")
    assert text[3] == "Recent sessions (1 of 2):" and "Short practice" in text[4] and text[4].endswith("finished")


def test_damaged_log_errors_in_log_and_never_blocks_playing(run, tmp_path, script):
    path = tmp_path / "data" / FILE_NAME
    path.parent.mkdir()
    path.write_bytes(b"\x00garbage" * 1000)
    shown = run("log")
    assert shown.exit_code == 2 and "Traceback" not in shown.output
    assert shown.stderr.startswith(f"the practice log '{path}' cannot be used (file is not a database); move it aside")
    played = run("play", script, "--engine", "fake", "--backend", "fake", "--log-file", str(path))
    assert played.exit_code == 0
    assert played.stderr.count("warning: the practice log") == 1
    assert "this session will not be logged" in played.stderr
    assert "Played " in played.stdout and "finished." in played.stdout and "Logged" not in played.stdout
    assert path.read_bytes() == b"\x00garbage" * 1000  # left as it was


def test_upgrade_from_v2_decides_which_old_sessions_were_practice_days(tmp_path):
    path = tmp_path / FILE_NAME
    with sqlite3.connect(path) as conn:  # a log as version 2 wrote it
        for statement in (*MIGRATIONS[0], *MIGRATIONS[1]):
            conn.execute(statement)
        conn.execute("UPDATE schema_version SET version = 2")
        rows = [("Seven seconds", "2024-01-01", 7.0, 0, 6, 0),  # the session: 0 of 6 steps
                ("Most steps", "2024-01-02", 200.0, 5, 6, 0), ("Finished", "2024-01-03", 300.0, 6, 6, 1),
                ("Old, unknown steps", "2024-01-04", 50.0, 2, 0, 0)]
        conn.executemany("INSERT INTO sessions (routine, file_hash, started_utc, local_date, seconds_played,"
                         " steps_completed, steps_total, finished) VALUES (?, '', ? || 'T07:00:00+00:00', ?, ?, ?, ?, ?)",
                         [(r[0], r[1], r[1], *r[2:]) for r in rows])
    log = PracticeLog(path)
    practised = {s.routine: s.practised for s in log.sessions()}
    assert version_of(path) == SCHEMA_VERSION
    assert practised == {"Seven seconds": False, "Most steps": True, "Finished": True, "Old, unknown steps": False}
    summary = log.summary(now=local(BERLIN, 2024, 1, 3, 20, 0), zone=BERLIN)
    assert (summary.current_streak_days, summary.total_sessions) == (2, 4)


def test_a_short_session_is_not_a_practice_day(log):
    now = local(BERLIN, 2024, 5, 1, 8, 0)
    short = new_session(routine="R", file_hash="", started=now, zone=BERLIN, seconds_played=7.0, seconds_total=300.0,
                        steps_completed=0, steps_total=6, finished=False)
    log.record(short)
    assert not log.sessions()[0].practised
    assert log.summary(now=now, zone=BERLIN).current_streak_days == 0  # was: "Streak: 1 day"
    log.record(dataclasses_replace(short, seconds_played=240.0, practised=True))  # 80 % of 300 s
    assert log.summary(now=now, zone=BERLIN).current_streak_days == 1
    boundary = new_session(routine="R", file_hash="", started=now, zone=BERLIN, seconds_played=239.9,
                           seconds_total=300.0, steps_completed=5, steps_total=6, finished=False)
    assert not boundary.practised


def dataclasses_replace(session, **changes):
    import dataclasses

    return dataclasses.replace(session, **changes)


def test_summary_as_json_is_what_log_json_prints(tmp_path):
    practice = PracticeLog(tmp_path / FILE_NAME)
    started = datetime(2026, 3, 1, 7, 30, 5, tzinfo=timezone.utc)
    practice.record(new_session(routine="Morning", file_hash="ab" * 32, started=started, zone=timezone.utc,
                                seconds_played=61.23456, steps_completed=2, steps_total=3, finished=False,
                                area_seconds={"jaw": 30.0, "brows": 31.2345}))
    summary = practice.summary(now=started, zone=timezone.utc)
    assert summary.as_json(database=practice.path) == {
        "database": str(practice.path),
        "today": "2026-03-01",
        "total_sessions": 1,
        "streak": {"current_days": 0, "longest_days": 0},  # 2 of 3 steps: under 80 %, not a practice day
        "minutes_per_area": {"last_7_days": {"brows": 0.521, "jaw": 0.5}, "last_30_days": {"brows": 0.521, "jaw": 0.5}},
        "sessions": [{
            "routine": "Morning", "file_hash": "ab" * 32, "started_utc": "2026-03-01T07:30:05+00:00",
            "local_date": "2026-03-01", "seconds_played": 61.235, "steps_completed": 2, "steps_total": 3,
            "finished": False, "practised": False, "program": None, "program_day": None,
            "minutes_per_area": {"brows": 0.521, "jaw": 0.5}, "actions": {},
        }],
    }
    json.dumps(summary.as_json(database=practice.path))  # plain JSON types only
