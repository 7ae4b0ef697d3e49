"""The engine guard's policy: which calls of Docker's API a graded notebook may make, with which
query parameters and bodies, on which containers and images. Pure: it reaches the engine only
through ``Lookup`` (an inspect), so it is tested without one. engine_guard.py states the policy
in words; this module is where each rule is.

A call is first routed (``Policy.route``: method, path and query, before the body is read, so
the body's size bound is the route's), then authorised (``Policy.authorise``: the body, and who
owns what it acts on). What comes out is a ``Forward``: the request the guard sends, built from
canonical values, never the client's bytes.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .engine_http import Malformed
from .engine_schema import (
    CONTAINER,
    EXEC,
    EXEC_START,
    OMIT,
    Refused,
    Struct,
    decode_json,
    encode_json,
)

LABEL = "course.learner"
MIN_API = (1, 24)  # older versions took a HostConfig in the body of start
MAX_JSON_BODY = 1 << 20
MAX_BUILD_CONTEXT = 64 << 20
DEFAULT_MEMORY = 512 << 20
DEFAULT_PIDS = 256

# An inspect through the engine: the decoded JSON of GET ``path``, or None when there is no such
# object (404). Anything else raises.
Lookup = Callable[[str], dict[str, Any] | None]
# A query parameter's check: (value, where) -> canonical value, or raise Refused.
Param = Callable[[str, str], str]

SEGMENT = re.compile(r"[A-Za-z0-9_.:@+=,~-]+")
PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
VERSION = re.compile(r"v([0-9]{1,3})\.([0-9]{1,3})")
CONTAINER_NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
REPOSITORY = re.compile(r"[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


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
    """Docker's boolean: false for "", 0, no, false, none (any case); true otherwise."""
    return "0" if value.strip().lower() in ("", "0", "no", "false", "none") else "1"


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
    "containers (create, list, inspect, start, stop, restart, kill, wait, logs, top, stats, "
    "attach, exec, rename, remove), exec (start, inspect, resize), images (list, inspect, "
    "history, build, tag, remove), events, version, info and _ping"
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


def _query(route: Route, pairs: list[tuple[str, str]], what: str) -> list[tuple[str, str]]:
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


# --- the policy -----------------------------------------------------------------------------


class Policy:
    """What ``learner``'s graded notebook may do. Containers it creates get at most
    ``memory_limit`` bytes and ``pids_limit`` processes (absent or unlimited: set to the cap;
    more: refused); so does each step of its builds (memory only: the API has no pids limit
    for builds)."""

    def __init__(
        self,
        learner: str,
        *,
        memory_limit: int = DEFAULT_MEMORY,
        pids_limit: int = DEFAULT_PIDS,
    ) -> None:
        self.learner = learner
        self.prefix = f"{learner}-"
        self.memory_limit = memory_limit
        self.pids_limit = pids_limit

    def route(self, method: str, target: str, upgrade: bool = False) -> Call:
        version, segments, pairs = split_target(target)
        what = f"{method} /{'/'.join(segments)}"
        matched = False
        for route in ROUTES:
            params = route.match(segments)
            if params is None:
                continue
            matched = True
            if route.method == method:
                query = _query(route, pairs, what)
                return Call(method, version, segments, params, query, route, upgrade)
        if matched:
            raise Refused(f"{what}: that method is not allowed on this path")
        raise Refused(f"{what} is not part of what the course does; allowed: {ALLOWED_CALLS}")

    def authorise(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        handler: Callable[[Call, bytes, Lookup], Forward] = getattr(self, f"_{call.route.handler}")
        return handler(call, body, lookup)

    def check(self, method: str, target: str, body: bytes, lookup: Lookup) -> Forward:
        """Route and authorise in one step (tests, and callers with the whole request)."""
        call = self.route(method, target)
        if len(body) > call.body_limit:
            raise Malformed(f"a body larger than {call.body_limit} bytes for {call.what}", 413)
        return self.authorise(call, body, lookup)

    # --- ownership ----------------------------------------------------------------------

    def _labelled(self, found: dict[str, Any]) -> bool:
        labels = (found.get("Config") or {}).get("Labels") or {}
        return isinstance(labels, dict) and labels.get(LABEL) == self.learner

    def _own_container(self, ident: str, lookup: Lookup) -> str:
        """The full id of ``ident``, a container of this learner's; Refused otherwise."""
        found = lookup(f"/containers/{urllib.parse.quote(ident, safe='')}/json")
        if found is None:
            raise Refused(f"No such container: {ident}", 404)
        if not self._labelled(found):
            raise Refused(
                f"container {ident} is not yours: only containers labelled "
                f"{LABEL}={self.learner} (yours) can be used"
            )
        return str(found["Id"])

    def _own_image(self, name: str, lookup: Lookup) -> None:
        found = lookup("/images/" + urllib.parse.quote(name, safe="/:@") + "/json")
        if found is None:
            raise Refused(f"No such image: {name}", 404)
        if not self._labelled(found):
            raise Refused(
                f"image {name} is not yours: only images labelled {LABEL}={self.learner} (built "
                "by you) can be tagged or removed; any image can be read and run"
            )

    def _prefixed(self, name: str, what: str) -> None:
        if not name.startswith(self.prefix):
            raise Refused(f"{what} {name[:80]!r}: your {what}s start with {self.prefix}")

    def _image_reference(self, value: str, what: str) -> str:
        repository, _, tag = _short(value).partition(":")
        if not REPOSITORY.fullmatch(repository) or (tag and not TAG.fullmatch(tag)):
            raise Refused(
                f"{what} {value[:80]!r}: allowed: {self.prefix}name or {self.prefix}name:tag"
            )
        self._prefixed(repository, what)
        return value

    # --- handlers -----------------------------------------------------------------------

    def _plain(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        return Forward(call.method, call.target())

    def _container(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        ident = self._own_container(call.params["id"], lookup)
        return Forward(call.method, call.target(_with_id(call, 1, ident)))

    def _start(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        ident = self._own_container(call.params["id"], lookup)
        return Forward(call.method, call.target(_with_id(call, 1, ident)), started=ident)

    def _attach(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        ident = self._own_container(call.params["id"], lookup)
        target = call.target(_with_id(call, 1, ident))
        return Forward(call.method, target, hijack=True, upgrade=call.upgrade)

    def _rename(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        name = self._container_name(call.one("name"), "rename")
        ident = self._own_container(call.params["id"], lookup)
        return Forward(call.method, call.target(_with_id(call, 1, ident), [("name", name)]))

    def _container_name(self, given: str | None, what: str) -> str:
        if given is None or not CONTAINER_NAME.fullmatch(given):
            raise Refused(
                f"container name {given!r} ({what}): a name is required, letters, digits, "
                f"_ . -, starting with {self.prefix}"
            )
        name = given.lstrip("/")
        self._prefixed(name, "container name")
        return name

    def _create(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        name = self._container_name(call.one("name"), "create")
        spec = _object(CONTAINER, body, "the container's JSON")
        if not spec.get("Image"):
            raise Refused("the container's JSON needs an Image")
        if (spec.get("Labels") or {}).get(LABEL) != self.learner:
            raise Refused(f"a container needs the label {LABEL}={self.learner} (yours)")
        spec["HostConfig"] = self.cap_resources(spec.get("HostConfig") or {})
        query = [("name", name), *((k, v) for k, v in call.query if k == "platform")]
        return Forward(
            "POST", call.target(query=query), encode_json(spec), content_type="application/json"
        )

    def cap_resources(self, host: dict[str, Any]) -> dict[str, Any]:
        """``host`` with Memory and PidsLimit at most the guard's (set where absent)."""
        memory, swap = self._memory(host.get("Memory", 0), host.get("MemorySwap", 0), "HostConfig")
        host["Memory"] = memory
        if swap:
            host["MemorySwap"] = swap
        pids = host.get("PidsLimit", 0)
        if pids > self.pids_limit:
            raise Refused(
                f"HostConfig.PidsLimit {pids}: a graded notebook's containers run at most "
                f"{self.pids_limit} processes; allowed: 1 to {self.pids_limit} (or none: "
                f"{self.pids_limit} is set)"
            )
        host["PidsLimit"] = pids if pids > 0 else self.pids_limit
        return host

    def _memory(self, memory: int, swap: int, where: str) -> tuple[int, int]:
        cap = self.memory_limit
        if memory > cap:
            raise Refused(
                f"{where} memory {memory} bytes: a graded notebook's containers get at most "
                f"{cap} bytes ({cap >> 20} MiB); allowed: up to that (or none: the cap is set)"
            )
        memory = memory or cap
        if swap == -1 or (swap and not memory <= swap <= 2 * memory):
            raise Refused(
                f"{where} memory and swap {swap}: unlimited swap would escape the memory cap; "
                f"allowed: 0 (the engine's default) or from {memory} to {2 * memory}"
            )
        return memory, swap

    def _exec_create(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        spec = _object(EXEC, body, "the exec's JSON")
        ident = self._own_container(call.params["id"], lookup)
        target = call.target(_with_id(call, 1, ident))
        return Forward("POST", target, encode_json(spec), content_type="application/json")

    def _own_exec(self, call: Call, lookup: Lookup) -> str:
        exec_id = call.params["id"]
        found = lookup(f"/exec/{urllib.parse.quote(exec_id, safe='')}/json")
        if found is None:
            raise Refused(f"No such exec instance: {exec_id}", 404)
        self._own_container(str(found.get("ContainerID", "")), lookup)
        return str(found["ID"])

    def _exec(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        return Forward(call.method, call.target(_with_id(call, 1, self._own_exec(call, lookup))))

    def _exec_start(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        spec = _object(EXEC_START, body, "the exec start's JSON")
        target = call.target(_with_id(call, 1, self._own_exec(call, lookup)))
        return Forward(
            "POST",
            target,
            encode_json(spec),
            content_type="application/json",
            hijack=True,
            upgrade=call.upgrade,
        )

    def _tag(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        repo = _short(call.one("repo") or "")
        if not REPOSITORY.fullmatch(repo):
            raise Refused(
                f"tag target {repo[:80]!r}: allowed: a repository such as {self.prefix}name"
            )
        self._prefixed(repo, "image name")
        tag = call.one("tag") or ""
        if tag and not TAG.fullmatch(tag):
            raise Refused(f"tag {tag[:80]!r}: allowed: letters, digits, _ . - (such as v1)")
        self._own_image(call.params["name"], lookup)
        return Forward("POST", call.target(query=[("repo", repo), ("tag", tag)]))

    def _remove_image(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        self._own_image(call.params["name"], lookup)
        return Forward("DELETE", call.target())

    def _build(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        tags = [self._image_reference(v, "image name") for k, v in call.query if k == "t"]
        if not tags:
            raise Refused(f"a build needs a tag (t), starting with {self.prefix}")
        labels = _json_strings(call.one("labels") or "{}", "labels")
        if labels.get(LABEL) != self.learner:
            raise Refused(f"a build needs the label {LABEL}={self.learner} (yours)")
        buildargs = _json_strings(call.one("buildargs") or "{}", "buildargs", nulls=True)
        memory = int(call.one("memory") or 0)
        memory, swap = self._memory(memory, int(call.one("memswap") or 0), "build")
        query = [
            (k, v)
            for k, v in call.query
            if k not in ("labels", "buildargs", "memory", "memswap", "version")
        ]
        query += [("labels", encode_json(labels).decode()), ("memory", str(memory))]
        query += [("buildargs", encode_json(buildargs).decode())] if buildargs else []
        query += [("memswap", str(swap))] if swap else []
        return Forward("POST", call.target(query=query), body, content_type="application/x-tar")

    def _list_containers(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        return Forward("GET", call.target(query=self._narrowed(call)))

    def _events(self, call: Call, body: bytes, lookup: Lookup) -> Forward:
        return Forward("GET", call.target(query=self._narrowed(call)))

    def _narrowed(self, call: Call) -> list[tuple[str, str]]:
        """The query with a filter on this learner's label added (Docker ANDs label filters)."""
        filters = _filters(call.one("filters") or "{}")
        filters["label"] = [*filters.get("label", []), f"{LABEL}={self.learner}"]
        query = [(k, v) for k, v in call.query if k != "filters"]
        return [*query, ("filters", encode_json(filters).decode())]


def _object(schema: Struct, body: bytes, what: str) -> dict[str, Any]:
    """A JSON body checked against ``schema``: its canonical form (an empty body is {})."""
    checked = schema(decode_json(body or b"{}", what), "")
    return {} if checked is OMIT else dict(checked)


def _short(reference: str) -> str:
    """A reference as the student wrote it: the docker CLI sends docker.io/library/name."""
    return reference.removeprefix("docker.io/library/")


def _with_id(call: Call, index: int, ident: str) -> tuple[str, ...]:
    """The call's path with segment ``index`` replaced by the full id found (no name is looked
    up twice: what was checked is what is acted on)."""
    segments = list(call.segments)
    segments[index] = ident
    return tuple(segments)


def _json_strings(value: str, what: str, nulls: bool = False) -> dict[str, Any]:
    decoded = decode_json(value.encode(), what)
    if not isinstance(decoded, dict) or not all(
        isinstance(v, str) or (nulls and v is None) for v in decoded.values()
    ):
        raise Refused(f"{what} must be a JSON object of strings")
    return decoded


def _filters(value: str) -> dict[str, list[str]]:
    """Docker's filters, as {name: [values]} (the older {name: {value: true}} form too)."""
    decoded = decode_json(value.encode(), "filters")
    if not isinstance(decoded, dict):
        raise Malformed("filters must be a JSON object")
    out: dict[str, list[str]] = {}
    for name, values in decoded.items():
        if isinstance(values, dict) and all(v is True for v in values.values()):
            values = list(values)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise Malformed(f"filter {name!r} must be a list of strings")
        out[name] = values
    return out
