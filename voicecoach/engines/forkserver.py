"""The fork-per-phrase speech server protocol, both sides: the client engine and the server loop.

An engine whose library keeps state between phrases, or is costly to load, runs as a server
(``python -m voicecoach.engines.NAME_server``) that loads the library once and forks a fresh
child for every phrase: clips are pure functions of their request (byte-identical, whatever
was said before), children run in parallel (one per core), and a hung or crashed child is
killed after a timeout and reported with its text, without taking the command down.

Protocol (JSON lines).  The server first writes ``{"ready": true, ...}`` (or ``{"ready":
false, "error": ..}``).  Requests: ``{"op": "synth", "id": .., "out": path, ...engine
fields}`` are collected; ``{"op": "run", "jobs": N, "timeout": s}`` runs the batch, answering
``{"id": .., "ok": bool, "error": ..}`` per phrase as each finishes (the child wrote the
finished clip to ``out``, see :func:`write_finished_clip`), then ``{"done": true}``.  Other
ops go to the server's own handler.  EOF ends the server.

The server side is single-threaded (fork-safe) and prints nothing on the real stdout but the
protocol (:func:`open_protocol`).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import wave
from collections import deque
from typing import Callable, Iterator

import numpy as np

from ..errors import EngineError

Reply = Callable[[dict], None]
Work = Callable[[dict], int]
"""Runs in a forked child: one request, returns the exit code (0: ``out`` was written)."""


# ---------------------------------------------------------------------------------------
# Client side


class ServerEngine:
    """An engine that runs a fork-per-phrase server (``python -m MODULE``) and talks JSON lines."""

    name = "server"
    MODULE = ""
    """The server module, run with ``python -m``."""
    START_HINT = ""
    """How to fix a server that cannot start (reinstall, install)."""
    GLIBC_TUNABLES = ""
    """glibc malloc tunables for the server and its children (``GLIBC_TUNABLES``, added to the user's)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._greeted = False

    def spawn(self) -> None:
        """Start the server process, if it is not running, without waiting for it to be ready
        (it imports its library meanwhile; requests sent now wait in its input)."""
        if self._proc is not None and self._proc.poll() is None:
            return
        self._greeted = False
        env = None
        if self.GLIBC_TUNABLES:
            env = {**os.environ, "GLIBC_TUNABLES": ":".join(filter(None, (os.environ.get("GLIBC_TUNABLES"),
                                                                          self.GLIBC_TUNABLES)))}
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", self.MODULE],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                bufsize=1,
            )
        except OSError as error:
            raise EngineError(f"cannot start the {self.name} speech server: {error}") from None

    def server(self) -> subprocess.Popen:
        """The running server, started (and greeted) if need be."""
        self.spawn()
        assert self._proc is not None
        if not self._greeted:
            hello = self.receive()
            if not hello.get("ready"):
                self.close()
                raise EngineError(f"{self.describe()} could not start: {hello.get('error', 'no answer')}",
                                  hint=self.START_HINT)
            self._greeted = True
            self.started(hello)
        return self._proc

    def describe(self) -> str:
        return self.name

    def started(self, hello: dict) -> None:
        """The server's first answer, for engines that learn something from it."""

    def send(self, message: dict) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(message) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise EngineError(f"the {self.name} speech server stopped unexpectedly") from None

    def receive(self) -> dict:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise EngineError(f"the {self.name} speech server stopped unexpectedly")
        return json.loads(line)

    def run(self, texts: list[str], requests: list[dict], *, voice: str, jobs: int,
            timeout_s: float) -> Iterator[tuple[str, np.ndarray]]:
        """Send one request per text (each gets an ``id`` and an ``out`` file), run them, yield the clips."""
        self.server()
        folder = tempfile.mkdtemp(prefix=f"voicecoach-{self.name}-")
        try:
            for index, request in enumerate(requests):
                self.send({"op": "synth", "id": index, **request, "out": os.path.join(folder, f"{index}.wav")})
            self.send({"op": "run", "jobs": jobs, "timeout": timeout_s})
            while True:
                answer = self.receive()
                if answer.get("done"):
                    break
                index = answer["id"]
                if not answer["ok"]:
                    self.close()  # the batch is abandoned; a fresh server serves the next one
                    raise self.failure(texts[index], voice, answer.get("error", ""))
                path = os.path.join(folder, f"{index}.wav")
                yield texts[index], read_wav(path)
                os.unlink(path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def kill(self) -> None:
        """Stop the server now, from another thread: the thread waiting for its answers meets
        the end of its output (an EngineError) and closes it; its children end at their next phrase."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.terminate()

    def failure(self, text: str, voice: str, error: str) -> EngineError:
        """The error for a phrase the server could not make (engines refine it)."""
        failed = EngineError(f"{self.name} failed on {text[:80]!r}: {error}", hint="simplify the text or report the bug")
        failed.text = text
        return failed

    def close(self) -> None:
        if self._proc is not None:
            proc, self._proc = self._proc, None
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except Exception:
                    pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def read_wav(path: str) -> np.ndarray:
    """A finished clip the server wrote (16-bit mono WAV)."""
    with wave.open(path, "rb") as handle:
        if handle.getsampwidth() != 2 or handle.getnchannels() != 1:
            raise EngineError(f"unexpected WAV format from the engine in {path}")
        return np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").astype(np.int16)


# ---------------------------------------------------------------------------------------
# Server side


def write_finished_clip(raw, *, source_rate: int, request: dict) -> int:
    """Finish a raw int16 clip (mix.process_clip) and write it as the request's WAV.

    Done in the child, so clips are finished in parallel, not one by one in the client.
    """
    from ..mix import process_clip

    rate = int(request["sample_rate"])
    clip = process_clip(raw, source_rate=source_rate, sample_rate=rate)
    with wave.open(request["out"], "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(clip.astype("<i2").tobytes())
    return 0


def fork_child(request: dict, work: Work) -> int:
    """Run ``work(request)`` in a forked child; its pid.  A failure goes to ``out + ".err"``."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        code = work(request)
    except BaseException as error:  # report any failure through a side file
        try:
            with open(request["out"] + ".err", "w", encoding="utf-8") as handle:
                handle.write(f"{type(error).__name__}: {error}")
        except OSError:
            pass
        code = 2
    finally:
        os._exit(code)


def run_batch(batch: deque, jobs: int, timeout: float, reply: Reply, *, work: Work, engine: str) -> None:
    """Run every request of ``batch`` in its own child, ``jobs`` at a time, answering each as it finishes.

    A client gone (a player quit early: the answer cannot be written) or any other failure
    kills the children still running: nothing goes on synthesizing for nobody.
    """
    running: dict[int, tuple[dict, float]] = {}
    try:
        _run_batch(batch, jobs, timeout, reply, work, engine, running)
    except BaseException:
        for child in running:
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
        raise


def _run_batch(batch: deque, jobs: int, timeout: float, reply: Reply, work: Work, engine: str,
               running: dict[int, tuple[dict, float]]) -> None:
    while batch or running:
        while batch and len(running) < jobs:
            request = batch.popleft()
            pid = fork_child(request, work)
            running[pid] = (request, time.monotonic() + timeout)
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for child, (request, deadline) in list(running.items()):
                if now > deadline:
                    os.kill(child, signal.SIGKILL)
                    os.waitpid(child, 0)
                    del running[child]
                    reply({"id": request["id"], "ok": False, "error": f"{engine} did not finish within {timeout:g} s"})
            time.sleep(0.001)
            continue
        request, _ = running.pop(pid)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            reply({"id": request["id"], "ok": True})
            continue
        if os.WIFSIGNALED(status):
            error = f"{engine} crashed ({signal.Signals(os.WTERMSIG(status)).name})"
        else:
            error = f"{engine} exited with status {os.WEXITSTATUS(status)}"
        try:
            with open(request["out"] + ".err", encoding="utf-8") as handle:
                error = handle.read() or error
            os.unlink(request["out"] + ".err")
        except OSError:
            pass
        reply({"id": request["id"], "ok": False, "error": error})


class WorkerPool:
    """Warm children that each run one request after another, ``jobs`` at a time, for a server
    whose work is a pure function of its request whatever ran before it in the same process
    (Piper with its noise as inputs: piper_noise).  A child keeps what it warmed up (ONNX
    Runtime's memory, the first run's allocations), which a fresh child per request pays anew.

    A child that fails its request answers with the error and goes on; one that crashes or
    overruns ``timeout`` is killed, its request answered as failed, and another is forked when
    needed.  ``key`` says what the children inherited (the models loaded): when it changes,
    the idle children are retired and new ones fork from the server as it is now.
    """

    def __init__(self, work: Work, engine: str) -> None:
        self.work = work
        self.engine = engine
        self._idle: list[_Child] = []
        self._children: dict[int, _Child] = {}  # every live child, by pid
        self._key: object = None

    def run(self, batch: deque, jobs: int, timeout: float, reply: Reply, *, key: object = None) -> None:
        """Run every request of ``batch``, answering each as it finishes (as :func:`run_batch`)."""
        if key != self._key:
            self.close()
            self._key = key
        busy: dict[int, _Child] = {}  # by the fd its answers come on
        try:
            while batch or busy:
                while batch and len(busy) < jobs:
                    child = self._idle.pop() if self._idle else self._fork()
                    child.give(batch.popleft(), timeout)
                    busy[child.answers] = child
                now = time.monotonic()
                wait_s = max(0.0, min(child.deadline for child in busy.values()) - now)
                ready, _, _ = select.select(list(busy), [], [], wait_s)
                for fd in ready:
                    child = busy[fd]
                    answer = child.answer()
                    if answer is None:  # it died: its pipe closed
                        del busy[fd], self._children[child.pid]
                        reply({"id": child.request["id"], "ok": False, "error": child.reap(self.engine)})
                    elif answer is not False:
                        del busy[fd]
                        self._idle.append(child)  # first: a reply that fails (client gone) still ends it
                        reply({"id": child.request["id"], **answer})
                now = time.monotonic()
                for fd, child in list(busy.items()):
                    if now > child.deadline:
                        del busy[fd], self._children[child.pid]
                        child.kill()
                        reply({"id": child.request["id"], "ok": False,
                               "error": f"{self.engine} did not finish within {timeout:g} s"})
        except BaseException:  # e.g. the client is gone: nothing goes on working for nobody
            for child in busy.values():
                del self._children[child.pid]
                child.kill()
            raise

    def _fork(self) -> "_Child":
        task_read, task_write = os.pipe()
        answer_read, answer_write = os.pipe()
        pid = os.fork()
        if pid:
            os.close(task_read)
            os.close(answer_write)
            child = self._children[pid] = _Child(pid, task_write, answer_read)
            return child
        code = 0
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            for other in self._children.values():  # its siblings' pipes: they must see their ends close
                other.forget()
            os.close(task_write)
            os.close(answer_read)
            _serve_requests(task_read, answer_write, self.work)
        except BaseException:
            code = 1
        finally:
            os._exit(code)

    def close(self) -> None:
        """End the idle children (they exit when their request pipe closes)."""
        for child in self._idle:
            del self._children[child.pid]
            child.finish()
        self._idle.clear()


def _serve_requests(task_fd: int, answer_fd: int, work: Work) -> None:
    """In a pool's child: one request per line in, one answer per line out, until EOF."""
    with os.fdopen(task_fd, encoding="utf-8") as tasks, os.fdopen(answer_fd, "w", encoding="utf-8") as answers:
        for line in tasks:
            request = json.loads(line)
            try:
                code = work(request)
                answer = {"ok": True} if code == 0 else {"ok": False, "error": f"exited with status {code}"}
            except Exception as error:  # this request failed; the child goes on with the next
                answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            answers.write(json.dumps(answer) + "\n")
            answers.flush()


class _Child:
    """A pool's child as its server sees it: its pid, its two pipes, the request it runs."""

    def __init__(self, pid: int, tasks: int, answers: int) -> None:
        self.pid = pid
        self.tasks = tasks
        self.answers = answers
        self.request: dict = {}
        self.deadline = 0.0
        self._buffer = b""

    def give(self, request: dict, timeout: float) -> None:
        self.request = request
        self.deadline = time.monotonic() + timeout
        os.write(self.tasks, (json.dumps(request) + "\n").encode())

    def answer(self) -> dict | None | bool:
        """The answer if a whole line came, ``False`` if not yet, ``None`` if the child is gone."""
        data = os.read(self.answers, 65536)
        if not data:
            return None
        self._buffer += data
        line, newline, rest = self._buffer.partition(b"\n")
        if not newline:
            return False
        self._buffer = rest
        return json.loads(line)

    def reap(self, engine: str) -> str:
        """Wait for a child that died; why it did."""
        self.forget()
        _, status = os.waitpid(self.pid, 0)
        if os.WIFSIGNALED(status):
            return f"{engine} crashed ({signal.Signals(os.WTERMSIG(status)).name})"
        return f"{engine} exited with status {os.WEXITSTATUS(status)}"

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        self.forget()
        with contextlib.suppress(OSError):
            os.waitpid(self.pid, 0)

    def finish(self) -> None:
        self.forget()
        with contextlib.suppress(OSError):
            os.waitpid(self.pid, 0)

    def forget(self) -> None:
        """Close this side's pipes (in a sibling: its inherited copies)."""
        for fd in (self.tasks, self.answers):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.tasks = self.answers = -1


def open_protocol() -> Reply:
    """``reply(message)``, writing JSON lines to the real stdout; stdout itself then goes to
    /dev/null, so nothing a library prints (pyttsx3: "Audio saved to ...") corrupts the protocol."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)

    def reply(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    return reply


def serve(reply: Reply, run: Callable[[deque, int, float], None], *, other: Callable[[dict], None] | None = None) -> None:
    """Answer requests from stdin until EOF: ``synth`` requests are collected, ``run`` hands the
    batch to ``run(batch, jobs, timeout)`` and answers ``done``; any other request goes to ``other``."""
    batch: deque = deque()
    for line in sys.stdin:
        request = json.loads(line)
        op = request.get("op")
        if op == "synth":
            batch.append(request)
        elif op == "run":
            run(batch, max(1, int(request.get("jobs", 1))), float(request.get("timeout", 60)))
            batch.clear()
            reply({"done": True})
        elif other is not None:
            other(request)
