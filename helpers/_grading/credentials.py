"""The cluster credentials a graded notebook gets: a kubeconfig of one context, with everything
inlined, readable by the sandbox's user only; and where its API server is, for the network relay.

The notebook never sees the file it came from, nor the certificate and key files that file names
(the local cluster's admin key among them): only this copy, mounted read-only in the sandbox.
"""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .._errors import CourseError

# kubeconfig fields that name a file, and the field that holds the same thing inline
INLINED = {
    "certificate-authority": "certificate-authority-data",
    "client-certificate": "client-certificate-data",
    "client-key": "client-key-data",
}


def _read(base: Path, name: str) -> bytes:
    path = Path(name) if os.path.isabs(name) else base / name
    try:
        return path.read_bytes()
    except OSError as error:
        raise CourseError(
            f"The kubeconfig names {path}, which cannot be read: {error.strerror}.",
            hint="Fix the kubeconfig (kubectl config view --flatten shows what it holds).",
        ) from None


def flatten(path: Path) -> dict[str, Any]:
    """The current context of the kubeconfig at ``path`` as a kubeconfig of its own: one cluster,
    one user, one context, files inlined (``kubectl config view --minify --flatten``)."""
    try:
        config: Any = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise CourseError(
            f"Cannot read the kubeconfig {path}: {error}.",
            hint="Check KUBECONFIG, or run make cluster.",
        ) from None
    current = config.get("current-context")
    context = next((c for c in config.get("contexts") or [] if c.get("name") == current), None)
    if context is None:
        raise CourseError(
            f"The kubeconfig {path} has no current context.",
            hint="kubectl config use-context NAME picks one.",
        )
    wanted = context.get("context") or {}

    def entry(kind: str, key: str) -> dict[str, Any]:
        name = wanted.get(key)
        found = next((e for e in config.get(kind) or [] if e.get("name") == name), None)
        if found is None:
            raise CourseError(f"The kubeconfig {path} has no {key} named {name!r}.")
        return dict(found.get(key) or {})

    cluster, user = entry("clusters", "cluster"), entry("users", "user")
    for fields in (cluster, user):
        for field, inline in INLINED.items():
            if fields.get(field):
                fields[inline] = base64.b64encode(_read(path.parent, fields.pop(field))).decode()
    if user.get("tokenFile"):
        user["token"] = _read(path.parent, user.pop("tokenFile")).decode().strip()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "course", "cluster": cluster}],
        "users": [{"name": "course", "user": user}],
        "contexts": [
            {
                "name": "course",
                "context": {
                    "cluster": "course",
                    "user": "course",
                    **({"namespace": wanted["namespace"]} if wanted.get("namespace") else {}),
                },
            }
        ],
        "current-context": "course",
    }


def write_private(config: dict[str, Any], path: Path, owner: tuple[int, int] | None) -> Path:
    """Write ``config`` to ``path``, readable by ``owner`` (uid, gid) alone (None: by us)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(descriptor, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    if owner is not None:
        os.chown(path, *owner)
    return path


def api_server(config: dict[str, Any]) -> tuple[str, int, list[str]]:
    """The API server's host name, port and addresses (resolved here) of a flattened config."""
    server = str(config["clusters"][0]["cluster"].get("server", ""))
    parts = urlsplit(server)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise CourseError(f"The kubeconfig's server {server!r} is not an http(s) address.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise CourseError(
            f"The API server's name {parts.hostname} does not resolve here: {error}.",
            hint="Check the kubeconfig's server address.",
        ) from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    return parts.hostname, port, addresses
