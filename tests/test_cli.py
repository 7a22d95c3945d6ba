"""cli.py through click's CliRunner: help, exit codes, messages, outputs."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.errors import Terminated

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
MORNING = str(SCRIPTS / "morning.yaml")


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def _all_commands(group, prefix=()) -> list[tuple[str, ...]]:
    """Every command path, subcommands of groups (like `cache info`) included."""
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(_all_commands(command, (*prefix, name)))
    return paths


@pytest.mark.parametrize("command", _all_commands(cli), ids=" ".join)
def test_every_command_has_help_with_an_example(run, command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and f"voicecoach {' '.join(command)}" in result.output


def test_check_good_files(run):
    result = run("check", *map(str, sorted(SCRIPTS.glob("*.yaml"))))
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok (") == len(list(SCRIPTS.glob("*.yaml")))


def test_check_reports_each_problem_and_exits_2(run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("routine: Bad\nsteps:\n  - exercise: Lift\n    hodl: 5s\n    reps: 0\n")
    result = run("check", str(bad), MORNING)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{bad}:4:5: unknown key 'hodl'") and "did you mean 'hold'?" in lines[0]
    assert lines[1].startswith(f"{bad}:5:11: ")
    assert "Traceback" not in result.output
    assert f"{MORNING}: ok" in result.stdout


def test_preview_prints_the_plan(run):
    result = run("preview", MORNING)
    assert result.exit_code == 0
    assert result.output.splitlines()[0].startswith("Morning wake-up  (about ")
    assert "Brow lift against the fingers [brows] - 4 holds" in result.output
    data = json.loads(run("preview", MORNING, "--json").output)
    assert data["estimated"] is True and len(data["steps"]) == 6
    starts = [s["start_s"] for s in data["steps"]]
    assert starts == sorted(starts) and starts[0] == 0


def test_preview_json_numbers_steps_like_the_text_view_and_play_from(run):
    text = run("preview", MORNING).output.splitlines()[1:-1]
    data = json.loads(run("preview", MORNING, "--json").output)
    shown = [int(line.split(".")[0].split()[-1]) for line in text]  # "  0:45   2. Brow lift ..."
    assert [s["step"] for s in data["steps"]] == shown == list(range(1, 7))
    assert data["steps"][1]["title"] in text[1]  # --from 2 starts at the step numbered 2 in both views


def test_compile_writes_audio_timeline_and_captions(run, tmp_path):
    out, timeline, captions = tmp_path / "m.wav", tmp_path / "m.json", tmp_path / "m.vtt"
    result = run("compile", MORNING, "-o", str(out), "--timeline", str(timeline), "--captions", str(captions),
                 "--engine", "fake")
    assert result.exit_code == 0, result.output
    summary = result.output.strip().splitlines()[-1]
    assert re.fullmatch(rf"Morning wake-up: \d+:\d\d, 6 steps, (\d+) clips synthesized, 0 from cache, track mixed -> {re.escape(str(out))}", summary)
    data = json.loads(timeline.read_text())
    assert data["version"] == 1 and len(data["chapters"]) == 6
    assert captions.read_text().startswith("WEBVTT")

    again = run("compile", MORNING, "-o", str(out), "--engine", "fake")
    assert " 0 clips synthesized, " in again.output and "track from cache" in again.output


def test_compile_output_is_byte_identical(run, tmp_path):
    first, second = tmp_path / "a.mp3", tmp_path / "b.mp3"
    assert run("compile", MORNING, "-o", str(first), "--engine", "fake").exit_code == 0
    assert run("compile", MORNING, "-o", str(second), "--engine", "fake", "--no-cache").exit_code == 0
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize(
    "args, message",
    [
        (["-o", "{tmp}/out.ogg"],
         "cannot write '.ogg' output; name the output file with one of: .mp3, .m4b, .opus, .flac, .wav\n"),
        (["-o", "{tmp}/out"], "cannot write 'a file without extension' output; name the output file with one of: "),
        (["-o", "{tmp}/missing/out.mp3"], "does not exist; create it first"),
    ],
)
def test_compile_refuses_bad_output_before_work(run, tmp_path, args, message):
    args = [a.format(tmp=tmp_path) for a in args]
    result = run("compile", MORNING, *args, "--engine", "fake")
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "cache").exists()


def test_an_unknown_extension_lists_every_format_of_the_table_in_one_line(run, tmp_path):
    from voicecoach.formats import FORMATS

    result = run("compile", MORNING, "-o", str(tmp_path / "out.aiff"), "--engine", "fake")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.rstrip().endswith(", ".join(f.extension for f in FORMATS.values()))


@pytest.mark.parametrize("extension", ["m4b", "opus", "flac"])
def test_compile_writes_every_chaptered_format_deterministically(run, tmp_path, extension):
    from voicecoach.encode import read_chapters

    first, second, timeline = tmp_path / f"a.{extension}", tmp_path / f"b.{extension}", tmp_path / "t.json"
    result = run("compile", MORNING, "-o", str(first), "--timeline", str(timeline), "--engine", "fake")
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"-> {first}")
    chapters = json.loads(timeline.read_text())["chapters"]
    found = read_chapters(first)  # as the bundled ffmpeg lists them
    assert [title for _, _, title in found] == [c["title"] for c in chapters] and len(found) == 6
    assert [round(start, 3) for start, _, _ in found] == [round(c["start_s"], 3) for c in chapters]
    assert run("compile", MORNING, "-o", str(second), "--engine", "fake", "--no-cache").exit_code == 0
    assert first.read_bytes() == second.read_bytes()


def test_compile_to_flac_is_lossless(run, tmp_path):
    import subprocess

    from voicecoach.encode import ffmpeg_exe

    flac, wav = tmp_path / "m.flac", tmp_path / "m.wav"
    assert run("compile", MORNING, "-o", str(flac), "--engine", "fake").exit_code == 0
    assert run("compile", MORNING, "-o", str(wav), "--engine", "fake").exit_code == 0
    decoded = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(flac), "-f", "s16le", "-"],
                             capture_output=True, check=True).stdout
    assert decoded == wav.read_bytes()[44:]  # the WAV's samples after its 44-byte header


def test_compile_bad_routine_leaves_no_output(run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("routine: Bad\nsteps: []\n")
    out = tmp_path / "out.mp3"
    result = run("compile", str(bad), "-o", str(out), "--engine", "fake")
    assert result.exit_code == 2 and result.stderr.startswith(f"{bad}:")
    assert list(tmp_path.iterdir()) == [bad]


def test_compile_timing_error_names_step_and_line(run, tmp_path):
    routine = tmp_path / "fast.yaml"
    routine.write_text(
        "routine: Fast\nsteps:\n  - massage: Quick taps\n    strokes: 4\n    tempo: 1s\n"
        "    cue: sweep slowly along the jaw line\n"
    )
    result = run("compile", str(routine), "-o", str(tmp_path / "f.mp3"), "--engine", "fake")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{routine}:3:5: massage 'Quick taps': the stroke cue 'sweep slowly along the jaw line' takes ")
    assert "set tempo to at least" in result.stderr
    assert not (tmp_path / "f.mp3").exists()


def test_voices_lists_fake_engine(run):
    result = run("voices", "--engine", "fake", "--json")
    assert json.loads(result.output) == [{"engine": "fake", "id": "hum", "name": "Test hum (no speech)",
                                          "languages": ["en"], "auto": []}]


def test_missing_file_is_exit_2(run, tmp_path):
    result = run("compile", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "x.mp3"), "--engine", "fake")
    assert result.exit_code == 2 and "nope.yaml" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("stop", "message", "code"), [(KeyboardInterrupt, "Interrupted.", 130),
                                                        (Terminated, "Terminated.", 143)])
def test_a_stop_while_the_command_line_loads_is_a_clean_stop(monkeypatch, capsys, stop, message, code):
    """The console script imports the CLI (and the audio stack) inside the Ctrl-C and SIGTERM handling."""
    import importlib.abc
    import signal

    from voicecoach import _entry

    class Stopping(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "voicecoach.cli":
                raise stop
            return None

    monkeypatch.delitem(sys.modules, "voicecoach.cli")
    monkeypatch.setattr(sys, "meta_path", [Stopping(), *sys.meta_path])
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # leave pytest's own handlers alone
    with pytest.raises(SystemExit) as stopped:
        _entry.main()
    assert stopped.value.code == code and capsys.readouterr().err == message + "\n"


def test_the_package_loads_nothing_until_asked_and_its_public_names_resolve():
    import subprocess

    import voicecoach

    loaded = subprocess.run([sys.executable, "-c", "import sys, voicecoach._entry; "
                             "print(sorted(m for m in sys.modules if m.startswith('voicecoach')))"],
                            capture_output=True, text=True, check=True).stdout
    # the stop handling comes first; errors.py is all it needs
    assert loaded.strip() == "['voicecoach', 'voicecoach._entry', 'voicecoach.errors']"
    assert all(getattr(voicecoach, name) is not None for name in voicecoach.__all__)
    with pytest.raises(AttributeError):
        voicecoach.no_such_name  # noqa: B018


def test_check_takes_the_folders_export_takes_and_checks_blocks_as_blocks(run, tmp_path):
    from voicecoach.script import find_routine_files, is_block_file

    result = run("check", str(SCRIPTS))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    files = find_routine_files([SCRIPTS])  # what `export scripts/` goes through
    assert [line.split(": ok (")[0] for line in lines] == [str(f) for f in files]
    blocks = [line for line in lines if "include-only block" in line]
    assert len(blocks) == sum(is_block_file(f) for f in files) > 0  # the ones export skips
    assert f"{SCRIPTS / 'library' / 'jaw-release.yaml'}: ok (include-only block, 2 steps)" in lines
    broken = tmp_path / "block.yaml"
    broken.write_text("steps:\n  - massage: Sweep\n    strokes: many\n")
    bad = run("check", str(broken))
    assert bad.exit_code == 2 and bad.stderr.startswith(f"{broken}:3:14: strokes: ")  # not "no title"
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run("check", str(empty))
    assert nothing.exit_code == 2 and "no routines found in" in nothing.stderr
