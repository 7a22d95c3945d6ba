"""Serve an export folder and its podcast feed over HTTP, for phones on the same network.

Only regular files inside the folder are served (no path traversal, no symlinks out, no
hidden files such as the manifest); anything else is 404.  Audio supports HTTP range
requests (206 with ``Content-Range``, 416 when unsatisfiable) so players can seek.
``/feed.xml`` is built fresh for the address being served -- with the title of a feed
written earlier by ``voicecoach feed`` -- so subscribing works whatever base URL that feed
was written for.
"""

from __future__ import annotations

import email.utils
import html
import io
import ipaddress
import os
import socket
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import quote, unquote, urlsplit

from ..errors import VoicecoachError
from .feed import (CHAPTERS_TYPE, FEED_COVER_NAME, FEED_NAME, FeedSettings, build_feed, feed_cover_png,
                   read_feed_settings)
from ..formats import CONTENT_TYPES

CONTENT_TYPES_BY_SUFFIX = {
    **CONTENT_TYPES,
    ".xml": "application/rss+xml; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m3u": "audio/x-mpegurl",
    ".vtt": "text/vtt; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
"""Content types by file extension; anything else is ``application/octet-stream``."""

DEFAULT_PORT = 8000
"""Port served when none is given."""

_CHUNK_BYTES = 1 << 16
_PROBE_ADDRESS = ("10.255.255.255", 1)  # private and unrouted: only used to pick a route


def content_type(name: str) -> str:
    """The content type to send for a file name (chapters JSON has its own)."""
    if name.endswith(".chapters.json"):
        return CHAPTERS_TYPE
    return CONTENT_TYPES_BY_SUFFIX.get(Path(name).suffix.lower(), "application/octet-stream")


def lan_address() -> str:
    """This machine's address on the local network, or ``127.0.0.1`` if it has none.

    A UDP socket ``connect`` only asks the kernel which interface would route to a private
    address: no packet is sent.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(_PROBE_ADDRESS)
        address = probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return "127.0.0.1"
    return "127.0.0.1" if parsed.is_unspecified else address


def resolve_path(root: Path, url_path: str) -> Path | None:
    """The regular file inside ``root`` that a request path names, or None.

    Refused: ``..``, ``.`` and empty segments (also percent-encoded), hidden names,
    backslashes and NUL, and anything whose real path (symlinks resolved) is outside ``root``.
    """
    path = unquote(urlsplit(url_path).path, errors="strict")
    if not path.startswith("/") or "\\" in path or "\0" in path:
        return None
    segments = path.split("/")[1:]
    if any(s in ("", ".", "..") or s.startswith(".") for s in segments):
        return None  # also empty segments: "a//b" and "a/" name no file
    real_root = os.path.realpath(root)
    candidate = os.path.realpath(os.path.join(real_root, *segments))
    if os.path.commonpath([real_root, candidate]) != real_root or candidate == real_root:
        return None
    return Path(candidate) if os.path.isfile(candidate) else None


class RangeNotSatisfiable(Exception):
    """The client asked for bytes past the end."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` bytes (inclusive) of a single ``Range: bytes=...`` header, or None to
    send the whole file (no header, another unit, a malformed header, or several ranges).

    Raises :class:`RangeNotSatisfiable` when the range starts past the end.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # RFC 9110: a server may ignore a range it does not support
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    first_text, last_text = first_text.strip(), last_text.strip()
    if not (first_text.isdigit() or first_text == "") or not (last_text.isdigit() or last_text == ""):
        return None
    if first_text == "":  # suffix: the last N bytes
        if last_text == "":
            return None
        count = int(last_text)
        if count == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - count), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # invalid: ignored
    if first >= size:
        raise RangeNotSatisfiable
    return first, min(last, size - 1)


@dataclass(frozen=True)
class _Virtual:
    """A response made in memory (the feed, the index page, a missing cover)."""

    data: bytes
    content_type: str


class _Handler(BaseHTTPRequestHandler):
    server: "FolderServer"
    server_version = "voicecoach"
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle connection does not keep a thread forever

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._respond(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._respond(send_body=False)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        log = self.server.app.log
        if log is not None:
            log(f"{self.address_string()} {format % args}")

    def _respond(self, *, send_body: bool) -> None:
        app = self.server.app
        virtual = app.virtual(urlsplit(self.path).path)
        try:
            if virtual is not None:
                self._send(io.BytesIO(virtual.data), len(virtual.data), virtual.content_type, None, send_body)
                return
            path = resolve_path(app.root, self.path)
        except (UnicodeDecodeError, ValueError, VoicecoachError):
            path = None
        if path is None:
            self._error(HTTPStatus.NOT_FOUND, send_body)
            return
        try:
            handle = open(path, "rb")
        except OSError:
            self._error(HTTPStatus.NOT_FOUND, send_body)
            return
        with handle:
            info = os.fstat(handle.fileno())
            self._send(handle, info.st_size, content_type(path.name), info.st_mtime, send_body)

    def _send(self, handle, size: int, kind: str, mtime: float | None, send_body: bool) -> None:
        try:
            wanted = parse_range(self.headers.get("Range"), size)
        except RangeNotSatisfiable:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            return
        first, last = wanted if wanted is not None else (0, size - 1)
        length = max(0, last - first + 1)
        self.send_response(HTTPStatus.PARTIAL_CONTENT if wanted is not None else HTTPStatus.OK)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if wanted is not None:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        if mtime is not None:
            self.send_header("Last-Modified", email.utils.formatdate(mtime, usegmt=True))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if not send_body:
            return
        handle.seek(first)
        left = length
        try:
            while left > 0:
                block = handle.read(min(_CHUNK_BYTES, left))
                if not block:
                    break
                self.wfile.write(block)
                left -= len(block)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the player stopped reading (a seek): nothing to report

    def _error(self, status: HTTPStatus, send_body: bool) -> None:
        body = f"{status.value} {status.phrase}\n".encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)


class FolderServer(ThreadingHTTPServer):
    """The HTTP server; ``app`` holds the folder and what to serve from it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: "FeedApp") -> None:
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:  # no tracebacks on stderr
        if self.app.log is not None:
            self.app.log(f"{client_address[0]} connection error")


class FeedApp:
    """What the server serves: the folder's files plus the feed built for ``base_url``."""

    def __init__(self, root: Path, *, base_url: str, log: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.base_url = base_url
        self.log = log
        self._lock = threading.Lock()
        self._cover: bytes | None = None

    def feed_settings(self) -> FeedSettings:
        written = read_feed_settings(self.root / FEED_NAME)
        settings = written or FeedSettings(base_url=self.base_url)
        return FeedSettings(base_url=self.base_url, title=settings.title, description=settings.description,
                            author=settings.author)

    def virtual(self, path: str) -> _Virtual | None:
        """Responses made in memory: the feed for this address, the index, the show cover."""
        if path == "/" + FEED_NAME:
            try:
                data, _ = build_feed(self.root, settings=self.feed_settings())
            except VoicecoachError:
                return None  # nothing exported yet: a written feed.xml, if any, or 404
            return _Virtual(data, CONTENT_TYPES_BY_SUFFIX[".xml"])
        if path == "/":
            return _Virtual(self.index_html(), CONTENT_TYPES_BY_SUFFIX[".html"])
        if path == "/" + FEED_COVER_NAME and not (self.root / FEED_COVER_NAME).is_file():
            with self._lock:
                if self._cover is None:
                    self._cover = feed_cover_png(self.root, title=self.feed_settings().title)
            return _Virtual(self._cover, "image/png")
        return None

    def index_html(self) -> bytes:
        """A plain page for a phone's browser: the feed link and each routine's files."""
        from .library import read_manifest

        title = html.escape(self.feed_settings().title)
        rows = [f"<li><a href=\"/{FEED_NAME}\">Podcast feed</a> (subscribe in a podcast app)</li>"]
        for _, entry in sorted(read_manifest(self.root).items()):
            link = entry.playlist or (entry.tracks[0].file if entry.tracks else None)
            if link:
                rows.append(f"<li><a href=\"/{quote(link)}\">{html.escape(entry.title)}</a></li>")
        page = (f"<!doctype html><html><head><meta charset=\"utf-8\">"
                f"<meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head>"
                f"<body><h1>{title}</h1><ul>{''.join(rows)}</ul></body></html>\n")
        return page.encode("utf-8")


def make_server(
    folder: str | os.PathLike,
    *,
    host: str | None = None,
    port: int = DEFAULT_PORT,
    log: Callable[[str], None] | None = None,
) -> FolderServer:
    """A server for ``folder`` bound to ``host`` (default: the LAN address) and ``port`` (0: any).

    Call ``serve_forever()`` (blocks) and, from another thread, ``shutdown()``; then
    ``server_close()``.  ``server.app.base_url`` is the address to give the phone.
    """
    root = Path(folder)
    if not root.is_dir():
        raise VoicecoachError(f"folder {os.fspath(folder)!r} does not exist",
                              hint="give the folder you exported into with `voicecoach export -d`")
    bind = host or lan_address()
    app = FeedApp(root.resolve(), base_url="", log=log)
    try:
        server = FolderServer((bind, port), app)
    except OSError as error:
        raise VoicecoachError(f"cannot listen on {bind}:{port}: {error.strerror or error}",
                              hint="pick another --port, or --host 127.0.0.1") from None
    shown = lan_address() if bind in ("0.0.0.0", "") else bind
    if ":" in shown:
        shown = f"[{shown}]"
    app.base_url = f"http://{shown}:{server.server_address[1]}/"
    return server


def feed_url(server: FolderServer) -> str:
    return server.app.base_url + FEED_NAME


def qr_text(url: str) -> str:
    """A QR code of ``url`` for a terminal, in Unicode half blocks (scan it with a phone)."""
    import segno

    buffer = io.StringIO()
    segno.make(url, error="m").terminal(out=buffer, compact=True)
    return buffer.getvalue()


__all__ = [
    "CONTENT_TYPES_BY_SUFFIX",
    "DEFAULT_PORT",
    "FeedApp",
    "FolderServer",
    "RangeNotSatisfiable",
    "content_type",
    "feed_url",
    "lan_address",
    "make_server",
    "parse_range",
    "qr_text",
    "resolve_path",
]
