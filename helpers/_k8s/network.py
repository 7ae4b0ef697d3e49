"""Reaching pods and services: a page through the API server's proxy, a port-forward, and a
local proxy to the API server itself (like ``kubectl proxy``)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import parse_qsl, quote

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward as k8s_portforward

from .._deadline import poll
from .._errors import (
    ClusterUnreachable,
    CourseError,
    Forbidden,
    KubernetesError,
    ObjectNotFound,
    WaitTimeout,
)
from .client import CONNECTION_ERRORS, api, api_errors, request, send
from .discovery import split_target
from .objects import get, namespace_for


def fetch_from_cluster(target: str, ns: str | None, *, path: str, port: int, timeout: float) -> str:
    """GET ``path`` from a pod or service through the API server's proxy, retrying while it
    starts. See ``helpers.fetch``."""
    resource, name = split_target(target)
    if resource.kind not in ("Pod", "Service"):
        raise CourseError(
            f"fetch reaches pods and services, not {resource.kind}.",
            hint="Use 'pod/NAME' or 'service/NAME'.",
        )
    where = namespace_for(resource, ns)
    get(target, where)  # no such pod or service: say so now, not after the timeout
    url = f"{resource.collection(where)}/{name}:{port}/proxy/{quote(path.lstrip('/'))}"
    what = f"GET {path} from {target}"

    last_error: list[Exception] = []

    def attempt() -> str | None:
        try:
            result = request("GET", url, timeout=max(2.0, timeout), what=what)
        except ObjectNotFound:
            raise CourseError(
                f"{target} answered 404 Not Found for {path}.",
                hint="The server runs but has no such page: check the path.",
            ) from None
        except (ClusterUnreachable, Forbidden):
            raise
        except KubernetesError as error:
            # Not yet: the pod is starting, or the service has no ready endpoint (503).
            last_error[:] = [error]
            return None
        return result if isinstance(result, str) else json.dumps(result)

    def gave_up(_: Exception | None) -> CourseError:
        return WaitTimeout(
            f"{what}: no answer within {timeout:g} s.",
            hint=f"Is it Ready, and listening on port {port}? Look at k8s.pods({where!r}) and "
            f"k8s.events({where!r}, about={target!r}).",
            output=str(last_error[0]) if last_error else None,
        )

    return poll(attempt, timeout=timeout, what=what, on_timeout=gave_up)


@contextmanager
def port_forward(pod: str, port: int, ns: str | None = None) -> Iterator[int]:
    """Forward a free port on 127.0.0.1 to a pod's port while the ``with`` block runs.

    CLI: ``kubectl port-forward pod/web -n NS 8080:80``

    >>> with port_forward("pod/web", 80, ns) as local_port:    # doctest: +SKIP
    ...     helpers.fetch(f"http://127.0.0.1:{local_port}/")
    """
    target = pod if "/" in pod else f"pod/{pod}"
    found = get(target, ns)  # a missing pod fails here, with a clear error, not in a thread
    name, where = found.name, found.namespace
    with api_errors(f"port-forward to {target}"):
        core = k8s_client.CoreV1Api(api())
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.5)
    stop = threading.Event()
    # Errors end one forwarded connection quietly (the client sees it close); a thread must not
    # print a traceback into the notebook.
    quiet: tuple[type[BaseException], ...] = (ApiException, OSError, *CONNECTION_ERRORS)

    def pump(source: Callable[[], bytes], sink: Callable[[bytes], Any]) -> None:
        while not stop.is_set():
            try:
                data = source()
            except TimeoutError:
                continue
            except quiet:
                return
            if not data:
                return
            try:
                sink(data)
            except quiet:
                return

    def serve(conn: socket.socket) -> None:
        try:
            forward = k8s_portforward(
                core.connect_get_namespaced_pod_portforward, name, where, ports=str(port)
            )
            remote = forward.socket(port)
        except quiet:
            conn.close()
            return
        remote.settimeout(0.5)
        conn.settimeout(0.5)
        back = threading.Thread(
            target=pump, args=(lambda: remote.recv(65536), conn.sendall), daemon=True
        )
        back.start()
        pump(lambda: conn.recv(65536), remote.sendall)
        conn.close()
        with suppress(*quiet):
            forward.close()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept_loop, name="course-port-forward", daemon=True)
    acceptor.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        acceptor.join(timeout=2)
        listener.close()


# The API server or the client going away in the middle of a streamed answer.
stream_errors: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, OSError)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path, _, query_text = self.path.partition("?")
        query = dict(parse_qsl(query_text, keep_blank_values=True))
        try:
            timeout = float(query.get("timeoutSeconds", 30)) + 10
        except ValueError:
            timeout = 40.0
        try:
            upstream = send("GET", path, query=query, timeout=timeout)
        except ApiException as error:
            body = error.body if isinstance(error.body, bytes) else str(error.body or "").encode()
            self._reply(int(error.status or 502), body)
            return
        except CONNECTION_ERRORS as error:  # the cluster is down: say so, as kubectl proxy does
            self.send_error(502, f"the API server does not answer: {error}"[:200])
            return
        self.send_response(upstream.status)
        self.send_header("Content-Type", upstream.headers.get("Content-Type", "application/json"))
        self.end_headers()
        try:
            for chunk in upstream.stream(amt=None, decode_content=True):
                self.wfile.write(chunk)
                self.wfile.flush()
        except stream_errors:
            pass  # the API server or the client went away mid-stream; nothing more to send
        finally:
            upstream.release_conn()

    def _reply(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:  # keep the notebook quiet
        return


@contextmanager
def api_proxy() -> Iterator[str]:
    """Serve the API server on ``http://127.0.0.1:PORT`` without certificates while the ``with``
    block runs, so plain HTTP (urllib, curl) can talk to it. It forwards GET requests, watches
    included, with your credentials. Gives the base URL.

    CLI: ``kubectl proxy --port=8001``

    >>> with api_proxy() as base:                                         # doctest: +SKIP
    ...     urllib.request.urlopen(base + "/api/v1/namespaces").read()
    """
    with api_errors("starting the API proxy"):
        api()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="course-api-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
