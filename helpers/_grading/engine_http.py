"""The engine guard's HTTP/1.1, strict and bounded: requests from a graded notebook are read
whole and refused in any shape two parsers could read differently; the engine's responses are
relayed as they stream. Everything here works on a ``Reader`` (a buffer over any ``recv``), so
it is tested without sockets.

The guard never forwards the client's bytes: it forwards a request it builds itself
(``render_request``), so the engine reads exactly what the guard checked.
"""

from __future__ import annotations

import http
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_LINE = 8192  # a request line or one header line
MAX_HEADERS = 64
MAX_HEAD = 65536  # the whole request head
MAX_CHUNK_LINE = 1024
MAX_TRAILERS = 16
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE")

TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Printable ASCII (and tab) only: no control characters, nothing a parser could fold or split.
FIELD_VALUE = re.compile(r"^[\t\x20-\x7e]*$")
TARGET = re.compile(r"^/[\x21-\x7e]*$")
HEX = re.compile(r"^[0-9A-Fa-f]{1,15}$")


class Malformed(Exception):
    """A request the guard cannot read unambiguously: answered with ``status``, then closed."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Reader:
    """A read buffer over ``recv``: lines with a length bound, exact reads, and what is left
    buffered (handed over as is when a connection becomes a raw stream)."""

    def __init__(self, recv: Callable[[int], bytes]) -> None:
        self._recv = recv
        self._buffer = bytearray()
        self.closed = False

    def _fill(self) -> bool:
        if self.closed:
            return False
        data = self._recv(65536)
        if not data:
            self.closed = True
            return False
        self._buffer += data
        return True

    def line(self, limit: int) -> bytes | None:
        """One line with its CRLF, or None at a clean end of stream. Raises Malformed beyond
        ``limit`` bytes, on a bare LF, or on a stream that ends mid-line."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                if end + 1 > limit:
                    raise Malformed(f"a line longer than {limit} bytes", 431)
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
                    raise Malformed("lines end in CRLF, with no bare CR or LF")
                return line
            if len(self._buffer) > limit:
                raise Malformed(f"a line longer than {limit} bytes", 431)
            if not self._fill():
                if self._buffer:
                    raise Malformed("the stream ended in the middle of a line")
                return None

    def exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise Malformed("the stream ended in the middle of a body")
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def some(self, most: int) -> bytes:
        """Up to ``most`` bytes: what is buffered, else one receive; b"" at the end."""
        if not self._buffer and not self._fill():
            return b""
        data = bytes(self._buffer[:most])
        del self._buffer[:most]
        return data

    def buffered(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


@dataclass
class Head:
    """A request or response head. ``headers`` keeps every field, names lower-cased."""

    start: tuple[str, str, str]  # method, target, version; or version, status, reason
    headers: list[tuple[str, str]] = field(default_factory=list)

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def get(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def tokens(self, name: str) -> set[str]:
        """The comma-separated tokens of every ``name`` field, lower-cased."""
        return {t.strip().lower() for v in self.all(name) for t in v.split(",") if t.strip()}


def _read_fields(reader: Reader, used: int) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    while True:
        raw = reader.line(MAX_LINE)
        if raw is None:
            raise Malformed("the stream ended in the middle of a head")
        used += len(raw)
        if used > MAX_HEAD:
            raise Malformed(f"a head larger than {MAX_HEAD} bytes", 431)
        line = raw[:-2].decode("latin-1")
        if not line:
            return headers
        if line[0] in " \t":
            raise Malformed("folded header lines (obsolete line folding) are refused")
        name, colon, value = line.partition(":")
        if not colon or not TOKEN.match(name):
            raise Malformed(f"a malformed header line: {line[:80]!r}")
        value = value.strip(" \t")
        if not FIELD_VALUE.match(value):
            raise Malformed(f"header {name}: control or non-ASCII characters are refused")
        headers.append((name.lower(), value))
        if len(headers) > MAX_HEADERS:
            raise Malformed(f"more than {MAX_HEADERS} header fields", 431)


def read_request_head(reader: Reader) -> Head | None:
    """The next request's head, or None when the client closed the connection between requests."""
    raw = reader.line(MAX_LINE)
    if raw is None:
        return None
    parts = raw[:-2].decode("latin-1").split(" ")
    if len(parts) != 3:
        raise Malformed("a request line is METHOD SP target SP HTTP/1.1")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise Malformed(f"HTTP version {version[:20]!r}: only HTTP/1.1 (or 1.0)", 505)
    if method not in METHODS:
        raise Malformed(f"method {method[:20]!r}: only {', '.join(METHODS)}", 405)
    if not TARGET.match(target):
        raise Malformed(
            "the request target must be a path (origin-form, starting with /), printable "
            "ASCII: not an absolute URL, an authority or *"
        )
    return Head((method, target, version), _read_fields(reader, len(raw)))


@dataclass(frozen=True)
class Framing:
    """How a message's body is delimited: ``length`` bytes, ``chunked``, or ``close``."""

    kind: str  # "none", "length", "chunked", "close"
    length: int = 0


def request_framing(head: Head) -> Framing:
    """The body framing of a request, refusing every shape two parsers may read differently."""
    lengths = head.all("content-length")
    encodings = head.all("transfer-encoding")
    if lengths and encodings:
        raise Malformed("both Content-Length and Transfer-Encoding: request smuggling shape")
    if len(lengths) > 1:
        raise Malformed("several Content-Length fields")
    if len(encodings) > 1:
        raise Malformed("several Transfer-Encoding fields")
    if encodings:
        if encodings[0].lower() != "chunked":
            raise Malformed(f"Transfer-Encoding {encodings[0][:40]!r}: only chunked", 501)
        return Framing("chunked")
    if lengths:
        if not lengths[0].isdigit() or len(lengths[0]) > 15:
            raise Malformed(f"Content-Length {lengths[0][:20]!r} is not a plain number")
        length = int(lengths[0])
        return Framing("length", length) if length else Framing("none")
    return Framing("none")


def read_body(reader: Reader, framing: Framing, limit: int, what: str) -> bytes:
    """The whole body, de-chunked; Malformed (413) beyond ``limit`` bytes."""
    too_large = Malformed(f"{what} larger than {limit} bytes", 413)
    if framing.kind == "length":
        if framing.length > limit:
            raise too_large
        return reader.exactly(framing.length)
    if framing.kind == "close":
        data = bytearray()
        while chunk := reader.some(65536):
            data += chunk
            if len(data) > limit:
                raise too_large
        return bytes(data)
    if framing.kind != "chunked":
        return b""
    chunks: list[bytes] = []
    size_so_far = 0
    while True:
        line = reader.line(MAX_CHUNK_LINE)
        if line is None:
            raise Malformed("the stream ended in the middle of a chunked body")
        size_text = line[:-2].split(b";", 1)[0].decode("latin-1")
        if not HEX.match(size_text):
            raise Malformed(f"a malformed chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        size_so_far += size
        if size_so_far > limit:
            raise too_large
        chunks.append(reader.exactly(size))
        if reader.exactly(2) != b"\r\n":
            raise Malformed("a chunk must end in CRLF")
    for _ in range(MAX_TRAILERS + 1):  # trailers are read and dropped
        trailer = reader.line(MAX_LINE)
        if trailer is None:
            raise Malformed("the stream ended in the trailers of a chunked body")
        if trailer == b"\r\n":
            return b"".join(chunks)
    raise Malformed("too many trailer fields")


def render_request(method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """A request head of the guard's own, with the body's Content-Length, then the body."""
    lines = [f"{method} {target} HTTP/1.1", "Host: docker", *(f"{k}: {v}" for k, v in headers)]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --- responses, from the engine --------------------------------------------------------------

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
}


def read_response_head(reader: Reader) -> Head:
    raw = reader.line(MAX_LINE)
    if raw is None:
        raise Malformed("the engine closed the connection without answering", 502)
    parts = raw[:-2].decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise Malformed("the engine's answer is not HTTP/1.x", 502)
    return Head((parts[0], parts[1], parts[2] if len(parts) > 2 else ""), _read_fields(reader, 0))


def response_framing(method: str, head: Head) -> Framing:
    status = int(head.start[1])
    if method == "HEAD" or status < 200 or status in (204, 304):
        return Framing("none")
    if "chunked" in head.tokens("transfer-encoding"):
        return Framing("chunked")
    length = head.get("content-length")
    if length is not None and length.isdigit():
        return Framing("length", int(length))
    return Framing("close")


def render_response_head(head: Head, framing: Framing, keep_alive: bool) -> bytes:
    """The engine's status and fields, framed by the guard (hop-by-hop fields are its own)."""
    _, status, reason = head.start
    lines = [f"HTTP/1.1 {status} {reason}".rstrip()]
    lines += [f"{k.title()}: {v}" for k, v in head.headers if k not in HOP_BY_HOP]
    if framing.kind == "length":
        lines.append(f"Content-Length: {framing.length}")
    elif framing.kind == "chunked":
        lines.append("Transfer-Encoding: chunked")
    lines.append("Connection: " + ("keep-alive" if keep_alive else "close"))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def render_raw_head(head: Head) -> bytes:
    """The head of a hijacked stream (101, or Docker's raw 200), relayed unchanged."""
    version, status, reason = head.start
    lines = [f"{version} {status} {reason}".rstrip()]
    lines += [f"{k.title()}: {v}" for k, v in head.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def relay_body(reader: Reader, send: Callable[[bytes], object], framing: Framing) -> None:
    """Copy a response body as it arrives (logs that follow, events, build output stream)."""
    if framing.kind == "length":
        left = framing.length
        while left:
            data = reader.some(min(left, 65536))
            if not data:
                raise Malformed("the engine's answer ended early", 502)
            send(data)
            left -= len(data)
    elif framing.kind == "close":
        while data := reader.some(65536):
            send(data)
    elif framing.kind == "chunked":
        _relay_chunks(reader, send)


def _relay_chunks(reader: Reader, send: Callable[[bytes], object]) -> None:
    while True:
        line = reader.line(MAX_CHUNK_LINE)
        size_text = (line or b"")[:-2].split(b";", 1)[0].decode("latin-1")
        if not HEX.match(size_text):
            raise Malformed("the engine sent a malformed chunk", 502)
        left = int(size_text, 16)
        if left == 0:
            while reader.line(MAX_LINE) not in (b"\r\n", None):
                pass  # trailers
            send(b"0\r\n\r\n")
            return
        while left:  # a chunk is relayed in pieces as they come
            data = reader.some(min(left, 65536))
            if not data:
                raise Malformed("the engine's answer ended early", 502)
            send(b"%x\r\n%s\r\n" % (len(data), data))
            left -= len(data)
        if reader.exactly(2) != b"\r\n":
            raise Malformed("the engine sent a malformed chunk", 502)


def error_response(status: int, message: str) -> bytes:
    """A Docker-style error: JSON with a message, then the connection closes."""
    body = json.dumps({"message": message}).encode()
    phrase = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else ""
    head = (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body
