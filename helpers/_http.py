"""``fetch``: one way to GET a page, from a port on this machine or from a pod or service in the
cluster; and ``free_port``."""

from __future__ import annotations

import random
import socket
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from ._deadline import poll
from ._errors import CourseError, WaitTimeout

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def fetch(
    target: str, ns: str | None = None, *, path: str = "/", port: int = 80, timeout: float = 10.0
) -> str:
    """GET a page and return its text, retrying while the server is still starting (at most
    ``timeout`` seconds).

    ``target`` is either a URL on this machine, or a pod or service in the cluster, reached
    through the API server's proxy (``path`` and ``port`` say where in it):

    CLI: ``curl http://127.0.0.1:8080/``
         ``kubectl get --raw /api/v1/namespaces/NS/pods/web:80/proxy/PATH`` (services: ``services/web:80``)

    >>> fetch("http://127.0.0.1:8080/")            # doctest: +SKIP
    '<!doctype html>...'
    >>> fetch("pod/web", ns, path="/version")      # doctest: +SKIP
    'v1\\n'
    """
    if "://" not in target:
        from ._k8s.network import fetch_from_cluster

        return fetch_from_cluster(target, ns, path=path, port=port, timeout=timeout)
    host = urlparse(target).hostname
    if host not in _LOCAL_HOSTS:
        raise CourseError(
            f"The course only fetches from this machine, not {host!r}.",
            hint="Publish the port on 127.0.0.1 and fetch http://127.0.0.1:PORT/ instead.",
        )

    def attempt() -> str:
        try:
            with urllib.request.urlopen(target, timeout=min(5.0, timeout)) as reply:
                return bytes(reply.read()).decode(errors="replace")
        except urllib.error.HTTPError as error:
            raise CourseError(
                f"{target} answered HTTP {error.code} {error.reason}.",
                hint="The server runs, but has no such page: check the path.",
            ) from None

    def gave_up(last: Exception | None) -> CourseError:
        return WaitTimeout(
            f"Nothing answered at {target} within {timeout:g} s ({last}).",
            hint="Is the container running, and is that host port published on 127.0.0.1? "
            "Look at docker.ps() and docker.logs(NAME).",
        )

    retry = (urllib.error.URLError, ConnectionError, TimeoutError)
    return poll(attempt, timeout=timeout, what=f"GET {target}", retry_on=retry, on_timeout=gave_up)


def _ephemeral_ports() -> range:
    """The ports the system hands to outgoing connections (Linux's ip_local_port_range)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)  # Linux's default


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))  # free on every interface, so on 127.0.0.1 too
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port that nothing on this machine uses right now, to publish a container on.

    It is picked below the range the system gives outgoing connections: a port from that range
    can be taken by any connection (to the cluster, say) before the container binds it."""
    below = range(20000, _ephemeral_ports().start)
    for port in random.sample(below, min(len(below), 200)):
        if _free(port):
            return port
    with socket.socket() as probe:  # no room below the range: let the system choose
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
