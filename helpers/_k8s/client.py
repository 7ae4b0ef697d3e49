"""The connection to the API server, one HTTP request, and the one place where the client
library's errors become course errors (``api_errors``).

The official ``kubernetes`` client reads the kubeconfig and handles TLS and the exec and
port-forward streams. Everything else is a plain HTTP request that the helpers build themselves,
so each docstring can name the request it sends.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import urllib3
import websocket
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from .._cluster import backend, kubeconfig_path, start_hint
from .._errors import (
    ClusterUnreachable,
    CourseError,
    Forbidden,
    KubernetesError,
    ManifestRejected,
    ObjectNotFound,
)

_api: k8s_client.ApiClient | None = None

# What a broken connection raises, from the socket up to the client library. Anything else that
# escapes a request (a TypeError, say) is a bug in the helpers and is left alone.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    ssl.SSLError,
    urllib3.exceptions.HTTPError,
    websocket.WebSocketException,
)


def api() -> k8s_client.ApiClient:
    """The API client for the course's cluster (KUBECONFIG and its current context)."""
    global _api
    if _api is None:
        path = kubeconfig_path()
        try:
            _api = k8s_config.new_client_from_config(config_file=path)  # type: ignore[no-untyped-call]
        except (ConfigException, OSError, TypeError, ValueError) as error:
            raise ClusterUnreachable(
                f"No usable kubeconfig ({path or 'none found'}): {error}",
                hint=start_hint(),
            ) from None
    return _api


def reconnect() -> None:
    """Forget the connection, so the next call reads the kubeconfig again."""
    global _api
    _api = None
    from . import discovery

    discovery.forget()


def server() -> str:
    """The API server's address, e.g. ``https://127.0.0.1:6443``."""
    return str(api().configuration.host)


def _status_of(error: ApiException) -> dict[str, Any]:
    try:
        status = json.loads(error.body or "{}")
    except (ValueError, TypeError):
        return {}
    return status if isinstance(status, dict) else {}


def _from_api_exception(error: ApiException, what: str) -> KubernetesError:
    """One sentence and a fix for an HTTP error answer of the API server."""
    status = _status_of(error)
    code = int(error.status or 0)
    message = str(status.get("message") or error.reason or code)
    if code in (401, 403):
        return Forbidden(
            f"{what}: forbidden. The API server said: {message}",
            hint="Your credentials may not do this. Work in your own namespace (k8s.namespace()); "
            "in a classroom, ask your instructor which namespaces are yours.",
        )
    if code == 404:
        return ObjectNotFound(
            f"{what}: not found. {message}",
            hint="Check the name and the namespace; list what exists with k8s.list_objects(KIND, ns).",
        )
    fields = [
        c["field"] for c in (status.get("details") or {}).get("causes") or [] if c.get("field")
    ]
    typed = re.search(r"failed to create typed patch object \([^)]*\): (\.[^:]+): (.*)", message)
    if typed:  # server-side apply checks the schema first, and answers 500 for a bad field
        fields, message, code = [typed.group(1).lstrip(".")], typed.group(2), 422
    if code in (400, 409, 415, 422):
        field_text = f" Field: {', '.join(fields)}." if fields else ""
        immutable = "immutable" in message or "may not change fields other than" in message
        return ManifestRejected(
            f"{what}: the API server rejected it. It said: {message}.{field_text}",
            hint=(
                "Most of a pod's spec cannot change once it exists: delete the object and "
                "create it again, e.g. k8s.delete('pod/NAME', ns) then k8s.apply(...)."
                if immutable
                else "Fix that field in the manifest and apply it again. The schema of a field: "
                "kubectl explain KIND.FIELD (for example kubectl explain pod.spec.containers)."
            ),
        )
    if code == 503:
        return KubernetesError(
            f"{what}: the API server answered 503 (service unavailable). {message}",
            hint="What you asked for is not ready yet (a pod starting, a metrics add-on "
            "missing). `make doctor` lists the cluster's add-ons.",
        )
    return KubernetesError(f"{what}: HTTP {code}. {message}")


def unreachable(error: BaseException, what: str) -> ClusterUnreachable:
    """The error for a connection to the API server that failed or broke."""
    address = f" at {_api.configuration.host}" if _api is not None else ""
    return ClusterUnreachable(
        f"{what}: the {backend()} cluster's API server{address} does not answer.",
        hint=start_hint(),
        output=f"{type(error).__name__}: {error}"[:300],
    )


@contextmanager
def api_errors(what: str) -> Iterator[None]:
    """Turn the client library's errors inside the block into course errors.

    This is the only place they are mapped: an HTTP error answer becomes Forbidden,
    ObjectNotFound, ManifestRejected or KubernetesError; a failed or broken connection becomes
    ClusterUnreachable.
    """
    try:
        yield
    except CourseError:
        raise
    except ApiException as error:
        refused = re.match(r"Handshake status (\d+)", str(error.reason or ""))
        if not error.status and refused:  # exec and attach: the server answered, with an error
            error.status, error.reason = int(refused.group(1)), "the server refused the stream"
        if not error.status:  # the stream clients report a failed connection as status 0
            raise unreachable(error, what) from None
        raise _from_api_exception(error, what) from None
    except CONNECTION_ERRORS as error:
        raise unreachable(error, what) from None


def send(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: Mapping[str, Any] | None = None,
    content_type: str = "application/json",
    accept: str = "application/json",
    timeout: float = 30,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """Send one request; return the urllib3 response, unread (so watches can stream it).

    Raises the client library's errors: callers wrap it in ``api_errors``.
    """
    client = api()
    prepared = client.param_serialize(
        method=method,
        resource_path=path,
        query_params=[(k, v) for k, v in (query or {}).items() if v is not None],
        header_params={"Accept": accept, "Content-Type": content_type, **(headers or {})},
        body=body,
        auth_settings=["BearerToken"],
    )
    reply = client.call_api(*prepared, _request_timeout=timeout)
    if reply.status >= 400:
        reply.read()  # type: ignore[no-untyped-call]
        raise ApiException(http_resp=reply)
    return reply.response


def request(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: Mapping[str, Any] | None = None,
    content_type: str = "application/json",
    timeout: float = 30,
    what: str | None = None,
) -> Any:
    """Send one HTTP request to the API server; return the decoded JSON (or the text).

    This is all the Kubernetes API is: ``GET /api/v1/namespaces/NS/pods`` and friends. Query
    parameters go in ``query`` (``{"verbose": "true"}``). A watch (``query={"watch": "1",
    "timeoutSeconds": "5", ...}``) returns the list of events the server sent until it ended.

    CLI: ``kubectl get --raw PATH`` (GET), ``kubectl create --raw PATH -f FILE`` (POST)

    >>> request("GET", "/version")["gitVersion"]   # doctest: +SKIP
    'v1.35.4'
    """
    with api_errors(what or f"{method} {path}"):
        reply = send(
            method, path, body=body, query=query, content_type=content_type, timeout=timeout
        )
        text = bytes(reply.data).decode(errors="replace")
    if str((query or {}).get("watch", "")).lower() in ("1", "true"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    try:
        return json.loads(text)
    except ValueError:
        return text


def watch(
    path: str,
    resource_version: str,
    seconds: int,
    *,
    field_selector: str | None = None,
    label_selector: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The changes to a collection from ``resource_version`` on, as they arrive, for at most
    ``seconds``: ``GET PATH?watch=1&resourceVersion=V&timeoutSeconds=S``. Each is a dict with
    ``type`` (ADDED, MODIFIED, DELETED, ERROR) and ``object``."""
    query = {
        "watch": "1",
        "resourceVersion": resource_version,
        "timeoutSeconds": str(max(1, seconds)),
        "fieldSelector": field_selector,
        "labelSelector": label_selector,
    }
    with api_errors(f"watching {path}"):
        stream = send("GET", path, query=query, timeout=seconds + 10)
        try:
            buffer = b""
            for chunk in stream.stream(amt=None, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            stream.release_conn()


def get_or_none(path: str) -> dict[str, Any] | None:
    """GET one object's JSON, or None when it does not exist (404)."""
    try:
        found = request("GET", path)
    except ObjectNotFound:
        return None
    return found if isinstance(found, dict) else None
