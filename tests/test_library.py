"""The routine library in scripts/: safe by every rule, compiles, and the README tells the truth about it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.model import Area, Exercise, Massage, flat_steps
from voicecoach.pipeline import Settings, build
from voicecoach.rules import check_routine
from voicecoach.script import load_routine

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
ROUTINES = sorted(SCRIPTS.glob("*.yaml"))
BLOCKS = sorted((SCRIPTS / "library").glob("*.yaml"))
THEMES = {  # what the library must offer -> its file
    "morning wake-up": "morning.yaml",
    "evening jaw and tension release": "evening-jaw-release.yaml",
    "lymphatic drainage": "lymphatic-drainage.yaml",
    "forehead smoothing": "forehead-smoothing.yaml",
    "eye area": "eye-area.yaml",
    "cheeks and mid-face lift": "cheeks-lift.yaml",
    "neck and jawline": "neck-jawline.yaml",
    "gua sha": "gua-sha.yaml",
    "3-minute quick routine": "quick-3-minute.yaml",
    "full 15-minute session": "full-session.yaml",
}
TARGET_MINUTES = {"morning.yaml": 5, "quick-3-minute.yaml": 3, "full-session.yaml": 15}


def areas(routine) -> str:
    worked = {step.area for step, _ in flat_steps(routine.steps) if isinstance(step, (Exercise, Massage))}
    return ", ".join(area.value for area in Area if area in worked)


def readme_table() -> dict[str, dict[str, str]]:
    """The rows of the README's library table, by file name."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Library routines", 1)[1].split("\n#", 1)[0]
    rows = {}
    for match in re.finditer(r"^\| \[(?P<title>[^\]]+)\]\(scripts/(?P<file>[^)]+)\) \| (?P<minutes>\d+) \| "
                             r"(?P<areas>[^|]+) \| (?P<purpose>[^|]+) \|$", section, re.MULTILINE):
        rows[match["file"]] = {key: match[key].strip() for key in ("title", "minutes", "areas", "purpose")}
    return rows


def test_the_library_has_every_theme():
    assert len(ROUTINES) >= 10
    names = {path.name for path in ROUTINES}
    assert {theme: file for theme, file in THEMES.items() if file not in names} == {}


@pytest.mark.parametrize("path", ROUTINES, ids=lambda p: p.stem)
def test_routine_passes_every_rule_and_compiles(path, tmp_path):
    routine = load_routine(path)
    assert [finding.format() for finding in check_routine(routine)] == []
    result = build(routine, settings=Settings(engine="fake", cache_dir=tmp_path))
    assert result.timeline.length_samples > 0


@pytest.mark.parametrize("path", ROUTINES, ids=lambda p: p.stem)
def test_routine_is_well_written(path):
    routine = load_routine(path)
    steps = [step for step, _ in flat_steps(routine.steps)]
    assert routine.description and routine.intro and routine.outro
    assert all(step.area for step in steps if isinstance(step, (Exercise, Massage)))
    assert any(getattr(step, "tip", "") for step in steps), "give at least one tip"
    assert "include:" in path.read_text(encoding="utf-8"), "reuse a block from library/"


def test_every_block_is_used():
    used = "\n".join(path.read_text(encoding="utf-8") for path in ROUTINES)
    assert BLOCKS and [block.name for block in BLOCKS if f"include: library/{block.name}" not in used] == []


def test_readme_table_lists_every_routine_with_its_title_and_areas():
    table = readme_table()
    assert sorted(table) == [path.name for path in ROUTINES]
    for path in ROUTINES:
        routine = load_routine(path)
        assert table[path.name]["title"] == routine.title
        assert table[path.name]["areas"] == areas(routine)
        assert table[path.name]["purpose"]


@pytest.mark.espeak
def test_readme_minutes_are_the_compiled_minutes(tmp_path):
    """Every routine compiled with real espeak speech (schedule only, no mixing): the README's minutes
    are espeak's (Piper, the default for English, takes longer than CI should; see README)."""
    table = readme_table()
    settings = Settings(engine="espeak", cache_dir=tmp_path / "cache")
    for path in ROUTINES:
        minutes = build(path, settings=settings).timeline.duration_s / 60
        assert round(minutes) == int(table[path.name]["minutes"]), f"{path.name} lasts {minutes:.2f} minutes"
        if path.name in TARGET_MINUTES:
            assert abs(minutes - TARGET_MINUTES[path.name]) <= 1, f"{path.name} lasts {minutes:.2f} minutes"
    # the deep check measures the same speech (from the cache) and finds nothing
    result = CliRunner(env={"VOICECOACH_CACHE_DIR": str(tmp_path / "cache")}).invoke(
        cli, ["check", "--strict", "--deep", "--engine", "espeak", str(SCRIPTS / "quick-3-minute.yaml")], catch_exceptions=False)
    assert result.exit_code == 0 and result.stderr == "", result.stderr
