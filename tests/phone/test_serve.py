"""serve.py and `voicecoach serve`: a real HTTP server on 127.0.0.1 (port 0), a real client."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
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


@pytest.fixture(scope="module")
def base(folder):
    server = make_server(folder, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.app.base_url
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def fetch(url: str, headers: dict | None = None, method: str = "GET"):
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def raw_get(base: str, path: str) -> int:
    """A request with the path exactly as written (urllib would not send some of these)."""
    host, port = base.removeprefix("http://").rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_base_url_is_the_loopback_address_served(base):
    assert base.startswith("http://127.0.0.1:") and base.endswith("/") and not base.endswith(":0/")


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


def test_index_page_lists_the_feed_and_routines(base):
    status, headers, body = fetch(base)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'href="/feed.xml"' in body and f'href="/{TRACK}"'.encode() in body


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
            make_server(folder, host="127.0.0.1", port=busy.getsockname()[1])
    with pytest.raises(VoicecoachError, match="does not exist"):
        make_server(folder / "missing", host="127.0.0.1", port=0)


def test_serve_command_prints_the_feed_url_and_stops_on_ctrl_c(folder):
    process = subprocess.Popen(
        [sys.executable, "-m", "voicecoach.cli", "serve", str(folder), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout.readline().startswith(f"Serving {folder} at http://127.0.0.1:")
        url = process.stdout.readline().removeprefix("Podcast feed: ").strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/feed.xml")
        qr = [process.stdout.readline() for _ in range(5)]
        assert all("\u2588" in line for line in qr)
        status, _, body = fetch(url)
        assert status == 200 and b"<rss" in body
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0 and out.endswith("Stopped.\n") and "Traceback" not in err
