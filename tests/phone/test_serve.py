"""serve.py and `voicecoach serve`: a real HTTP server on 127.0.0.1 (port 0), a real client.

The server answers only below its secret token, and stays bounded against slow, large and
numerous requests.
"""

from __future__ import annotations

import http.client
import os
import queue
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecoach.phone import serve
from voicecoach.errors import VoicecoachError
from voicecoach.phone.feed import FeedSettings, write_feed
from voicecoach.phone.library import export_library
from voicecoach.pipeline import Settings
from voicecoach.phone.serve import RangeNotSatisfiable, content_type, make_server, parse_range, resolve_path

from tests.test_reliability import default_signals

TOKEN = "Tq3vX8kz_Wb-1NcRyP0sLm7AeJ4uHd9GfK2oQiZt6Ys"  # a fixed token: tests show it in failures
ROUTINE = "routine: Served routine\nsteps:\n  - say: Hello there.\n  - rest: 3s\n"
TRACK = "served-routine.mp3"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    (root / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    out = root / "phone"
    export_library([str(root / "r.yaml")], out, settings=Settings(engine="fake", cache_dir=root / "cache"))
    # Written for another address: the server must rewrite it for the one it serves.
    write_feed(out, settings=FeedSettings(base_url="http://192.168.99.99:9999/", title="Written title"))
    (root / "secret.txt").write_text("outside", encoding="utf-8")
    os.symlink(root / "secret.txt", out / "link-out.txt")
    return out


def running(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def stop(server, thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def base(folder):
    """The tokened base URL, ``http://127.0.0.1:PORT/<token>/``."""
    server = make_server(folder, host="127.0.0.1", port=0, token=TOKEN)
    thread = running(server)
    yield server.app.base_url
    stop(server, thread)


@pytest.fixture(scope="module")
def root(base) -> str:
    """The server's root URL, ``http://127.0.0.1:PORT/`` (no token)."""
    return base.removesuffix(TOKEN + "/")


def fetch(url: str, headers: dict | None = None, method: str = "GET"):
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def address(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname, parts.port


def raw_get(base: str, path: str) -> int:
    """A request with the path exactly as written below the token (urllib would not send some of these)."""
    host, port = address(base)
    prefix = urllib.parse.urlsplit(base).path.rstrip("/")
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.putrequest("GET", prefix + path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_base_url_is_the_loopback_address_served_below_the_token(base):
    assert re.fullmatch(rf"http://127\.0\.0\.1:[1-9][0-9]*/{TOKEN}/", base)


def test_the_feed_is_served_for_this_address(base, folder):
    status, headers, body = fetch(base + "feed.xml")
    assert status == 200 and headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    parsed = feedparser.parse(body)
    assert not parsed.bozo and parsed.feed.title == "Written title"
    [entry] = parsed.entries
    assert entry.enclosures[0].href == base + TRACK
    assert "192.168.99.99" not in body.decode("utf-8")
    status, _, track = fetch(entry.enclosures[0].href)  # what the podcast app does next
    assert status == 200 and track == (folder / TRACK).read_bytes()
    assert int(entry.enclosures[0].length) == len(track)


@pytest.mark.parametrize("name, kind", [
    (TRACK, "audio/mpeg"),
    ("served-routine.chapters.json", "application/json+chapters"),
    ("served-routine.png", "image/png"),
    ("feed.png", "image/png"),
])
def test_files_are_served_whole_with_their_type(base, folder, name, kind):
    status, headers, body = fetch(base + name)
    assert status == 200 and headers["Content-Type"] == kind
    assert headers["Accept-Ranges"] == "bytes" and int(headers["Content-Length"]) == len(body)
    assert body == (folder / name).read_bytes()


def test_range_requests(base, folder):
    data = (folder / TRACK).read_bytes()
    size = len(data)
    for header, first, last in [("bytes=10-19", 10, 19), ("bytes=100-", 100, size - 1),
                                ("bytes=-50", size - 50, size - 1), (f"bytes=5-{size + 100}", 5, size - 1)]:
        status, headers, body = fetch(base + TRACK, {"Range": header})
        assert status == 206, header
        assert headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert body == data[first : last + 1] and int(headers["Content-Length"]) == len(body)
    status, headers, body = fetch(base + TRACK, {"Range": f"bytes={size}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}" and body == b""
    status, _, body = fetch(base + TRACK, {"Range": "bytes=0-1,5-6"})  # several ranges: the whole file
    assert status == 200 and body == data


def test_head_sends_headers_only(base, folder):
    status, headers, body = fetch(base + TRACK, method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == (folder / TRACK).stat().st_size
    status, headers, body = fetch(base + TRACK, {"Range": "bytes=0-9"}, method="HEAD")
    assert status == 206 and headers["Content-Length"] == "10" and body == b""


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "/..%2fsecret.txt", "/a/../../secret.txt",
    "/%252e%252e/secret.txt", "//secret.txt", "/" + "/".join([".."] * 8) + "/etc/passwd",
    "/link-out.txt", "/.voicecoach-export.json", "/nothing.mp3", "/served-routine.mp3/", "/..\\secret.txt",
    "/%00", "/%ff",
])
def test_nothing_outside_the_folder_is_reachable(base, path):
    assert raw_get(base, path) == 404


def test_absolute_paths_are_404(base):
    assert raw_get(base, str(Path(__file__).resolve())) == 404
    assert raw_get(base, "/etc/passwd") == 404


def test_index_page_lists_the_feed_and_routines_and_its_links_work(base):
    status, headers, body = fetch(base)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    links = re.findall(r'href="([^"]*)"', body.decode("utf-8"))
    assert links == ["feed.xml", TRACK]  # relative: they keep the token
    for link in links:
        assert fetch(urllib.parse.urljoin(base, link))[0] == 200


def test_resolve_path_unit(tmp_path):
    (tmp_path / "a.mp3").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.mp3").write_bytes(b"y")
    assert resolve_path(tmp_path, "/a.mp3") == (tmp_path / "a.mp3").resolve()
    assert resolve_path(tmp_path, "/sub/b.mp3?x=1") == (tmp_path / "sub" / "b.mp3").resolve()
    assert resolve_path(tmp_path, "/sub%2Fb.mp3") == (tmp_path / "sub" / "b.mp3").resolve()
    for bad in ("/sub", "/", "a.mp3", "/sub/../a.mp3", "/./a.mp3"):
        assert resolve_path(tmp_path, bad) is None


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(1, 10_000))
def test_parse_range_stays_inside_the_file(first, last, size):
    try:
        wanted = parse_range(f"bytes={first}-{last}", size)
    except RangeNotSatisfiable:
        assert first >= size
        return
    if last < first:
        assert wanted is None
    else:
        assert wanted == (first, min(last, size - 1))


def test_parse_range_forms():
    assert parse_range(None, 100) is None
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=-1000", 100) == (0, 99)
    assert parse_range("bytes=50-", 100) == (50, 99)
    for ignored in ("items=0-1", "bytes=a-b", "bytes=", "bytes=5", "bytes=0-1,3-4", "bytes=-"):
        assert parse_range(ignored, 100) is None
    for unsatisfiable in ("bytes=100-", "bytes=-0"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(unsatisfiable, 100)


def test_content_types():
    assert content_type("x.m4b") == "audio/mp4" and content_type("x.opus") == "audio/ogg"
    assert content_type("feed.xml") == "application/rss+xml; charset=utf-8"
    assert content_type("x.m3u8") == "application/vnd.apple.mpegurl"
    assert content_type("x.bin") == "application/octet-stream"


class _FakeSocket:
    """Stands in for the UDP probe socket: records what was asked, sends nothing anywhere."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.connected_to = None

    def connect(self, target) -> None:
        if self.address is None:
            raise OSError("Network is unreachable")
        self.connected_to = target

    def getsockname(self):
        return (self.address, 54321)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("address, expected", [("192.168.1.23", "192.168.1.23"), (None, "127.0.0.1"),
                                               ("0.0.0.0", "127.0.0.1")])
def test_lan_address(monkeypatch, address, expected):
    probe = _FakeSocket(address)
    monkeypatch.setattr(serve.socket, "socket", lambda *args: probe)
    assert serve.lan_address() == expected


def test_qr_code_text():
    text = serve.qr_text("http://192.168.1.23:8000/feed.xml")
    lines = text.splitlines()
    assert len(lines) >= 15 and len({len(line) for line in lines}) == 1
    assert set(text) <= set("\u2588\u2580\u2584 \n")


def test_a_busy_port_is_a_user_error(folder):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(VoicecoachError, match="cannot listen on 127.0.0.1"):
            make_server(folder, host="127.0.0.1", port=busy.getsockname()[1], token=TOKEN)
    with pytest.raises(VoicecoachError, match="does not exist"):
        make_server(folder / "missing", host="127.0.0.1", port=0, token=TOKEN)


# --- only its owner gets in: the token ---------------------------------------------------------


def near_misses(token: str) -> list[str]:
    flipped = ("A" if token[0] != "A" else "B") + token[1:]
    last = token[:-1] + ("A" if token[-1] != "A" else "B")
    return [flipped, last, token[:-1], token + "x", token.lower(), token.upper(), token[1:]]


def test_requests_without_the_right_token_get_the_404_of_a_missing_file(base, root):
    missing_status, missing_headers, missing_body = fetch(base + "no-such-file.mp3")
    assert missing_status == 404
    wrong = [root + "feed.xml", root + TRACK, root, root + "x/feed.xml", root + "%s/feed.xml" % ("0" * 43)]
    wrong += [root + miss + "/" + name for miss in near_misses(TOKEN) for name in ("feed.xml", TRACK, "")]
    for url in wrong:
        status, headers, body = fetch(url)
        assert (status, body) == (missing_status, missing_body), url
        assert {k: v for k, v in headers.items() if k != "Date"} == {
            k: v for k, v in missing_headers.items() if k != "Date"}, url
    assert fetch(base + "feed.xml")[0] == 200 and fetch(base + TRACK)[0] == 200


def test_the_bare_token_redirects_to_its_page(root):
    host, port = address(root)
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", "/" + TOKEN)
        response = connection.getresponse()
        response.read()
        assert response.status == 301 and response.headers["Location"] == f"/{TOKEN}/"
    finally:
        connection.close()


def test_the_token_is_compared_in_constant_time(monkeypatch, folder):
    compared = []
    real = serve.hmac.compare_digest

    def spy(a, b):
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(serve.hmac, "compare_digest", spy)
    app = serve.FeedApp(folder, base_url="", token=TOKEN)
    assert app.below_token(f"/{TOKEN}/feed.xml") == "/feed.xml"
    assert app.below_token("/" + TOKEN[:5] + "/feed.xml") is None
    assert app.below_token("/feed.xml") is None
    assert compared == [(32, 32)] * 3  # digests: equal lengths whatever was guessed


def test_no_token_serves_everyone(folder):
    server = make_server(folder, host="127.0.0.1", port=0, token=None)
    thread = running(server)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", server.app.base_url)
        assert fetch(server.app.base_url + "feed.xml")[0] == 200
    finally:
        stop(server, thread)


def test_a_malformed_token_is_refused(folder):
    for bad in ("short", "has/slash" * 4, "x" * 200, ""):
        with pytest.raises(ValueError):
            make_server(folder, host="127.0.0.1", port=0, token=bad)


def test_the_token_is_made_once_kept_private_and_rotated(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECOACH_DATA_DIR", str(tmp_path / "data"))
    old_umask = os.umask(0o022)
    try:
        token = serve.serve_token()
    finally:
        os.umask(old_umask)
    kept = tmp_path / "data" / serve.TOKEN_FILE_NAME
    assert serve.token_path() == kept
    assert kept.read_text("ascii") == token + "\n"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 random bytes: 256 bits
    assert serve.serve_token() == token  # kept: subscriptions keep working
    rotated = serve.serve_token(new=True)
    assert rotated != token and kept.read_text("ascii") == rotated + "\n"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    kept.chmod(0o644)
    assert serve.serve_token() == rotated and stat.S_IMODE(kept.stat().st_mode) == 0o600
    kept.write_text("not a token\n")
    replaced = serve.serve_token()
    assert replaced not in (token, rotated) and re.fullmatch(r"[A-Za-z0-9_-]{43}", replaced)
    assert len({serve.serve_token(tmp_path / f"t{i}") for i in range(20)}) == 20


def test_an_unwritable_data_folder_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(VoicecoachError, match="cannot read the serve token .*VOICECOACH_DATA_DIR"):
        serve.serve_token(tmp_path / "file" / "serve-token")
    with pytest.raises(VoicecoachError, match="cannot write the serve token .*VOICECOACH_DATA_DIR"):
        serve.serve_token(tmp_path / "file" / "serve-token", new=True)


# --- bounded ---------------------------------------------------------------------------------


def send_raw(url: str, data: bytes) -> bytes:
    """Sends raw bytes; returns everything the server answers until it closes."""
    with socket.create_connection(address(url), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_oversized_request_lines_and_headers_are_refused(base):
    path = urllib.parse.urlsplit(base).path
    long_line = f"GET {path}{'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    assert status_of(send_raw(base, long_line)) == 414
    big_header = f"GET {path}feed.xml HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 20000}\r\n\r\n".encode()
    assert status_of(send_raw(base, big_header)) in (400, 431)
    many = "".join(f"X-H{i}: {'c' * 150}\r\n" for i in range(99))  # each small, together ~16 KB
    assert status_of(send_raw(base, f"GET {path}feed.xml HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())) in (400, 431)
    fine = "".join(f"X-H{i}: {'c' * 50}\r\n" for i in range(40))
    assert status_of(send_raw(base, f"GET {path}feed.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{fine}\r\n"
                                    .encode())) == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_only_get_and_head(base, method):
    status, headers, _ = fetch(base + "feed.xml", method=method)
    assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_security_headers(base, root):
    for url in (base, base + TRACK, base + "feed.xml", root + "feed.xml"):
        _, headers, _ = fetch(url)
        assert headers["X-Content-Type-Options"] == "nosniff", url
        assert headers["Referrer-Policy"] == "no-referrer", url
    _, headers, _ = fetch(base)
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "script" not in policy


class Trickler:
    """Slow clients (slowloris): each opens a connection and sends its request head one byte at
    a time, never finishing it."""

    def __init__(self, url: str, count: int, *, every_s: float) -> None:
        self.sockets = [socket.create_connection(address(url), timeout=10) for _ in range(count)]
        self.every_s = every_s
        self.closed_at: dict[int, float] = {}
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        head = b"GET /" + TOKEN.encode() + b"/feed.xml HTTP/1.1\r\nX-Slow: " + b"z" * 10_000
        for position in range(len(head)):
            for index, sock in enumerate(self.sockets):
                if index in self.closed_at:
                    continue
                try:
                    sock.sendall(head[position : position + 1])
                except OSError:
                    self.closed_at[index] = time.monotonic() - self.started
            if self._stop.wait(self.every_s) or len(self.closed_at) == len(self.sockets):
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for sock in self.sockets:
            sock.close()


def test_fifty_slow_clients_do_not_stop_a_download(base, folder):
    slow = Trickler(base, 50, every_s=0.2)
    try:
        time.sleep(0.5)  # every slow client holds its connection now
        started = time.monotonic()
        host, port = address(base)
        connection = http.client.HTTPConnection(host, port, timeout=2)
        connection.request("GET", urllib.parse.urlsplit(base).path + TRACK)
        response = connection.getresponse()
        body = response.read()
        took = time.monotonic() - started
        connection.close()
        assert response.status == 200 and body == (folder / TRACK).read_bytes()
        assert took < 2, f"the download took {took:.1f} s behind 50 slow clients"
    finally:
        slow.close()


def test_a_trickling_client_is_cut_off_at_the_head_deadline(monkeypatch, folder):
    monkeypatch.setattr(serve, "HEAD_TIMEOUT_S", 1.0)
    server = make_server(folder, host="127.0.0.1", port=0, token=TOKEN)
    thread = running(server)
    slow = Trickler(server.app.base_url, 3, every_s=0.1)  # each read is quick: only a deadline stops it
    try:
        with socket.create_connection(address(server.app.base_url), timeout=10) as idle:
            idle.settimeout(10)
            started = time.monotonic()
            assert idle.recv(1) == b""  # an idle connection is closed at the deadline too
            assert time.monotonic() - started < 5
        for _ in range(100):
            if len(slow.closed_at) == 3:
                break
            time.sleep(0.1)
        assert len(slow.closed_at) == 3 and max(slow.closed_at.values()) < 6, slow.closed_at
    finally:
        slow.close()
        stop(server, thread)


def test_connections_beyond_the_limit_are_answered_503(monkeypatch, folder):
    monkeypatch.setattr(serve, "MAX_CONNECTIONS", 3)
    server = make_server(folder, host="127.0.0.1", port=0, token=TOKEN)
    thread = running(server)
    held = [socket.create_connection(address(server.app.base_url), timeout=10) for _ in range(3)]
    try:
        time.sleep(0.3)  # accepted and waiting for their request heads
        path = urllib.parse.urlsplit(server.app.base_url).path
        answer = send_raw(server.app.base_url, f"GET {path}feed.xml HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert status_of(answer) == 503
        for sock in held:
            sock.close()
        time.sleep(0.3)  # their threads end and free their slots
        assert fetch(server.app.base_url + "feed.xml")[0] == 200
    finally:
        for sock in held:
            sock.close()
        stop(server, thread)


# --- the command ----------------------------------------------------------------------------


class Lines:
    """A process's stdout lines, each awaited with a timeout (a bare readline() could hang the suite)."""

    def __init__(self, stream) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put("")

    def next(self, timeout_s: float = 30) -> str:
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout_s} s") from None

    def rest(self) -> str:
        text = []
        while (line := self.next()) != "":
            text.append(line)
        return "".join(text)


def run_serve(folder: Path, data_dir: Path, *options: str) -> subprocess.Popen:
    env = {**os.environ, "VOICECOACH_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "voicecoach.cli", "serve", str(folder), "--host", "127.0.0.1", "--port", "0", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=default_signals,  # Ctrl-C must stop it even where this run ignores SIGINT (a background job)
    )


def stop_serve(process: subprocess.Popen, lines: Lines) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
        return lines.rest(), process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def start_serve(folder: Path, data_dir: Path, *options: str) -> tuple[subprocess.Popen, Lines, str]:
    """Starts `voicecoach serve`; returns it, its output lines after the first, and the base URL it printed."""
    process = run_serve(folder, data_dir, *options)
    lines = Lines(process.stdout)
    try:
        first = lines.next()
        served = re.fullmatch(rf"Serving {re.escape(str(folder))} at (http://127\.0\.0\.1:\d+/\S*)\n", first)
        assert served, first
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process, lines, served.group(1)


def test_serve_command_prints_the_tokened_feed_url_and_qr_and_stops_on_ctrl_c(folder, tmp_path):
    data = tmp_path / "data"
    process, lines, base_url = start_serve(folder, data)
    try:
        token = (data / serve.TOKEN_FILE_NAME).read_text("ascii").strip()
        assert base_url.endswith(f"/{token}/") and len(token) == 43
        url = lines.next().removeprefix("Podcast feed: ").strip()
        assert url == base_url + "feed.xml"
        qr = serve.qr_text(url).splitlines(keepends=True)
        assert [lines.next() for _ in qr] == qr  # the QR code is of the tokened URL
        assert lines.next() == "Ctrl-C stops.\n"
        status, _, body = fetch(url)
        assert status == 200 and b"<rss" in body and base_url.encode() + TRACK.encode() in body
        assert fetch(base_url.removesuffix(token + "/") + "feed.xml")[0] == 404
        out, err = stop_serve(process, lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0 and out.endswith("Stopped.\n") and "Traceback" not in err
    assert token not in err  # not even in a log line

    again, lines, kept_url = start_serve(folder, data, "--no-qr")
    stop_serve(again, lines)
    assert kept_url.endswith(f"/{token}/")  # the same token: subscriptions keep working

    rotated, lines, new_url = start_serve(folder, data, "--no-qr", "--new-token")
    try:
        new_token = (data / serve.TOKEN_FILE_NAME).read_text("ascii").strip()
        assert new_token != token and new_url.endswith(f"/{new_token}/")
        assert fetch(new_url + "feed.xml")[0] == 200
        assert fetch(new_url.replace(new_token, token) + "feed.xml")[0] == 404
    finally:
        stop_serve(rotated, lines)


def test_serve_no_token_warns(folder, tmp_path):
    process, lines, base_url = start_serve(folder, tmp_path / "data", "--no-qr", "--no-token")
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", base_url)
        assert fetch(base_url + "feed.xml")[0] == 200
    finally:
        _, err = stop_serve(process, lines)
    assert err.startswith("warning: --no-token: anyone on this network can list and download everything in ")
    assert not (tmp_path / "data").exists()  # no token made


def test_serve_new_token_and_no_token_contradict(folder, tmp_path):
    result = subprocess.run([sys.executable, "-m", "voicecoach.cli", "serve", str(folder), "--new-token", "--no-token"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "VOICECOACH_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2 and "contradict" in result.stderr and "Traceback" not in result.stderr
