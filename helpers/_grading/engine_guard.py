"""A Docker API in front of the engine for one learner: their own containers and images only,
nothing that reaches the host.

A graded notebook (in the sandbox) reaches Docker through this socket, not the engine's own. It
lets through what the course's calls need, and refuses, with a Docker-style 403 and a message:

- a container whose name lacks the learner's prefix or whose labels lack ``course.learner``
  (squatting another student's name);
- host mounts (binds, bind or volume mounts), ``--privileged``, added capabilities, devices,
  security options, and the host's network, PID, IPC, UTS or user namespace;
- anything on a container or exec that is not the learner's (stop, remove, exec, logs, ...);
- an image tag without the learner's prefix, removing an image that is not theirs;
- everything else the course never uses (volumes, networks, swarm, plugins, prune, ...).

Listings are narrowed to the learner's containers. Each request on a connection is checked
before it is forwarded; a hijacked stream (attach, exec) is relayed once its request passed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import socketserver
import threading
import urllib.parse
from pathlib import Path
from typing import Any

VERSION = re.compile(r"^/v[0-9.]+")
HOST_MODES = ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode")


class Refused(Exception):
    """A request the guard does not forward; the message goes back to the caller."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class EngineGuard:
    """Serve ``socket_path`` for ``learner``, forwarding what is allowed to ``upstream``."""

    def __init__(
        self, learner: str, socket_path: Path, upstream: str, on_ports: Any = None
    ) -> None:
        self.learner = learner
        self.prefix = f"{learner}-"
        self.socket_path = socket_path
        self.upstream = upstream
        guard = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                guard._serve(self.request)

        self._server = socketserver.ThreadingUnixStreamServer(str(socket_path), Handler)
        self._server.daemon_threads = True
        os.chmod(socket_path, 0o666)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> EngineGuard:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.socket_path.unlink(missing_ok=True)

    # --- the policy ---------------------------------------------------------------------

    def _inspect(self, path: str) -> dict[str, Any]:
        connection = _UnixConnection(self.upstream)
        try:
            connection.request("GET", path)
            reply = connection.getresponse()
            body = reply.read()
        finally:
            connection.close()
        if reply.status != 200:
            raise Refused("no such object")
        found: dict[str, Any] = json.loads(body)
        return found

    def _owns_container(self, ident: str) -> None:
        found = self._inspect(f"/containers/{urllib.parse.quote(ident)}/json")
        labels = (found.get("Config") or {}).get("Labels") or {}
        if labels.get("course.learner") != self.learner:
            raise Refused(f"container {ident} is not yours")

    def _owns_image(self, name: str) -> None:
        found = self._inspect(f"/images/{urllib.parse.quote(name, safe='')}/json")
        labels = (found.get("Config") or {}).get("Labels") or {}
        if labels.get("course.learner") != self.learner:
            raise Refused(f"image {name} is not yours")

    def _check_create(self, query: dict[str, list[str]], body: bytes) -> None:
        name = (query.get("name") or [""])[0].lstrip("/")
        if not name.startswith(self.prefix):
            raise Refused(f"container names start with {self.prefix} (yours), not {name!r}")
        spec = json.loads(body or b"{}")
        if (spec.get("Labels") or {}).get("course.learner") != self.learner:
            raise Refused("a container needs your course.learner label")
        host = spec.get("HostConfig") or {}
        if host.get("Binds") or host.get("VolumesFrom"):
            raise Refused("mounting the host's files is not allowed")
        for mount in host.get("Mounts") or []:
            if mount.get("Type") in ("bind", "volume", "npipe", "cluster"):
                raise Refused("mounting the host's files is not allowed")
        if spec.get("Volumes"):
            raise Refused("volumes are not allowed")
        if host.get("Privileged") or host.get("CapAdd") or host.get("Devices"):
            raise Refused("privileged containers, added capabilities and devices are not allowed")
        if host.get("SecurityOpt") or host.get("DeviceRequests") or host.get("Sysctls"):
            raise Refused("security options, device requests and sysctls are not allowed")
        network = str(host.get("NetworkMode") or "")
        if network == "host" or network.startswith("container:"):
            raise Refused("the host's (or another container's) network is not allowed")
        for mode in HOST_MODES:
            value = str(host.get(mode) or "")
            if value == "host" or value.startswith("container:"):
                raise Refused(f"{mode} {value} is not allowed")

    def check(self, method: str, target: str, body: bytes) -> str:
        """Raise Refused, or return the target to forward (a listing narrowed to the learner)."""
        url = urllib.parse.urlsplit(target)
        path = VERSION.sub("", url.path)
        query = urllib.parse.parse_qs(url.query)
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        head = parts[0] if parts else ""
        if method in ("GET", "HEAD") and path in ("/_ping", "/version", "/info", "/images/json"):
            return target
        if (head == "containers" and parts[1:] == ["json"]) or (
            head == "events" and len(parts) == 1
        ):
            filters = json.loads((query.get("filters") or ["{}"])[0])
            filters["label"] = [*filters.get("label", []), f"course.learner={self.learner}"]
            query["filters"] = [json.dumps(filters)]
            return url._replace(query=urllib.parse.urlencode(query, doseq=True)).geturl()
        if head == "containers" and parts[1:] == ["create"] and method == "POST":
            self._check_create(query, body)
            return target
        if head == "containers" and len(parts) >= 2 and parts[1] not in ("prune",):
            self._owns_container(parts[1])
            return target
        if head == "exec" and len(parts) >= 2:
            container = self._inspect(f"/exec/{urllib.parse.quote(parts[1])}/json")
            self._owns_container(str(container.get("ContainerID", "")))
            return target
        if head == "build" and method == "POST":
            tags = query.get("t") or []
            if not tags or not all(t.startswith(self.prefix) for t in tags):
                raise Refused(f"image tags start with {self.prefix} (yours)")
            if (query.get("networkmode") or [""])[0] == "host":
                raise Refused("building on the host's network is not allowed")
            return target
        if head == "images" and len(parts) >= 2 and parts[1] not in ("prune", "create", "load"):
            actions = ("json", "history", "tag", "push", "get")
            name = "/".join(parts[1:-1] if parts[-1] in actions else parts[1:])
            if method == "GET":
                return target  # reading an image (the course's base images too) is harmless
            self._owns_image(name)
            return target
        raise Refused(f"{method} {path} is not part of what the course does")

    # --- the wire -----------------------------------------------------------------------

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.upstream)
        except OSError:
            client.close()
            return
        reader = client.makefile("rb")
        relay = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        relay.start()
        try:
            while True:
                request = _read_request(reader)
                if request is None:
                    break
                method, target, version, headers, body = request
                try:
                    target = self.check(method, target, body)
                except (Refused, ValueError) as refused:
                    _answer(client, 403, f"refused by the course's engine guard: {refused}")
                    break
                upstream.sendall(_head(method, target, version, headers) + body)
                if headers.get("upgrade") or headers.get("connection", "").lower() == "upgrade":
                    _pipe(client, upstream, first=reader)  # a hijacked stream: raw both ways
                    break
        except OSError:
            pass
        finally:
            for end in (upstream, client):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()


def _read_request(
    reader: Any,
) -> tuple[str, str, str, dict[str, str], bytes] | None:
    line = reader.readline(65536)
    if not line:
        return None
    method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers: dict[str, str] = {}
    order: list[str] = []
    while True:
        raw = reader.readline(65536).decode("latin-1").rstrip("\r\n")
        if not raw:
            break
        key, _, value = raw.partition(":")
        headers[key.strip().lower()] = value.strip()
        order.append(key.strip())
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size_line = reader.readline(65536)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            chunk = reader.read(size + 2)
            chunks.append(size_line + chunk)
            if size == 0:
                break
        body = b"".join(chunks)
    elif headers.get("content-length"):
        body = reader.read(int(headers["content-length"]))
    headers["__order__"] = "\0".join(order)
    return method, target, version, headers, body  # a chunked body is forwarded chunked


def _head(method: str, target: str, version: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {target} {version}"]
    for key in headers.get("__order__", "").split("\0"):
        if key:
            lines.append(f"{key}: {headers[key.lower()]}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _answer(client: socket.socket, status: int, message: str) -> None:
    body = json.dumps({"message": message}).encode()
    head = (
        f"HTTP/1.1 {status} Forbidden\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        client.sendall(head.encode() + body)


def _pipe(source: socket.socket, target: socket.socket, first: Any = None) -> None:
    """Copy bytes until one side closes (``first``: a reader with bytes already buffered)."""
    try:
        if first is not None:
            buffered = first.peek() if hasattr(first, "peek") else b""
            if buffered:
                target.sendall(first.read(len(buffered)))
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)
