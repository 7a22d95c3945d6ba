"""keyboard.py: decoding single keys and arrows, raw mode on a real pseudo-terminal, key scripts."""

from __future__ import annotations

import os
import pty
import termios

import pytest
from hypothesis import given, strategies as st

from voicecoach.errors import VoicecoachError
from voicecoach.play.controller import Action
from voicecoach.play.keyboard import KEY_ACTIONS, RawTerminal, ScriptedKey, decode, parse_script


def test_decode_letters_space_and_arrows():
    assert decode(b" nNp+-=q") == (["space", "n", "n", "p", "+", "-", "=", "q"], b"")
    assert decode(b"\x1b[C\x1b[D\x1bOC\x1bOD\x1b[A\x1b[B") == (["right", "left", "right", "left", "up", "down"], b"")
    assert decode(b"\x1b[1;5C") == (["right"], b"")  # Ctrl+Right still moves on
    assert decode(b"\x1b[15~n") == (["n"], b"")  # F5: dropped whole
    assert decode(b"\x1bx") == (["escape", "x"], b"")


def test_decode_keeps_an_unfinished_sequence_for_the_next_read():
    assert decode(b"n\x1b") == (["n"], b"\x1b")
    assert decode(b"\x1b[") == ([], b"\x1b[")
    assert decode(b"\x1b[1;") == ([], b"\x1b[1;")


@given(st.lists(st.sampled_from([b" ", b"n", b"\x1b[C", b"\x1bOD", b"\x1b", b"x", b"\x1b[15~", b"q"])), st.data())
def test_decode_is_the_same_however_the_input_is_split(parts, data):
    stream = b"".join(parts)
    cut = data.draw(st.integers(0, len(stream)))
    keys1, partial = decode(stream[:cut])
    keys2, rest = decode(partial + stream[cut:])
    assert (keys1 + keys2, rest) == decode(stream)


def test_every_documented_key_has_an_action():
    for key in ["space", "n", "right", "p", "left", "r", "+", "-", "q"]:
        assert isinstance(KEY_ACTIONS[key], Action)
    assert KEY_ACTIONS["space"] is Action.PAUSE and KEY_ACTIONS["left"] is Action.BACK


@pytest.fixture
def pty_pair():
    master, slave = pty.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)


def test_raw_terminal_reads_single_keys_and_restores(pty_pair):
    master, slave = pty_pair
    before = termios.tcgetattr(slave)
    assert before[3] & termios.ICANON and before[3] & termios.ECHO
    assert RawTerminal.available(slave)
    with RawTerminal(slave) as terminal:
        mode = termios.tcgetattr(slave)
        assert not mode[3] & termios.ICANON and not mode[3] & termios.ECHO
        assert mode[3] & termios.ISIG  # Ctrl-C still interrupts
        os.write(master, b"n\x1b[D ")
        assert [terminal.read_key(1.0) for _ in range(3)] == ["n", "left", "space"]
        assert terminal.read_key(0.01) is None
        os.write(master, b"\x1b")  # Escape alone: given up on after a short wait
        assert terminal.read_key(1.0) == "escape"
        os.write(master, b"\x1b")
        os.write(master, b"[C")  # a sequence split over two reads
        assert terminal.read_key(1.0) == "right"
    assert termios.tcgetattr(slave) == before


def test_raw_terminal_is_restored_after_ctrl_c(pty_pair):
    _, slave = pty_pair
    before = termios.tcgetattr(slave)
    with pytest.raises(KeyboardInterrupt):
        with RawTerminal(slave):
            raise KeyboardInterrupt
    assert termios.tcgetattr(slave) == before


def test_not_a_terminal(tmp_path):
    with open(tmp_path / "f", "w") as f:
        assert not RawTerminal.available(f.fileno())
    assert not RawTerminal.available(9999)


def test_parse_script():
    script = parse_script("wait:1.0, space ,wait:1.0,space,n,wait:0.25,LEFT,q")
    assert script == [
        ScriptedKey(1.0, "space"), ScriptedKey(2.0, "space"), ScriptedKey(2.0, "n"),
        ScriptedKey(2.25, "left"), ScriptedKey(2.25, "q"),
    ]
    assert [k.action for k in script] == [Action.PAUSE, Action.PAUSE, Action.NEXT, Action.BACK, Action.QUIT]


@pytest.mark.parametrize("spec, message", [
    ("wait:x", "bad key script item 'wait:x'; write waits as wait:SECONDS"),
    ("wait:-1", "bad key script item 'wait:-1'"),
    ("wait:inf", "bad key script item 'wait:inf'"),
    ("space,jump", "unknown key 'jump' in the key script; use wait:SECONDS or one of: space, n,"),
])
def test_parse_script_errors(spec, message):
    with pytest.raises(VoicecoachError) as error:
        parse_script(spec)
    assert error.value.format().startswith(message)
