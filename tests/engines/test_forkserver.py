"""The warm children of a speech server (engines/forkserver.WorkerPool): each request answered,
children reused while what they inherited stays the same, a failure, a crash and a hang
reported without stopping the others, and nothing left running when the client is gone."""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from pathlib import Path

import pytest

from voicecoach.engines.forkserver import WorkerPool


def work(request: dict) -> int:
    """Runs in a child: writes its pid, then succeeds or fails the way the request asks."""
    Path(request["out"]).write_text(str(os.getpid()))
    what = request.get("do", "ok")
    if what == "raise":
        raise RuntimeError("the engine choked on this")
    if what == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if what == "hang":
        time.sleep(60)
    if what == "slow":  # long enough for the other child to have started
        time.sleep(1)
    return 3 if what == "status" else 0


def run(pool: WorkerPool, requests: list[dict], *, jobs: int = 2, timeout: float = 20, key=None) -> dict:
    answers = {}
    pool.run(deque(requests), jobs, timeout, lambda answer: answers.__setitem__(answer["id"], answer), key=key)
    return answers


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_pool_answers_every_request_from_warm_children(tmp_path):
    pool = WorkerPool(work, "test")
    try:
        requests = [{"id": n, "out": str(tmp_path / f"{n}.txt")} for n in range(8)]
        answers = run(pool, requests, key="a")
        assert sorted(answers) == list(range(8)) and all(a["ok"] for a in answers.values())
        pids = {(tmp_path / f"{n}.txt").read_text() for n in range(8)}
        assert 1 <= len(pids) <= 2 and str(os.getpid()) not in pids  # two children did all eight
        run(pool, requests, key="a")
        assert {(tmp_path / f"{n}.txt").read_text() for n in range(8)} <= pids  # the same children again
        run(pool, requests, key="b")  # what children inherit changed: new ones
        fresh = {(tmp_path / f"{n}.txt").read_text() for n in range(8)}
        assert not fresh & pids
        assert not any(alive(int(pid)) for pid in pids)
    finally:
        pool.close()
    assert not any(alive(int(pid)) for pid in fresh)


def test_a_failure_a_crash_and_a_hang_are_reported_and_the_rest_still_made(tmp_path):
    pool = WorkerPool(work, "test")
    kinds = ["raise", "ok", "crash", "ok", "hang", "status", "ok", "ok"]
    requests = [{"id": n, "do": kind, "out": str(tmp_path / f"{n}.txt")} for n, kind in enumerate(kinds)]
    try:
        began = time.monotonic()
        answers = run(pool, requests, timeout=2)
        assert time.monotonic() - began < 30
    finally:
        pool.close()
    assert [answers[n]["ok"] for n in range(len(kinds))] == [kind == "ok" for kind in kinds]
    assert answers[0]["error"] == "RuntimeError: the engine choked on this"
    assert answers[2]["error"] == "test crashed (SIGKILL)"
    assert answers[4]["error"] == "test did not finish within 2 s"
    assert answers[5]["error"] == "exited with status 3"
    pids = {(tmp_path / f"{n}.txt").read_text() for n in range(len(kinds))}
    assert len(pids) >= 3 and not any(alive(int(pid)) for pid in pids)  # the crashed and the hung one replaced


def test_a_client_gone_ends_every_child(tmp_path):
    pool = WorkerPool(work, "test")
    requests = deque({"id": n, "do": "hang" if n else "slow", "out": str(tmp_path / f"{n}.txt")} for n in range(3))

    def reply(answer: dict) -> None:
        raise BrokenPipeError  # the player quit: its end of the pipe is closed

    with pytest.raises(BrokenPipeError):
        pool.run(requests, 2, 60, reply)
    pool.close()
    pids = [int((tmp_path / f"{n}.txt").read_text()) for n in range(2)]  # the answered one, the hanging one
    assert not any(alive(pid) for pid in pids)
