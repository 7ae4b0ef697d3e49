"""The graded kernels' network: a namespace with nothing in it but loopback, and a relay that lets
exactly two kinds of connection through to this machine.

A notebook reaches the cluster and its own containers through 127.0.0.1: the API server's address
in its kubeconfig, and the host ports its containers publish. On the host network it could also
reach everything else listening there: etcd and the kubelet, another student's published ports,
a JupyterLab, a database, the cloud's metadata address. So each graded kernel runs in a network
namespace of its own (``ip netns``), where 127.0.0.1 is its own loopback and nothing else exists.
In that namespace the grader listens, on the same address and port, for:

- the API server named by the kubeconfig (loopback or not: a remote address is added to the
  namespace's loopback, so certificates still match);
- each host port one of the student's own containers publishes, as the engine guard reports them
  when a container starts; at every connection the relay asks the engine again whether the port
  is still the student's.

Each connection accepted there is joined, byte for byte, to the same address and port on the host.
The student's kernel and the grader's own kernel (``rerun.py``) get a namespace each: a student
who listens first on a port in theirs cannot answer the grader's checks.

Linux and root only (``ip netns``, ``setns``); elsewhere the run says there is no network isolation.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
PREFIX = "course-grading-"  # every namespace the grader makes; stale ones are removed by name
MAX_CONNECTIONS = 64  # at once, per relay: a notebook that opens thousands waits
_libc = ctypes.CDLL(None, use_errno=True)


def unavailable() -> str | None:
    """Why graded kernels cannot get a network namespace here, or None if they can."""
    if not Path("/proc/self/ns/net").exists():
        return "not Linux"
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing"
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")


@dataclass(frozen=True)
class Namespace:
    """A named network namespace (``ip netns add NAME``): loopback up, nothing else."""

    name: str

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    @classmethod
    def create(cls, name: str) -> Namespace:
        made = cls(PREFIX + name)
        if made.path.exists():  # left by a grader that was killed
            made.delete()
        _ip("netns", "add", made.name)
        _ip("-n", made.name, "link", "set", "lo", "up")
        return made

    def add_address(self, address: str) -> None:
        """Make a non-loopback address (a remote API server's) answer on this loopback."""
        ip = ipaddress.ip_address(address)
        if ip.is_loopback:
            return
        _ip("-n", self.name, "addr", "add", f"{ip}/{ip.max_prefixlen}", "dev", "lo")

    def delete(self) -> None:
        with contextlib.suppress(OSError):
            _ip("netns", "delete", self.name)


def remove_stale(names: Iterator[str] | None = None) -> list[str]:
    """Delete the grader's namespaces left by earlier runs that were killed; returns them."""
    found = names if names is not None else (p.name for p in NETNS_DIR.glob(PREFIX + "*"))
    removed = []
    for name in found:
        Namespace(name).delete()
        removed.append(name)
    return removed


@contextlib.contextmanager
def inside(namespace: Path) -> Iterator[None]:
    """Run the block in ``namespace`` (this thread only: a socket made here stays there)."""
    with open("/proc/thread-self/ns/net") as own, open(namespace) as target:
        if _libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns {namespace}: {os.strerror(error)}")
        try:
            yield
        finally:
            if _libc.setns(own.fileno(), CLONE_NEWNET) != 0:  # never run on in the wrong one
                os._exit(70)


def enter(namespace: str) -> None:
    """Move the calling process, for good, into ``namespace`` (single-threaded launchers)."""
    with open(namespace) as target:
        if _libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns {namespace}: {os.strerror(error)}")


Endpoint = tuple[str, int]


@dataclass
class Relay:
    """Listens in ``namespaces`` on the endpoints it is told to open; joins each connection to
    the same endpoint on the host when ``allowed(endpoint)`` says so at that moment."""

    namespaces: list[Path]
    allowed: Callable[[Endpoint], bool]
    refused: list[str] = field(default_factory=list)  # what was refused, for the grading log
    _listeners: dict[tuple[Path, Endpoint], socket.socket] = field(default_factory=dict)
    _slots: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(MAX_CONNECTIONS)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False

    def open(self, endpoint: Endpoint) -> list[str]:
        """Listen on ``endpoint`` in every namespace (once); returns the namespaces where the
        address was taken already (by the student's own code, in theirs)."""
        taken = []
        for namespace in self.namespaces:
            with self._lock:
                if self._closed or (namespace, endpoint) in self._listeners:
                    continue
                try:
                    listener = _listen(namespace, endpoint)
                except OSError as error:
                    taken.append(f"{namespace.name}: {error.strerror or error}")
                    continue
                self._listeners[(namespace, endpoint)] = listener
            threading.Thread(
                target=self._accept,
                args=(listener, endpoint),
                name=f"relay {endpoint[0]}:{endpoint[1]}",
                daemon=True,
            ).start()
        return taken

    def close(self) -> None:
        with self._lock:
            self._closed = True
            listeners, self._listeners = list(self._listeners.values()), {}
        for listener in listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _accept(self, listener: socket.socket, endpoint: Endpoint) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            if not self._slots.acquire(timeout=30):
                client.close()
                continue
            threading.Thread(
                target=self._serve, args=(client, endpoint), name="relay", daemon=True
            ).start()

    def _serve(self, client: socket.socket, endpoint: Endpoint) -> None:
        try:
            try:
                permitted = self.allowed(endpoint)
            except Exception as error:  # an engine that does not answer: refuse
                permitted = False
                self.refused.append(f"{endpoint}: {type(error).__name__}: {error}")
            if not permitted:
                self.refused.append(f"{endpoint[0]}:{endpoint[1]}")
                client.close()
                return
            try:
                upstream = socket.create_connection(endpoint, timeout=10)
            except OSError:
                client.close()  # as the host would: nothing listens there
                return
            upstream.settimeout(None)
            _join(client, upstream)
        finally:
            self._slots.release()


def _listen(namespace: Path, endpoint: Endpoint) -> socket.socket:
    family = socket.AF_INET6 if ":" in endpoint[0] else socket.AF_INET
    with inside(namespace):
        listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.bind(endpoint)
        listener.listen(64)
    except OSError:
        listener.close()
        raise
    return listener


def _join(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until both sides are done, then close both."""

    def copy(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)

    back = threading.Thread(target=copy, args=(other, one), name="relay back", daemon=True)
    back.start()
    copy(one, other)
    back.join()
    one.close()
    other.close()
