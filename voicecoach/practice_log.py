"""The practice log: every played session, in an SQLite database in the user's data folder.

The folder is ``$VOICECOACH_DATA_DIR``, else ``$XDG_DATA_HOME/voicecoach``, else
``~/.local/share/voicecoach``.  Each session keeps its start (UTC, and the local date where it
was played: streaks count local days, so travelling or a DST change never breaks one), the
seconds played, the steps completed, the seconds per face area and the actions per input
source (keys, voice, media keys).

The schema is versioned (table ``schema_version``) and upgraded in place by :data:`MIGRATIONS`,
one transaction per step.  A damaged or foreign file raises :class:`PracticeLogError`; the
player warns and plays on, ``voicecoach log`` reports it.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Iterable, Mapping

from .errors import VoicecoachError

ENV_VAR = "VOICECOACH_DATA_DIR"
FILE_NAME = "practice.sqlite3"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: sessions.
    (
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        "INSERT INTO schema_version (version) VALUES (0)",
        """CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            routine TEXT NOT NULL,
            file_hash TEXT NOT NULL,
            started_utc TEXT NOT NULL,
            local_date TEXT NOT NULL,
            seconds_played REAL NOT NULL,
            steps_completed INTEGER NOT NULL,
            finished INTEGER NOT NULL
        )""",
    ),
    # 1 -> 2: the routine's step count, seconds per face area, days indexed for streaks.
    (
        "ALTER TABLE sessions ADD COLUMN steps_total INTEGER NOT NULL DEFAULT 0",
        """CREATE TABLE session_areas (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            area TEXT NOT NULL,
            seconds REAL NOT NULL,
            PRIMARY KEY (session_id, area)
        )""",
        "CREATE INDEX sessions_by_day ON sessions (local_date)",
    ),
    # 2 -> 3: the routine's length, whether the session counts as a practice day, and the
    # program and day it played. Old sessions count when they finished or completed 80 % of
    # their steps (their length is unknown); before, any session counted.
    (
        "ALTER TABLE sessions ADD COLUMN seconds_total REAL NOT NULL DEFAULT 0",
        "ALTER TABLE sessions ADD COLUMN practised INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE sessions ADD COLUMN program TEXT",
        "ALTER TABLE sessions ADD COLUMN program_path TEXT",
        "ALTER TABLE sessions ADD COLUMN program_day INTEGER",
        "UPDATE sessions SET practised = (finished != 0 OR (steps_total > 0 AND steps_completed * 5 >= steps_total * 4))",
        "CREATE INDEX sessions_by_program ON sessions (program_path, local_date)",
    ),
    # 3 -> 4: how the player was controlled: actions per input source (keys, voice, media).
    (
        """CREATE TABLE session_actions (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            actions INTEGER NOT NULL,
            PRIMARY KEY (session_id, source)
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

PRACTISED_FRACTION = 0.8
"""A session counts as a practice day when it played this much of its length, or finished."""


class PracticeLogError(VoicecoachError):
    """The practice log cannot be read or written."""


def default_data_dir() -> Path:
    """``$VOICECOACH_DATA_DIR``, else ``$XDG_DATA_HOME/voicecoach``, else ``~/.local/share/voicecoach``."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore a relative one
        return Path(xdg) / "voicecoach"
    return Path.home() / ".local" / "share" / "voicecoach"


def file_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a routine file's bytes: tells edited versions of a routine apart."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def local_zone() -> tzinfo:
    """The machine's current time zone."""
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


@dataclass(frozen=True)
class Session:
    """One played session."""

    routine: str
    """Routine title."""
    file_hash: str
    """SHA-256 of the routine file."""
    started_utc: datetime
    """When playing started, timezone-aware UTC."""
    local_date: date
    """The calendar day where it was played (streaks count these)."""
    seconds_played: float
    """Seconds of the routine played, pauses not counted."""
    steps_completed: int
    """Steps played through to their end."""
    steps_total: int
    """Steps in the routine (0 when logged by an older version)."""
    finished: bool
    """The routine played to its end."""
    area_seconds: Mapping[str, float] = field(default_factory=dict)
    """Seconds played per face area (``"brows"``, ...)."""
    action_counts: Mapping[str, int] = field(default_factory=dict)
    """Actions (pause, next, ...) per input source: ``{"keys": 2, "voice": 3, "media": 1}``."""
    id: int | None = None
    """Row id once stored."""
    seconds_total: float = 0.0
    """Length of the routine in seconds (0 when logged by an older version)."""
    practised: bool = True
    """It counts as a practice day (streaks, program progress): see :func:`counts_as_practice`."""
    program: str | None = None
    """Title of the program it was a day of, if any."""
    program_path: str | None = None
    """The program file, resolved (identifies the program across sessions)."""
    program_day: int | None = None
    """Which day of the program it played (1-based)."""

    def as_json(self) -> dict[str, object]:
        """The session as ``voicecoach log --json`` prints it (seconds and minutes rounded to ms)."""
        return {
            "routine": self.routine,
            "file_hash": self.file_hash,
            "started_utc": self.started_utc.isoformat(timespec="seconds"),
            "local_date": self.local_date.isoformat(),
            "seconds_played": round(self.seconds_played, 3),
            "steps_completed": self.steps_completed,
            "steps_total": self.steps_total,
            "finished": self.finished,
            "practised": self.practised,
            "program": self.program,
            "program_day": self.program_day,
            "minutes_per_area": {a: round(sec / 60, 3) for a, sec in sorted(self.area_seconds.items())},
            "actions": dict(sorted(self.action_counts.items())),
        }


def counts_as_practice(*, seconds_played: float, seconds_total: float, steps_completed: int, steps_total: int,
                       finished: bool) -> bool:
    """Whether a session makes a practice day: it finished, or played 80 % of its length.

    Without the length (0), 80 % of the steps completed counts instead.
    """
    if finished:
        return True
    if seconds_total > 0:
        return seconds_played >= PRACTISED_FRACTION * seconds_total
    return steps_total > 0 and steps_completed >= PRACTISED_FRACTION * steps_total


def new_session(
    *,
    routine: str,
    file_hash: str,
    started: datetime,
    zone: tzinfo | None = None,
    seconds_played: float,
    steps_completed: int,
    steps_total: int,
    finished: bool,
    area_seconds: Mapping[str, float] | None = None,
    seconds_total: float = 0.0,
    program: str | None = None,
    program_path: str | None = None,
    program_day: int | None = None,
    local_date: date | None = None,
    action_counts: Mapping[str, int] | None = None,
) -> Session:
    """A session started at ``started`` (aware), its local date taken in ``zone`` (default: here).

    ``local_date`` overrides the day it counts for (``voicecoach today --date``).
    """
    if started.tzinfo is None:
        raise ValueError("started must be timezone-aware")
    zone = zone or local_zone()
    return Session(
        routine=routine,
        file_hash=file_hash,
        started_utc=started.astimezone(timezone.utc),
        local_date=local_date or started.astimezone(zone).date(),
        seconds_played=seconds_played,
        steps_completed=steps_completed,
        steps_total=steps_total,
        finished=finished,
        area_seconds=dict(area_seconds or {}),
        seconds_total=seconds_total,
        practised=counts_as_practice(seconds_played=seconds_played, seconds_total=seconds_total,
                                     steps_completed=steps_completed, steps_total=steps_total, finished=finished),
        program=program,
        program_path=program_path,
        program_day=program_day,
        action_counts={source: n for source, n in (action_counts or {}).items() if n},
    )


def streaks(days: Iterable[date], today: date) -> tuple[int, int]:
    """``(current, longest)`` runs of consecutive practice days.

    The current streak still counts when today has no session yet but yesterday had one: it
    breaks only once a whole day is missed.
    """
    unique = sorted(set(days))
    longest = run = 0
    previous: date | None = None
    for day in unique:
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    practised = set(unique)
    day = today if today in practised else today - timedelta(days=1)
    current = 0
    while day in practised:
        current += 1
        day -= timedelta(days=1)
    return current, longest


@dataclass(frozen=True)
class Summary:
    """What ``voicecoach log`` shows."""

    today: date
    """The local day the summary was made on."""
    sessions: tuple[Session, ...]
    """Most recent first."""
    total_sessions: int
    """Sessions ever logged."""
    current_streak_days: int
    """Consecutive practice days up to today (or yesterday); only sessions that count (80 %)."""
    longest_streak_days: int
    """The longest run of consecutive practice days."""
    minutes_7_days: Mapping[str, float]
    """Minutes per face area over the last 7 days, today included."""
    minutes_30_days: Mapping[str, float]
    """Minutes per face area over the last 30 days, today included."""

    def as_json(self, *, database: str | os.PathLike) -> dict[str, object]:
        """What ``voicecoach log --json`` prints: the summary, the sessions, and the ``database`` file."""
        return {
            "database": str(database),
            "today": self.today.isoformat(),
            "total_sessions": self.total_sessions,
            "streak": {"current_days": self.current_streak_days, "longest_days": self.longest_streak_days},
            "minutes_per_area": {"last_7_days": {a: round(m, 3) for a, m in self.minutes_7_days.items()},
                                 "last_30_days": {a: round(m, 3) for a, m in self.minutes_30_days.items()}},
            "sessions": [session.as_json() for session in self.sessions],
        }


class PracticeLog:
    """The database file; every method opens it briefly (several players may share it)."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_data_dir() / FILE_NAME

    def _damaged(self, error: Exception) -> PracticeLogError:
        return PracticeLogError(
            f"the practice log {str(self.path)!r} cannot be used ({error})",
            hint=f"move it aside to start a new one: mv '{self.path}' '{self.path}.broken'",
        )

    def _connect(self, *, create: bool) -> sqlite3.Connection | None:
        if not self.path.exists() and not create:
            return None
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise PracticeLogError(
                f"cannot open the practice log {str(self.path)!r} ({error})",
                hint=f"check the folder's permissions or set ${ENV_VAR} to a writable folder",
            ) from None
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
        except sqlite3.Error as error:
            conn.close()
            raise self._damaged(error) from None
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def version(conn: sqlite3.Connection) -> int:
        """Schema version of an open database: 0 for an empty one."""
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_version" not in tables:
            if tables:
                raise sqlite3.DatabaseError(f"not a voicecoach practice log (tables: {', '.join(sorted(tables))})")
            return 0
        rows = conn.execute("SELECT version FROM schema_version").fetchall()
        if len(rows) != 1 or not isinstance(rows[0][0], int):
            raise sqlite3.DatabaseError("its schema_version table is damaged")
        return rows[0][0]

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if self.version(conn) == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")  # one migrator at a time; re-read the version under the lock
        try:
            version = self.version(conn)
            if version > SCHEMA_VERSION:
                raise PracticeLogError(
                    f"the practice log {str(self.path)!r} was written by a newer voicecoach (schema {version})",
                    hint="update voicecoach, or set $VOICECOACH_DATA_DIR to another folder",
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = ?", (target,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def check(self) -> None:
        """Open (creating or upgrading) the database now: raises :class:`PracticeLogError` if unusable."""
        conn = self._connect(create=True)
        assert conn is not None
        conn.close()

    def record(self, session: Session) -> int:
        """Store a session; returns its id."""
        conn = self._connect(create=True)
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
            cursor = conn.execute(
                "INSERT INTO sessions (routine, file_hash, started_utc, local_date, seconds_played,"
                " steps_completed, finished, steps_total, seconds_total, practised, program, program_path,"
                " program_day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.routine,
                    session.file_hash,
                    session.started_utc.astimezone(timezone.utc).isoformat(timespec="seconds"),
                    session.local_date.isoformat(),
                    float(session.seconds_played),
                    int(session.steps_completed),
                    int(session.finished),
                    int(session.steps_total),
                    float(session.seconds_total),
                    int(session.practised),
                    session.program,
                    session.program_path,
                    session.program_day,
                ),
            )
            session_id = int(cursor.lastrowid)
            conn.executemany(
                "INSERT INTO session_areas (session_id, area, seconds) VALUES (?, ?, ?)",
                [(session_id, area, float(s)) for area, s in sorted(session.area_seconds.items()) if s > 0],
            )
            conn.executemany(
                "INSERT INTO session_actions (session_id, source, actions) VALUES (?, ?, ?)",
                [(session_id, source, int(n)) for source, n in sorted(session.action_counts.items()) if n > 0],
            )
            conn.execute("COMMIT")
            return session_id
        except sqlite3.Error as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._damaged(error) from None
        finally:
            conn.close()

    def sessions(self, *, limit: int | None = None) -> list[Session]:
        """Logged sessions, most recent first."""
        conn = self._connect(create=False)
        if conn is None:
            return []
        try:
            rows = conn.execute(
                "SELECT id, routine, file_hash, started_utc, local_date, seconds_played, steps_completed,"
                " steps_total, finished, seconds_total, practised, program, program_path, program_day"
                " FROM sessions ORDER BY started_utc DESC, id DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
            areas: dict[int, dict[str, float]] = {}
            for session_id, area, seconds in conn.execute("SELECT session_id, area, seconds FROM session_areas"):
                areas.setdefault(session_id, {})[area] = seconds
            actions: dict[int, dict[str, int]] = {}
            for session_id, source, count in conn.execute("SELECT session_id, source, actions FROM session_actions"):
                actions.setdefault(session_id, {})[source] = count
            return [
                Session(
                    id=row[0],
                    routine=row[1],
                    file_hash=row[2],
                    started_utc=datetime.fromisoformat(row[3]).astimezone(timezone.utc),
                    local_date=date.fromisoformat(row[4]),
                    seconds_played=row[5],
                    steps_completed=row[6],
                    steps_total=row[7],
                    finished=bool(row[8]),
                    area_seconds=areas.get(row[0], {}),
                    seconds_total=row[9],
                    practised=bool(row[10]),
                    program=row[11],
                    program_path=row[12],
                    program_day=row[13],
                    action_counts=actions.get(row[0], {}),
                )
                for row in rows
            ]
        except (sqlite3.Error, ValueError, TypeError) as error:
            raise self._damaged(error) from None
        finally:
            conn.close()

    def last_program(self) -> str | None:
        """The program file of the most recent session that played a program day, if any."""
        for session in self.sessions():
            if session.program_path:
                return session.program_path
        return None

    def summary(self, *, now: datetime | None = None, zone: tzinfo | None = None, limit: int = 10,
                today: date | None = None) -> Summary:
        """Recent sessions, streaks and minutes per area as of ``now`` in ``zone`` (default: here),
        or as of the local date ``today``."""
        now = now or datetime.now(timezone.utc)
        today = today or now.astimezone(zone or local_zone()).date()
        everything = self.sessions()
        current, longest = streaks((s.local_date for s in everything if s.practised), today)
        return Summary(
            today=today,
            sessions=tuple(everything[:limit]),
            total_sessions=len(everything),
            current_streak_days=current,
            longest_streak_days=longest,
            minutes_7_days=_area_minutes(everything, since=today - timedelta(days=6)),
            minutes_30_days=_area_minutes(everything, since=today - timedelta(days=29)),
        )


def _area_minutes(sessions: Iterable[Session], *, since: date) -> dict[str, float]:
    totals: dict[str, float] = {}
    for session in sessions:
        if session.local_date >= since:
            for area, seconds in session.area_seconds.items():
                totals[area] = totals.get(area, 0.0) + seconds / 60
    return dict(sorted(totals.items()))
