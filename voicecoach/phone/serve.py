"""Serve an export folder and its podcast feed over HTTP, for phones on the same network.

Only its owner gets in: every URL starts with a secret token (a capability URL,
``http://HOST:PORT/<token>/feed.xml``), 256 random bits kept in the user's data folder
(mode 0600) and reused, so a subscription keeps working; :func:`serve_token` makes, keeps and
rotates it.  A request without the right token gets the very 404 of a missing file (the token
is compared in constant time).  The server is bounded: request line and headers in size (414,
431), the whole request head in time (a slow client is cut off after
:data:`HEAD_TIMEOUT_S`, whatever it sends), the number of open connections (503 beyond), and
the methods (GET and HEAD; others 405).

Only regular files inside the folder are served (no path traversal, no symlinks out, no
hidden files such as the manifest); anything else is 404.  Audio supports HTTP range
requests (206 with ``Content-Range``, 416 when unsatisfiable) so players can seek.
``/feed.xml`` is built fresh for the address being served -- with the title of a feed
written earlier by ``voicecoach feed`` -- so subscribing works whatever base URL that feed
was written for.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import hmac
import html
import http.client
import io
import ipaddress
import os
import re
import secrets
import socket
import stat
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import quote, unquote, urlsplit

from ..errors import VoicecoachError
from ..files import atomic_write
from ..practice_log import ENV_VAR as DATA_DIR_ENV_VAR, default_data_dir
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

TOKEN_FILE_NAME = "serve-token"
"""The token's file in the user's data folder (the practice log's folder)."""

TOKEN_BYTES = 32
"""Random bytes in a new token: 256 bits, 43 URL-safe characters."""

MAX_REQUEST_LINE_BYTES = 8192
"""A longer request line is answered 414."""

MAX_HEADER_BYTES = 16384
"""All header lines together; more is answered 431."""

MAX_CONNECTIONS = 64
"""Connections served at once; one more is answered 503 and closed."""

HEAD_TIMEOUT_S = 10.0
"""Time for a whole request line and headers, counted from when the server waits for them:
a client that trickles bytes (slowloris) is cut off, and so is an idle kept-alive one."""

IDLE_TIMEOUT_S = 30.0
"""Longest wait for one send while answering (a player that stopped reading)."""

CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src 'self'; media-src 'self'; base-uri 'none'; "
                           "form-action 'none'; frame-ancestors 'none'")
"""For HTML pages: no scripts, no styles, nothing from elsewhere, no framing."""

_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{22,128}")  # base64url; 22 characters are 132 bits
_CHUNK_BYTES = 1 << 16
_BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n"
                  b"Retry-After: 5\r\nX-Content-Type-Options: nosniff\r\n\r\n")
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


def token_path() -> Path:
    """Where the serve token is kept: ``serve-token`` in the user's data folder."""
    return default_data_dir() / TOKEN_FILE_NAME


def serve_token(path: str | os.PathLike | None = None, *, new: bool = False) -> str:
    """The secret of the served URLs: the one kept in ``path`` (default :func:`token_path`), or a
    new one written there (mode 0600) when there is none, it is not a token, or ``new`` asks.

    A kept token whose file others could read is made private again (0600).
    """
    target = Path(path) if path is not None else token_path()
    where = f"the serve token {str(target)!r}"
    hint = f"check the folder's permissions or set ${DATA_DIR_ENV_VAR} to a writable folder"
    if not new:
        try:
            kept = target.read_bytes().decode("ascii").strip()
        except FileNotFoundError:
            kept = ""
        except UnicodeDecodeError:
            kept = ""  # not a token: replaced below
        except OSError as error:
            raise VoicecoachError(f"cannot read {where} ({error.strerror or error})", hint=hint) from None
        if _TOKEN_PATTERN.fullmatch(kept):
            try:
                if stat.S_IMODE(target.stat().st_mode) & 0o077:
                    os.chmod(target, 0o600)
            except OSError as error:
                raise VoicecoachError(f"cannot make {where} private ({error.strerror or error})",
                                      hint=hint) from None
            return kept
    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with atomic_write(target, mode=0o600) as handle:
            handle.write(token.encode("ascii") + b"\n")
    except OSError as error:
        raise VoicecoachError(f"cannot write {where} ({error.strerror or error})", hint=hint) from None
    return token


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


class _DeadlineReader(io.RawIOBase):
    """A connection's incoming bytes; while ``deadline`` (monotonic seconds) is set, no read waits
    past it, however the bytes trickle in -- a per-read timeout alone lets a slowloris client
    hold its connection for ever, one byte at a time."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.deadline is None:
            self._connection.settimeout(IDLE_TIMEOUT_S)
        else:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("request head not received in time")
            self._connection.settimeout(left)
        return self._connection.recv_into(buffer)


class _BudgetReader:
    """Reads lines while ``left`` bytes last; past it, :class:`http.client.LineTooLong`
    (``http.server`` answers that with 431 while it reads headers)."""

    def __init__(self, raw: io.BufferedReader) -> None:
        self._raw = raw
        self.left = 0

    def readline(self, limit: int = -1) -> bytes:
        wanted = self.left + 1 if limit < 0 else min(limit, self.left + 1)
        line = self._raw.readline(wanted)
        self.left -= len(line)
        if self.left < 0:
            raise http.client.LineTooLong("request head")
        return line

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def close(self) -> None:
        self._raw.close()


@dataclass(frozen=True)
class _Virtual:
    """A response made in memory (the feed, the index page, a missing cover)."""

    data: bytes
    content_type: str


class _Handler(BaseHTTPRequestHandler):
    server: "FolderServer"
    server_version = "voicecoach"
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket file made by setup: unused, and it would keep the socket open
        self._reader = _DeadlineReader(self.connection)
        self.rfile = _BudgetReader(io.BufferedReader(self._reader))

    def handle_one_request(self) -> None:
        """``http.server``'s, with the bounds: head size and time, methods."""
        self._reader.deadline = time.monotonic() + HEAD_TIMEOUT_S
        try:
            self.rfile.left = MAX_REQUEST_LINE_BYTES + 2  # and its CRLF
            try:
                self.raw_requestline = self.rfile.readline()
            except http.client.LineTooLong:
                self.requestline, self.request_version, self.command = "", "", ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            self.rfile.left = MAX_HEADER_BYTES
            if not self.parse_request():
                return  # parse_request answered (400, 431, ...)
            self._reader.deadline = None
            self.connection.settimeout(IDLE_TIMEOUT_S)
            if self.command not in ("GET", "HEAD"):
                self.close_connection = True  # a body, if any, stays unread
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, True, {"Allow": "GET, HEAD"})
            else:
                self._respond(send_body=self.command == "GET")
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True  # too slow: drop it without a word

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")  # the token stays out of other sites' logs
        super().end_headers()

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        app = self.server.app
        if app.log is not None:
            line = f"{self.address_string()} {format % args}"
            app.log(line.replace(app.token, "<token>") if app.token else line)

    def _respond(self, *, send_body: bool) -> None:
        app = self.server.app
        target = app.below_token(self.path)
        if target is None:
            self._error(HTTPStatus.NOT_FOUND, send_body)  # exactly what a missing file gets
            return
        if target == "":  # "/<token>": the page is "/<token>/" (its links are relative)
            self._error(HTTPStatus.MOVED_PERMANENTLY, send_body, {"Location": self.path + "/"})
            return
        try:
            virtual = app.virtual(urlsplit(target).path)
            if virtual is not None:
                self._send(io.BytesIO(virtual.data), len(virtual.data), virtual.content_type, None, send_body)
                return
            path = resolve_path(app.root, target)
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
        if kind.startswith("text/html"):
            self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
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

    def _error(self, status: HTTPStatus, send_body: bool, headers: dict[str, str] | None = None) -> None:
        body = f"{status.value} {status.phrase}\n".encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)


class FolderServer(ThreadingHTTPServer):
    """The HTTP server; ``app`` holds the folder and what to serve from it."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's 5 drops the connections of a burst: 1 s stalls

    def __init__(self, address: tuple[str, int], app: "FeedApp") -> None:
        self.app = app
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._holding: set[socket.socket] = set()  # requests that hold a slot
        self._holding_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):  # full: say so at once rather than queue
            with contextlib.suppress(OSError):
                request.setblocking(False)  # a few bytes into a fresh socket's buffer: never waits
                request.send(_BUSY_RESPONSE)
            self.shutdown_request(request)
            return
        with self._holding_lock:
            self._holding.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:  # e.g. Ctrl-C while the thread starts: it may have started or not
            self._release(request)
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(request)

    def _release(self, request) -> None:
        """Gives back the request's slot, once, whoever gets here first."""
        with self._holding_lock:
            if request not in self._holding:
                return
            self._holding.discard(request)
        self._slots.release()

    def handle_error(self, request, client_address) -> None:  # no tracebacks on stderr
        if self.app.log is not None:
            self.app.log(f"{client_address[0]} connection error")


class FeedApp:
    """What the server serves: the folder's files plus the feed built for ``base_url``, all below
    ``/<token>/`` (``token`` None: below ``/``, for anyone)."""

    def __init__(self, root: Path, *, base_url: str, token: str | None,
                 log: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.base_url = base_url
        self.token = token
        self.log = log
        self._token_digest = None if token is None else hashlib.sha256(token.encode("utf-8")).digest()
        self._lock = threading.Lock()
        self._cover: bytes | None = None

    def below_token(self, target: str) -> str | None:
        """The request target below the token (``/feed.xml``), ``""`` for the bare ``/<token>``,
        or None when the token is missing or wrong.

        Digests of the same length are compared in constant time: the response time tells
        nothing about how much of a guess was right (not even its length).
        """
        if self._token_digest is None:
            return target
        if not target.startswith("/"):
            return None
        given, slash, rest = target[1:].partition("/")
        digest = hashlib.sha256(given.encode("latin-1", "replace")).digest()
        if not hmac.compare_digest(digest, self._token_digest):
            return None
        return "/" + rest if slash else ""

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
        # Relative links: the page is served below the token.
        rows = [f"<li><a href=\"{FEED_NAME}\">Podcast feed</a> (subscribe in a podcast app)</li>"]
        for _, entry in sorted(read_manifest(self.root).items()):
            link = entry.playlist or (entry.tracks[0].file if entry.tracks else None)
            if link:
                rows.append(f"<li><a href=\"{quote(link)}\">{html.escape(entry.title)}</a></li>")
        page = (f"<!doctype html><html><head><meta charset=\"utf-8\">"
                f"<meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head>"
                f"<body><h1>{title}</h1><ul>{''.join(rows)}</ul></body></html>\n")
        return page.encode("utf-8")


def make_server(
    folder: str | os.PathLike,
    *,
    host: str | None = None,
    port: int = DEFAULT_PORT,
    token: str | None,
    log: Callable[[str], None] | None = None,
) -> FolderServer:
    """A server for ``folder`` bound to ``host`` (default: the LAN address) and ``port`` (0: any),
    serving below ``/<token>/`` (see :func:`serve_token`; None serves to anyone: say so).

    Call ``serve_forever()`` (blocks) and, from another thread, ``shutdown()``; then
    ``server_close()``.  ``server.app.base_url`` is the address to give the phone.
    """
    root = Path(folder)
    if not root.is_dir():
        raise VoicecoachError(f"folder {os.fspath(folder)!r} does not exist",
                              hint="give the folder you exported into with `voicecoach export -d`")
    bind = host or lan_address()
    if token is not None and not _TOKEN_PATTERN.fullmatch(token):
        raise ValueError("a serve token is 22 to 128 URL-safe base64 characters (see serve_token)")
    app = FeedApp(root.resolve(), base_url="", token=token, log=log)
    try:
        server = FolderServer((bind, port), app)
    except OSError as error:
        raise VoicecoachError(f"cannot listen on {bind}:{port}: {error.strerror or error}",
                              hint="pick another --port, or --host 127.0.0.1") from None
    shown = lan_address() if bind in ("0.0.0.0", "") else bind
    if ":" in shown:
        shown = f"[{shown}]"
    prefix = f"{token}/" if token is not None else ""
    app.base_url = f"http://{shown}:{server.server_address[1]}/{prefix}"
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
    "CONTENT_SECURITY_POLICY",
    "CONTENT_TYPES_BY_SUFFIX",
    "DEFAULT_PORT",
    "HEAD_TIMEOUT_S",
    "MAX_CONNECTIONS",
    "MAX_HEADER_BYTES",
    "MAX_REQUEST_LINE_BYTES",
    "TOKEN_FILE_NAME",
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
    "serve_token",
    "token_path",
]
