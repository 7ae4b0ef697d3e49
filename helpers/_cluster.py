"""Which cluster the course talks to, how to reach it, and how to put images into it.

Backends:
    kind        a kind cluster named "cloud-native-course" (the learner default; $COURSE_KIND_CLUSTER
                names another, as `make test-kind` does, so testing never touches the learner's)
    local       the single-node cluster built from upstream binaries (cluster/local/, Linux + root)
    kubeconfig  whatever cluster the current kubeconfig context points at (a shared classroom cluster)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ._errors import CommandFailed, CourseError
from ._output import step

LEARNER_KIND_CLUSTER = "cloud-native-course"
KIND_CLUSTER_NAME = os.environ.get("COURSE_KIND_CLUSTER") or LEARNER_KIND_CLUSTER
KIND_CONTEXT = f"kind-{KIND_CLUSTER_NAME}"
LOCAL_STATE_DIR = Path(os.environ.get("COURSE_STATE_DIR", "/var/lib/cloud-native-course"))
LOCAL_KUBECONFIG = LOCAL_STATE_DIR / "kubeconfig"
REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Where slow artifacts live (cluster/local/versions.sh's CACHE_DIR): $COURSE_CACHE, else
    ~/.cache/cloud-native-course."""
    return Path(os.environ.get("COURSE_CACHE", Path.home() / ".cache" / "cloud-native-course"))


def kubeconfig_path() -> str | None:
    """The kubeconfig in use: $KUBECONFIG, else the local cluster's, else ~/.kube/config."""
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"]
    if backend() == "local" and LOCAL_KUBECONFIG.exists():
        return str(LOCAL_KUBECONFIG)
    default = Path.home() / ".kube" / "config"
    return str(default) if default.exists() else None


def backend() -> str:
    """Which cluster the course talks to: ``kind``, ``local`` or ``kubeconfig``.

    $COURSE_CLUSTER decides (``make`` sets it); else it is guessed from what exists.
    CLI: ``kubectl config current-context``
    """
    chosen = os.environ.get("COURSE_CLUSTER")
    if chosen:
        if chosen not in {"kind", "local", "kubeconfig"}:
            raise CourseError(
                f"COURSE_CLUSTER={chosen!r} is not a cluster backend.",
                hint="Use COURSE_CLUSTER=kind, local or kubeconfig.",
            )
        return chosen
    kubeconfig = os.environ.get("KUBECONFIG", "")
    if kubeconfig and Path(kubeconfig).resolve() == LOCAL_KUBECONFIG.resolve():
        return "local"
    if not kubeconfig and LOCAL_KUBECONFIG.exists() and not shutil.which("kind"):
        return "local"
    return "kind" if shutil.which("kind") else "kubeconfig"


def start_hint() -> str:
    """How to start the cluster of the backend in use."""
    return {
        "kind": "Start it with `make cluster` (kind). Is Docker running? Try `make doctor`.",
        "local": "Start it with `make cluster CLUSTER=local` (as root). Logs: "
        "/var/log/cloud-native-course/.",
        "kubeconfig": "Check `kubectl config current-context` and that the cluster is up; "
        "ask your instructor for a working kubeconfig.",
    }[backend()]


def _run(command: list[str], *, stdin: bytes | None = None, timeout: float = 300) -> bytes:
    try:
        done = subprocess.run(
            command, input=stdin, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise CommandFailed(
            f"{command[0]} is not installed.",
            command=command,
            hint=f"Install {command[0]}; `make doctor` lists what is missing.",
        ) from None
    if done.returncode != 0:
        raise CommandFailed(
            f"{command[0]} failed (exit {done.returncode}).",
            command=command,
            output=(done.stderr or done.stdout).decode(errors="replace"),
        )
    return done.stdout


def _local_cluster_has(tag: str) -> bool:
    """Whether the local cluster's containerd holds ``tag`` as the same image Docker has (the
    config digest of its manifest is Docker's image ID)."""
    first = tag.split("/", 1)[0]
    has_registry = "/" in tag and ("." in first or ":" in first or first == "localhost")
    name = tag if has_registry else f"docker.io/{tag}"  # containerd's full name
    listed = _run(["ctr", "-n", "k8s.io", "images", "ls", f"name=={name}"]).decode().splitlines()
    digests = [line.split()[2] for line in listed[1:] if len(line.split()) > 2]
    if len(digests) != 1:
        return False
    manifest = json.loads(_run(["ctr", "-n", "k8s.io", "content", "get", digests[0]]))
    wanted = _run(["docker", "image", "inspect", "--format", "{{.Id}}", tag]).decode().strip()
    return bool(manifest.get("config", {}).get("digest") == wanted)


def load_image(tag: str) -> None:
    """Make a locally built image available to the cluster's nodes, so pods can use it
    without pulling. The tag must be fixed (``:v1``, never ``:latest``).

    CLI: ``kind load docker-image TAG --name cloud-native-course`` (kind), or
    ``docker save TAG | ctr -n k8s.io images import -`` (the local cluster)
    """
    if tag.endswith(":latest") or ":" not in tag.rsplit("/", 1)[-1]:
        raise CourseError(
            f"{tag!r} has no fixed version tag.",
            hint="Tag images like course/web:v1; with :latest the kubelet always pulls.",
        )
    which = backend()
    with step(f"Loading {tag} into the {which} cluster"):
        if which == "local":
            if _local_cluster_has(tag):
                return  # as kind does: importing again would rewrite what running pods use
            archive = _run(["docker", "save", tag], timeout=120)
            _run(["ctr", "-n", "k8s.io", "images", "import", "-"], stdin=archive)
        elif which == "kind":
            try:
                _run(["kind", "load", "docker-image", tag, "--name", KIND_CLUSTER_NAME])
            except CommandFailed:
                # Docker Desktop's containerd image store breaks `kind load docker-image`.
                with tempfile.TemporaryDirectory() as folder:
                    archive_path = str(Path(folder) / "image.tar")
                    _run(["docker", "save", "-o", archive_path, tag])
                    _run(
                        ["kind", "load", "image-archive", archive_path, "--name", KIND_CLUSTER_NAME]
                    )
        else:
            raise CourseError(
                f"Cannot load {tag} into a shared cluster from here.",
                hint="On a classroom cluster the instructor makes the course images available "
                "on every node (or in a registry the nodes can reach).",
            )


# Where "manual" (hostPath) volumes live inside every node, on every backend.
NODE_VOLUMES_DIR = "/var/lib/cloud-native-course/volumes"


def volumes_folder() -> Path | None:
    """The folder on *this* machine where the nodes' manual volumes appear (hostPath volumes
    under ``/var/lib/cloud-native-course/volumes`` on the node): the node's own folder on the
    local cluster, ``cluster/volumes`` in the course folder on kind (mounted into each node).
    None for a shared cluster, whose nodes are elsewhere.

    CLI: ``ls /var/lib/cloud-native-course/volumes`` (local) or ``ls cluster/volumes`` (kind)
    """
    kind = REPO_ROOT / "cluster" / "volumes"  # cluster/kind.sh's volumes_dir agrees
    if KIND_CLUSTER_NAME != LEARNER_KIND_CLUSTER:
        kind = kind.with_name(f"volumes-{KIND_CLUSTER_NAME}")
    return {"local": Path(NODE_VOLUMES_DIR), "kind": kind}.get(backend())
