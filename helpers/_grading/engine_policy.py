"""The engine guard's policy: on which containers and images a graded notebook may act, with
which names, labels and resources. Pure: it reaches the engine only through ``Lookup`` (an
inspect), so it is tested without one. engine_guard.py states the whole policy in words; the
calls and their query parameters are in engine_routes.py, the bodies in engine_bodies.py.

A call is first routed (``Policy.route``: method, path and query, before the body is read, so
the body's size bound is the route's), then authorised (``Policy.authorise``: the body, and who
owns what it acts on). What comes out is a ``Forward``: the request the guard sends, built from
canonical values, never the client's bytes.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from .engine_bodies import CONTAINER, EXEC, EXEC_START
from .engine_http import Malformed
from .engine_routes import ALLOWED_CALLS, ROUTES, Call, Forward, query_pairs, split_target
from .engine_schema import OMIT, Refused, Struct, decode_json, encode_json

LABEL = "course.learner"
DEFAULT_MEMORY = 512 << 20
DEFAULT_PIDS = 256
CONTAINER_NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
REPOSITORY = re.compile(r"[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

# An inspect through the engine: the decoded JSON of GET ``path``, or None when there is no such
# object (404). Anything else raises.
Lookup = Callable[[str], dict[str, Any] | None]

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
                query = query_pairs(route, pairs, what)
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
