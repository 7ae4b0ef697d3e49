"""The engine guard's routes: which calls of Docker's API there are for a graded notebook (a
method and a path shape after the optional /vX.Y), with which query parameters and values, and
how a target is read (``split_target``) and re-encoded (``Call.target``) so the engine reads the
path and query the guard checked."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .engine_http import Malformed
from .engine_schema import Refused

MIN_API = (1, 24)  # older versions took a HostConfig in the body of start
MAX_JSON_BODY = 1 << 20
MAX_BUILD_CONTEXT = 64 << 20

# A query parameter's check: (value, where) -> canonical value, or raise Refused.
Param = Callable[[str, str], str]

SEGMENT = re.compile(r"[A-Za-z0-9_.:@+=,~-]+")
PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
VERSION = re.compile(r"v([0-9]{1,3})\.([0-9]{1,3})")


@dataclass(frozen=True)
class Forward:
    """The request the guard sends to the engine for one allowed call."""

    method: str
    target: str
    body: bytes = b""
    content_type: str | None = None
    hijack: bool = False  # attach, exec start: may become a raw two-way stream
    upgrade: bool = False  # ask the engine to upgrade (the client asked, on a hijack endpoint)
    started: str | None = None  # a container (re)started: report its ports after a 2xx


# --- query parameters -----------------------------------------------------------------------


def flag(value: str, where: str) -> str:
    """Docker's boolean: false for 0, no, false, none (any case), true otherwise; empty stays
    empty (a few calls read an empty value as their default, build's rm as true)."""
    if not value.strip():
        return ""
    return "0" if value.strip().lower() in ("0", "no", "false", "none") else "1"


def false_flag(why: str) -> Param:
    def check(value: str, where: str) -> str:
        if flag(value, where) == "1":
            raise Refused(f"{where}={value!r}: {why}; allowed: false")
        return "0"

    return check


def number(low: int, high: int) -> Param:
    def check(value: str, where: str) -> str:
        if not re.fullmatch(r"-?[0-9]{1,19}", value) or not low <= int(value) <= high:
            raise Refused(f"{where}={value[:40]!r}: allowed: a whole number from {low} to {high}")
        return str(int(value))

    return check


def pattern(regex: str, what: str) -> Param:
    compiled = re.compile(regex)

    def check(value: str, where: str) -> str:
        if not compiled.fullmatch(value):
            raise Refused(f"{where}={value[:80]!r}: allowed: {what}")
        return value

    return check


def choice(why: str, *values: str) -> Param:
    def check(value: str, where: str) -> str:
        if value not in values:
            shown = ", ".join(repr(v) for v in values)
            raise Refused(f"{where}={value[:40]!r}: {why}; allowed: {shown}")
        return value

    return check


def raw(value: str, where: str) -> str:
    """A value checked by the handler (JSON, names that must carry the prefix)."""
    if "\x00" in value or len(value) > 65536:
        raise Refused(f"{where}: a NUL character or more than 64 KiB")
    return value


TIME = pattern(r"[0-9A-Za-z.:+-]{0,40}", "a timestamp such as 1700000000 or 10m")
SIGNAL = pattern(r"[A-Z0-9+]{0,16}", "a signal such as SIGKILL or 9")
SIZE = number(0, 10000)
KEYS = pattern(r"[a-z0-9,-]{0,64}", "a key sequence such as ctrl-p,ctrl-q")
PLATFORM = pattern(r"[a-z0-9_./-]{0,64}", "a platform such as linux/amd64")
LOG_QUERY: dict[str, Param] = {
    "follow": flag,
    "stdout": flag,
    "stderr": flag,
    "since": TIME,
    "until": TIME,
    "timestamps": flag,
    "tail": pattern(r"all|[0-9]{1,9}", "all, or a number of lines"),
    "details": flag,
}
BUILD_QUERY: dict[str, Param] = {
    "t": raw,
    "dockerfile": pattern(r"(?!.*\.\.)[A-Za-z0-9_./-]{1,255}", "a path inside the context"),
    "q": flag,
    "nocache": flag,
    "rm": flag,
    "forcerm": flag,
    "pull": false_flag("building pulls nothing: the course's images are on the engine"),
    "memory": number(0, 2**62),
    "memswap": number(-1, 2**62),
    "cpushares": number(0, 262144),
    "cpusetcpus": pattern(r"[0-9,-]{0,64}", "a CPU list such as 0-1"),
    "cpuperiod": number(0, 1_000_000),
    "cpuquota": number(-1, 2**62),
    "shmsize": number(0, 2**62),
    "buildargs": raw,
    "labels": raw,
    "networkmode": choice(
        "a build step may use the default bridge network or none", "", "default", "bridge", "none"
    ),
    "platform": PLATFORM,
    "target": pattern(r"[A-Za-z0-9_.-]{0,64}", "a build stage's name"),
    "version": choice("version 2 is BuildKit, whose sessions the guard does not relay", "1"),
}
# Why a parameter is refused, where that says more than the list of those allowed.
QUERY_REASONS = {
    "remote": "a build context fetched by the engine from a URL or git repository",
    "extrahosts": "extra /etc/hosts entries (host-gateway names the host)",
    "cgroupparent": "a cgroup of the host's choosing",
    "outputs": "build outputs written outside the engine's images",
    "session": "BuildKit sessions reach the client's files",
    "buildid": "BuildKit builds",
    "isolation": "Windows isolation",
    "ulimits": "limits the course never sets",
    "squash": "an experimental builder option",
    "cachefrom": "caches from images the course never names",
    "link": "removing a link into another container",
    "checkpoint": "checkpoints are files on the host",
    "checkpoint-dir": "checkpoints are files on the host",
}


# --- routes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One endpoint: a method and a path shape (after /vX.Y). ``{id}`` is one segment,
    ``{name}`` one or more (an image name such as course/web:v1)."""

    method: str
    shape: tuple[str, ...]
    handler: str
    query: Mapping[str, Param] = field(default_factory=dict)
    body: str = "none"  # none, json or tar
    multi: frozenset[str] = frozenset()  # parameters that may be given more than once

    def match(self, segments: tuple[str, ...]) -> dict[str, str] | None:
        shape = self.shape
        if "{name}" in shape:
            at = shape.index("{name}")
            head, tail = shape[:at], shape[at + 1 :]
            if len(segments) < len(head) + len(tail) + 1:
                return None
            middle = segments[len(head) : len(segments) - len(tail)]
            ends = segments[: len(head)] + segments[len(segments) - len(tail) :]
            found = Route(self.method, head + tail, self.handler).match(ends)
            return None if found is None else {**found, "name": "/".join(middle)}
        if len(shape) != len(segments):
            return None
        found = {}
        for want, segment in zip(shape, segments, strict=True):
            if want.startswith("{"):
                found[want[1:-1]] = segment
            elif want != segment:
                return None
        return found


def _on_container(method: str, action: str, handler: str, **query: Param) -> Route:
    return Route(method, ("containers", "{id}", action), handler, query)


ROUTES: tuple[Route, ...] = (
    Route("GET", ("_ping",), "plain"),
    Route("HEAD", ("_ping",), "plain"),
    Route("GET", ("version",), "plain"),
    Route("GET", ("info",), "plain"),
    Route(
        "GET",
        ("containers", "json"),
        "list_containers",
        {
            "all": flag,
            "limit": number(-1, 10000),
            "size": flag,
            "filters": raw,
            "trunc_cmd": flag,  # docker-py sends it; the engine ignores it
            "since": pattern(r"[A-Za-z0-9_.-]{0,128}", "a container's id or name"),
            "before": pattern(r"[A-Za-z0-9_.-]{0,128}", "a container's id or name"),
        },
    ),
    Route("POST", ("containers", "create"), "create", {"name": raw, "platform": PLATFORM}, "json"),
    _on_container("GET", "json", "container", size=flag),
    Route("GET", ("containers", "{id}", "logs"), "container", LOG_QUERY),
    _on_container(
        "GET", "top", "container", ps_args=choice("ps runs on the host", "", "-ef", "aux")
    ),
    Route("GET", ("containers", "{id}", "stats"), "container", {"stream": flag, "one-shot": flag}),
    _on_container("GET", "changes", "container"),
    _on_container("GET", "archive", "container", path=raw),
    _on_container("HEAD", "archive", "container", path=raw),
    _on_container("POST", "start", "start", detachKeys=KEYS),
    _on_container("POST", "stop", "container", t=number(-1, 3600), signal=SIGNAL),
    _on_container("POST", "restart", "start", t=number(-1, 3600), signal=SIGNAL),
    _on_container("POST", "kill", "container", signal=SIGNAL),
    _on_container(
        "POST",
        "wait",
        "container",
        condition=choice("not a wait condition", "not-running", "next-exit", "removed"),
    ),
    _on_container("POST", "pause", "container"),
    _on_container("POST", "unpause", "container"),
    _on_container("POST", "resize", "container", h=SIZE, w=SIZE),
    Route(
        "POST",
        ("containers", "{id}", "attach"),
        "attach",
        {
            "stream": flag,
            "logs": flag,
            "stdin": flag,
            "stdout": flag,
            "stderr": flag,
            "detachKeys": KEYS,
        },
    ),
    Route("POST", ("containers", "{id}", "exec"), "exec_create", body="json"),
    _on_container("POST", "rename", "rename", name=raw),
    Route(
        "DELETE",
        ("containers", "{id}"),
        "container",
        {"force": flag, "v": flag, "link": false_flag("it removes a link into another container")},
    ),
    Route("POST", ("exec", "{id}", "start"), "exec_start", body="json"),
    Route("POST", ("exec", "{id}", "resize"), "exec", {"h": SIZE, "w": SIZE}),
    Route("GET", ("exec", "{id}", "json"), "exec"),
    Route(
        "GET",
        ("images", "json"),
        "plain",
        {
            "all": flag,
            "filters": raw,
            "digests": flag,
            "shared-size": flag,
            "filter": raw,
            "only_ids": flag,  # docker-py sends it; the engine ignores it
        },
    ),
    Route("GET", ("images", "{name}", "json"), "plain"),
    Route("GET", ("images", "{name}", "history"), "plain"),
    Route(
        "POST",
        ("images", "{name}", "tag"),
        "tag",
        {"repo": raw, "tag": raw, "force": flag},  # force: docker-py sends it; it is dropped
    ),
    Route("DELETE", ("images", "{name}"), "remove_image", {"force": flag, "noprune": flag}),
    Route("POST", ("build",), "build", BUILD_QUERY, "tar", frozenset({"t"})),
    Route("GET", ("events",), "events", {"since": TIME, "until": TIME, "filters": raw}),
)

ALLOWED_CALLS = (
    "containers (create, list, inspect, start, stop, restart, kill, wait, pause, logs, top, "
    "stats, changes, copy out, attach, resize, exec, rename, remove), exec (start, inspect, "
    "resize), images (list, inspect, history, build, tag, remove), events, version, info, _ping"
)


@dataclass(frozen=True)
class Call:
    """A routed request: what the path and query say, before the body is read."""

    method: str
    version: str  # "/v1.41", or "" when the client gave none
    segments: tuple[str, ...]
    params: dict[str, str]  # the route's {id} / {name}
    query: list[tuple[str, str]]  # canonical, in the route's order
    route: Route
    upgrade: bool

    @property
    def body_limit(self) -> int:
        return {"json": MAX_JSON_BODY, "tar": MAX_BUILD_CONTEXT}.get(self.route.body, 0)

    @property
    def what(self) -> str:
        return f"{self.method} /{'/'.join(self.segments)}"

    def one(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    def target(self, segments: tuple[str, ...] | None = None, query: Any = None) -> str:
        """The target to forward: this call's version, path and query, re-encoded."""
        path = "/".join(urllib.parse.quote(s, safe=":@") for s in segments or self.segments)
        pairs = self.query if query is None else query
        encoded = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
        return f"{self.version}/{path}" + (f"?{encoded}" if encoded else "")


def _segment(raw: str) -> str:
    if PERCENT.search(raw):
        raise Malformed(f"a bad percent-escape in the path segment {raw[:40]!r}")
    if re.search("%2f|%5c|%00", raw, re.IGNORECASE):
        raise Malformed("an encoded slash, backslash or NUL in the path")
    try:
        decoded = urllib.parse.unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise Malformed("a path segment that is not UTF-8") from None
    if decoded in (".", ".."):
        raise Malformed("a . or .. segment in the path")
    if not SEGMENT.fullmatch(decoded):
        raise Malformed(f"characters not allowed in a path segment: {decoded[:40]!r}")
    return decoded


def split_target(target: str) -> tuple[str, tuple[str, ...], list[tuple[str, str]]]:
    """The version prefix, the decoded path segments and the query pairs of ``target``."""
    if not target.startswith("/") or "#" in target:
        raise Malformed("the target is a path starting with / (origin-form), with no fragment")
    path, _, query = target.partition("?")
    raw_segments = path.split("/")[1:]
    if "" in raw_segments:
        raise Malformed("an empty segment in the path (// or a trailing /)")
    segments = tuple(_segment(s) for s in raw_segments)
    version = ""
    if segments and (found := VERSION.fullmatch(segments[0])):
        if (int(found[1]), int(found[2])) < MIN_API:
            raise Refused(
                f"API version {segments[0]} is older than the guard allows; allowed: v1.24 or "
                "later (docker-py and the docker CLI pick one themselves)"
            )
        version, segments = f"/{segments[0]}", segments[1:]
    if PERCENT.search(query):
        raise Malformed("a bad percent-escape in the query")
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise Malformed("a query that is not UTF-8") from None
    return version, segments, pairs


def query_pairs(route: Route, pairs: list[tuple[str, str]], what: str) -> list[tuple[str, str]]:
    """The call's query, each parameter checked and canonical, in the route's order. Unknown
    parameters are refused (Go's are case-sensitive: ``T`` is not ``t``), repeated ones too
    unless the route takes several (Docker reads the first, or all)."""
    seen: set[str] = set()
    out = []
    for key, value in pairs:
        check = route.query.get(key)
        if check is None:
            reason = f" ({QUERY_REASONS[key]})" if key in QUERY_REASONS else ""
            allowed = ", ".join(route.query) or "none"
            raise Refused(f"query parameter {key[:40]!r} of {what}{reason}; allowed: {allowed}")
        if key in seen and key not in route.multi:
            raise Malformed(f"query parameter {key!r} given twice")
        seen.add(key)
        out.append((key, check(value, key)))
    order = list(route.query)
    return sorted(out, key=lambda pair: order.index(pair[0]))
