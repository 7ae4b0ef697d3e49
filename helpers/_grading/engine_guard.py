"""A Docker API in front of the engine for one learner: their own containers and images only,
nothing that reaches the host, and capped containers.

A graded notebook (in the sandbox) reaches Docker through this socket, not the engine's own.
The guard is an allowlist, read the way the engine reads it (engine_routes.py: calls and query
parameters; engine_bodies.py: bodies, checked as engine_schema.py says; engine_policy.py:
ownership and caps; engine_http.py: the wire):

- **Calls**: containers (create, list, inspect, start, stop, restart, kill, wait, pause, logs,
  top, stats, changes, archive read, attach, exec, rename, remove), execs (start, inspect,
  resize), images (list, inspect, history, build, tag, remove), events, version, info, _ping.
  Everything else (volumes, networks, swarm, plugins, system df, prune, commit, update, load,
  import, pull, push, auth, sessions, ...) is refused. So is an API version before 1.24.
- **Ownership**: a container is created with a name starting ``<learner>-`` and the label
  ``course.learner=<learner>``; every action on a container or one of its execs needs that
  label; the guard forwards the full id it checked, not the name. Rename targets, build tags
  and tag targets start with the prefix; a build sets the label (query labels override the
  Dockerfile's LABELs) and has a tag (so cleanup finds it); only images with the label are
  tagged or removed. Any image may be read and run. Container lists and events are narrowed
  to the label.
- **Bodies**: JSON keys are ASCII, matched case-insensitively to Docker's field names (as Go
  does), each once; unknown fields are refused (at the top level too: Docker reads HostConfig
  fields there when HostConfig is absent). Binds, mounts, VolumesFrom, devices and device
  rules, Privileged, CapAdd, SecurityOpt (but no-new-privileges), Sysctls, an empty
  MaskedPaths/ReadonlyPaths, CgroupParent, another runtime, the host's or a container's
  network/PID/IPC/UTS/user/cgroup namespace, links, ExtraHosts, anonymous volumes, restart
  policies that outlive the grading, unkillable containers: refused, with their zero values
  allowed (the docker CLI sends them all). Ports publish on loopback or every address, host
  port 1024 or above (or any free one). Exec bodies are allowlisted (no Privileged). Builds take
  allowlisted parameters (no remote context, BuildKit, extra hosts, cgroup parent, outputs,
  host network) and an uncompressed tar of at most 64 MiB.
- **Caps**: a container gets at most ``memory_limit`` bytes (default 512 MiB) and
  ``pids_limit`` processes (default 256): absent or unlimited, the cap is set; more is refused
  with the cap in the message (lowering it silently would change what a graded check sees).
  Build steps get the memory cap (the API has no pids limit for builds). Containers run
  outside the submission's cgroup: without caps a fork bomb or a memory hog would take the host.
- **The wire**: each request is read whole and bounded (head 64 KiB, 64 fields, JSON 1 MiB,
  build context 64 MiB); smuggling shapes (Content-Length with Transfer-Encoding, several
  Content-Lengths, an encoding other than chunked, folded lines, a target that is not a path,
  ``..``, empty segments, encoded slashes) are refused; the guard forwards a request it builds
  itself (its own head, de-chunked body, canonical query and JSON), reads the engine's answer
  and relays it as it streams before reading the next request. Only attach and exec start may
  become a raw two-way stream, once the engine has answered 101 (or Docker's raw 200).

Refusals are Docker-style JSON (``{"message": "refused by the course's engine guard: ..."}``),
403 for a call not allowed, 400/405/413/431/501/505 for a malformed or too large request, each
saying what was refused and what is allowed (a container or image that does not exist is a 404
as the engine words it, so docker-py raises NotFound). A refusal closes the connection.

``on_ports`` (for the grader's network relay) is called with the set of host ports a container
publishes (on any address; empty if none) after each 2xx start or restart of one of the
learner's containers, before the client hears of it. An error in it is logged, not relayed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import sys
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .engine_http import (
    Framing,
    Head,
    Malformed,
    Reader,
    error_response,
    read_body,
    read_request_head,
    read_response_head,
    relay_body,
    render_raw_head,
    render_request,
    render_response_head,
    request_framing,
    response_framing,
)
from .engine_policy import DEFAULT_MEMORY, DEFAULT_PIDS, Policy
from .engine_routes import MAX_BUILD_CONTEXT, Call, Forward
from .engine_schema import Refused

MAX_CONNECTIONS = 128
# A keep-alive connection idle this long is closed: the Docker client reopens one when it needs
# it, and idle connections of many short-lived clients never hold every slot.
IDLE_SECONDS = 10
LINGER = 2.0  # seconds a refused client may go on sending before the guard closes
MAX_LOOKUP = 16 << 20
RAW_STREAMS = ("application/vnd.docker.raw-stream", "application/vnd.docker.multiplexed-stream")


class UnsupportedEngine(Exception):
    """An engine address the guard cannot front; the message says what to do instead."""


def upstream_from_environment(environ: Mapping[str, str]) -> str | None:
    """The engine the guard fronts, from DOCKER_HOST: a Unix socket path, ``tcp://host:port``,
    or None when there is no socket at the default address. Raises UnsupportedEngine for TLS."""
    host = environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        path = Path(host.removeprefix("unix://")).resolve()
        return str(path) if path.exists() else None
    tls = [k for k in ("DOCKER_TLS_VERIFY", "DOCKER_TLS", "DOCKER_CERT_PATH") if environ.get(k)]
    if host.startswith("tcp://") and not tls:
        return host
    raise UnsupportedEngine(
        f"The engine guard fronts a Unix socket or a plain tcp:// engine, not DOCKER_HOST="
        f"{host}{' with ' + ', '.join(tls) if tls else ''}: graded notebooks would get no "
        "Docker. Grade on a machine whose engine answers on a Unix socket (the default), or "
        "unset the TLS variables for a plain TCP engine on a private network."
    )


def _address(upstream: str) -> tuple[int, Any]:
    if upstream.startswith("tcp://"):
        parsed = urllib.parse.urlsplit(upstream)
        if not parsed.hostname or not parsed.port:
            raise UnsupportedEngine(f"{upstream}: a TCP engine is tcp://host:port")
        return socket.AF_INET6 if ":" in parsed.hostname else socket.AF_INET, (
            parsed.hostname,
            parsed.port,
        )
    if "://" in upstream and not upstream.startswith("unix://"):
        raise UnsupportedEngine(f"{upstream}: the guard fronts unix:// or tcp:// engines")
    return socket.AF_UNIX, upstream.removeprefix("unix://")


def published_ports(inspected: dict[str, Any]) -> set[int]:
    """The host ports a container publishes (on any address), from its inspect."""
    ports = (inspected.get("NetworkSettings") or {}).get("Ports") or {}
    return {
        int(binding["HostPort"])
        for bindings in ports.values()
        for binding in bindings or []
        if str(binding.get("HostPort", "")).isdigit()
    }


class EngineGuard:
    """Serve ``socket_path`` for ``learner``, forwarding what is allowed to ``upstream`` (a Unix
    socket path, ``unix://path`` or ``tcp://host:port``; TLS is not supported).

    ``memory_limit`` (bytes) and ``pids_limit`` cap each container the learner creates (and the
    memory of each build step); ``on_ports`` hears the host ports a container publishes after
    each successful start or restart; at most ``max_connections`` clients at once (more get a
    503)."""

    def __init__(
        self,
        learner: str,
        socket_path: Path,
        upstream: str,
        *,
        memory_limit: int = DEFAULT_MEMORY,
        pids_limit: int = DEFAULT_PIDS,
        on_ports: Callable[[set[int]], None] | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.learner = learner
        self.policy = Policy(learner, memory_limit=memory_limit, pids_limit=pids_limit)
        self.socket_path = socket_path
        self.upstream = upstream
        self.on_ports = on_ports
        self._family, self._address = _address(upstream)
        self._slots = threading.BoundedSemaphore(max_connections)
        self._build_slot = threading.Lock()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        guard = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                guard._serve(self.request)

        self._server = socketserver.ThreadingUnixStreamServer(str(socket_path), Handler)
        self._server.daemon_threads = True
        os.chmod(socket_path, 0o666)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True)

    def start(self) -> EngineGuard:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.socket_path.unlink(missing_ok=True)
        with self._lock:
            still_open = list(self._open)
        for end in still_open:  # streams that follow (logs, events) end with the guard
            _close(end)

    def check(self, method: str, target: str, body: bytes = b"") -> Forward:
        """The request the guard would forward for this call, or Refused/Malformed."""
        return self.policy.check(method, target, body, self.lookup)

    # --- the engine ---------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        end = socket.socket(self._family, socket.SOCK_STREAM)
        end.settimeout(30)
        try:
            end.connect(self._address)
        except OSError:
            end.close()
            raise
        end.settimeout(None)  # logs and events may be quiet for long
        return end

    def lookup(self, path: str) -> dict[str, Any] | None:
        """GET ``path`` from the engine: its JSON, or None when there is no such object."""
        with contextlib.closing(self._connect()) as end:
            end.settimeout(30)
            end.sendall(render_request("GET", path, [("Connection", "close")], b""))
            answer = Reader(end.recv)
            head = read_response_head(answer)
            body = read_body(answer, response_framing("GET", head), MAX_LOOKUP, "an inspect")
        status = int(head.start[1])
        if status == 404:
            return None
        if status != 200:
            raise Refused(f"the engine could not say who owns it ({status})", 502)
        found = json.loads(body)
        if not isinstance(found, dict):
            raise Refused("the engine's inspect is not a JSON object", 502)
        return found

    # --- the wire -----------------------------------------------------------------------

    def _serve(self, client: socket.socket) -> None:
        if not self._slots.acquire(blocking=False):
            message = "too many connections at once to the course's engine guard; retry"
            _refuse(client, 503, message)
            return
        self._track(client)
        try:
            reader = Reader(client.recv)
            while self._exchange(client, reader):
                pass
        except (OSError, Malformed):
            pass  # the client or the engine went away mid-answer: nothing left to tell
        finally:
            self._untrack(client)
            self._slots.release()

    def _exchange(self, client: socket.socket, reader: Reader) -> bool:
        """One request and its answer; True when the connection may carry another."""
        try:
            client.settimeout(IDLE_SECONDS)
            head = read_request_head(reader)
            client.settimeout(None)
            if head is None:
                return False
            method, target, version = head.start
            upgrade = bool(head.get("upgrade")) or "upgrade" in head.tokens("connection")
            call = self.policy.route(method, target, upgrade)
            framing = request_framing(head)
        except (Refused, Malformed) as refused:
            _refuse(client, refused.status, _message(refused))
            return False
        keep = version == "HTTP/1.1" and "close" not in head.tokens("connection")
        # One build context in memory at a time per guard (64 MiB), however many connections.
        with self._build_slot if call.route.body == "tar" else contextlib.nullcontext():
            forward = self._authorised(client, reader, head, framing, call)
            return forward is not None and self._relay(client, reader, forward, keep)

    def _authorised(
        self, client: socket.socket, reader: Reader, head: Head, framing: Framing, call: Call
    ) -> Forward | None:
        """The request to forward for ``call``, its body read; None once refused (answered)."""
        try:
            _continue_if_expected(head, framing, client)
            none = " (it takes none)" if call.route.body == "none" else ""
            body = read_body(reader, framing, call.body_limit, f"the body of {call.what}{none}")
            if call.route.body == "tar" and head.get("content-encoding") not in (None, "identity"):
                raise Refused("a compressed build context; allowed: an uncompressed tar")
            return self.policy.authorise(call, body, self.lookup)
        except (Refused, Malformed) as refused:
            _refuse(client, refused.status, _message(refused))
        except Exception:  # a bug in the guard must refuse, not forward
            traceback.print_exc(file=sys.stderr)
            _refuse(client, 500, "the course's engine guard could not check this request")
        return None

    def _relay(self, client: socket.socket, reader: Reader, forward: Forward, keep: bool) -> bool:
        """Send ``forward`` to the engine and relay its answer; True when the connection may
        carry another request."""
        try:
            upstream = self._connect()
        except OSError as error:
            _refuse(client, 502, f"the course's engine guard cannot reach the engine: {error}")
            return False
        self._track(upstream)
        try:
            try:
                upstream.sendall(_request(forward))
                answer = Reader(upstream.recv)
                head = read_response_head(answer)
                if head.start[1] == "101" and not forward.hijack:
                    raise Malformed("the engine upgraded a call that is not attach or exec", 502)
            except Malformed as error:  # nothing relayed yet: the client hears why
                _refuse(client, 502, f"the engine's answer could not be relayed: {error}")
                return False
            if forward.hijack and _raw_stream(head):
                client.sendall(render_raw_head(head))
                _splice(client, reader, upstream, answer)
                return False
            if forward.started and head.start[1].startswith("2"):
                self._report_ports(forward.started)
            framing = response_framing(forward.method, head)
            keep = keep and framing.kind != "close"
            client.sendall(render_response_head(head, framing, keep))
            relay_body(answer, client.sendall, framing)
            return keep
        finally:
            self._untrack(upstream)

    def _report_ports(self, container: str) -> None:
        if self.on_ports is None:
            return
        try:
            inspected = self.lookup(f"/containers/{container}/json") or {}
            self.on_ports(published_ports(inspected))
        except Exception as error:  # the relay's trouble must not lose the student's answer
            print(f"engine guard: on_ports failed: {error!r}", file=sys.stderr, flush=True)

    def _track(self, end: socket.socket) -> None:
        with self._lock:
            self._open.add(end)

    def _untrack(self, end: socket.socket) -> None:
        with self._lock:
            self._open.discard(end)
        _close(end)


def _request(forward: Forward) -> bytes:
    """The request the engine gets: the guard's own head, with Upgrade only on attach/exec."""
    headers = [("Content-Type", forward.content_type)] if forward.content_type else []
    if forward.upgrade:
        headers += [("Connection", "Upgrade"), ("Upgrade", "tcp")]
    else:
        headers += [("Connection", "close")]
    return render_request(forward.method, forward.target, headers, forward.body)


def _refuse(client: socket.socket, status: int, message: str) -> None:
    """Answer, then read what the client still sends (a build context, say) for a moment before
    closing: closing with unread bytes would reset the connection before the client reads why."""
    try:
        client.sendall(error_response(status, message))
        client.shutdown(socket.SHUT_WR)
        client.settimeout(LINGER)
        left = MAX_BUILD_CONTEXT + (1 << 20)
        while left > 0 and (data := client.recv(65536)):
            left -= len(data)
    except OSError:
        pass


def _message(refused: Refused | Malformed) -> str:
    if refused.status == 404:
        return str(refused)  # as the engine says it: docker-py then raises NotFound
    kind = "" if isinstance(refused, Refused) else "a malformed request: "
    return f"refused by the course's engine guard: {kind}{refused}"


def _continue_if_expected(head: Head, framing: Framing, client: socket.socket) -> None:
    expect = head.get("expect")
    if expect is None:
        return
    if expect.lower() != "100-continue":
        raise Malformed(f"Expect: {expect[:40]}: only 100-continue", 417)
    if framing.kind != "none":
        client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")


def _raw_stream(head: Head) -> bool:
    """Docker's hijack: 101 after an Upgrade, or a 200 raw stream with no framing."""
    status = int(head.start[1])
    if status == 101:
        return True
    content_type = (head.get("content-type") or "").split(";")[0].strip().lower()
    framed = head.get("content-length") is not None or head.get("transfer-encoding") is not None
    return status == 200 and content_type in RAW_STREAMS and not framed


def _splice(client: socket.socket, reader: Reader, upstream: socket.socket, answer: Reader) -> None:
    """Copy both ways until each side is done (an attach or an exec's stdin and output)."""

    def engine_to_client() -> None:
        _copy(answer.buffered(), upstream, client)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RD)  # the stream ended: stop waiting for stdin

    down = threading.Thread(target=engine_to_client, daemon=True)
    down.start()
    _copy(reader.buffered(), client, upstream)
    down.join()


def _copy(first: bytes, source: socket.socket, target: socket.socket) -> None:
    try:
        if first:
            target.sendall(first)
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


def _close(end: socket.socket) -> None:
    with contextlib.suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)
    end.close()
