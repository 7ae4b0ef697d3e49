"""The kind cluster as learners get it (`make test-kind` creates it from a node image built on this
machine, cluster/kind/README.md): two nodes, the course images in both, cluster/volumes seen by
pods on either node, and pods on different nodes that reach each other. Plain kubectl and docker,
as in tests/test_addons.py. Skipped unless COURSE_CLUSTER=kind."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from helpers._cluster import volumes_folder

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.docker,
    pytest.mark.skipif(
        os.environ.get("COURSE_CLUSTER") != "kind", reason="the kind cluster only (make test-kind)"
    ),
]

REPO = Path(__file__).resolve().parent.parent
NS = "pytest-kind"
CLUSTER = os.environ.get("COURSE_KIND_CLUSTER", "cloud-native-course")
CONTROL_PLANE, WORKER = f"{CLUSTER}-control-plane", f"{CLUSTER}-worker"
VOLUMES_IN_NODE = "/var/lib/cloud-native-course/volumes"  # cluster/kind.yaml's extraMounts
T = TypeVar("T")


def kubectl(*args: str, stdin: str | None = None, timeout: float = 60) -> str:
    done = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def get(what: str, ns: str | None = NS) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        kubectl("get", what, "-o", "json", *(["-n", ns] if ns else []))
    )
    return found


def apply(*objects: dict[str, Any]) -> None:
    items = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    kubectl("apply", "-n", NS, "-f", "-", stdin=json.dumps(items))


def wait_until(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last seen: {last!r})")


def ready(name: str) -> bool:
    conditions = get(f"pod/{name}").get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def pod_on(name: str, node: str, command: str | None = None, **spec: Any) -> dict[str, Any]:
    """A course/web:v1 pod pinned to node (the control plane's taint tolerated)."""
    container: dict[str, Any] = {"name": "main", "image": "course/web:v1"}
    if command:
        container["command"] = ["sh", "-c", command]
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}],
            "containers": [container],
            "terminationGracePeriodSeconds": 1,
            **spec,
        },
    }


def in_node(node: str, *command: str) -> str:
    done = subprocess.run(["docker", "exec", node, *command], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def ns() -> Iterator[str]:
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", timeout=120)
    kubectl("create", "namespace", NS)
    yield NS
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=false")


def test_two_nodes_a_control_plane_and_a_worker_on_the_local_clusters_version() -> None:
    nodes = {n["metadata"]["name"]: n for n in get("nodes", None)["items"]}
    assert sorted(nodes) == [CONTROL_PLANE, WORKER]
    for node in nodes.values():
        ready_now = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready_now[0]["status"] == "True", node["metadata"]["name"]
        # the same Kubernetes as the local cluster (cluster/local/versions.sh)
        assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.35.")
    assert "node-role.kubernetes.io/control-plane" in nodes[CONTROL_PLANE]["metadata"]["labels"]
    # with a worker, kind keeps the control plane's taint: ordinary pods all go to the worker
    taints = [t["key"] for t in nodes[CONTROL_PLANE]["spec"].get("taints", [])]
    assert "node-role.kubernetes.io/control-plane" in taints
    assert not nodes[WORKER]["spec"].get("taints")


def test_the_controller_manager_runs_with_the_courses_autoscaler_period() -> None:
    """cluster/kind.yaml's kubeadm patch reached the control plane, as up.sh sets it locally."""
    pods = get("pods", "kube-system")["items"]
    manager = next(p for p in pods if p["metadata"]["name"].startswith("kube-controller-manager"))
    command = manager["spec"]["containers"][0]["command"]
    assert "--horizontal-pod-autoscaler-sync-period=5s" in command, command


def test_the_course_images_are_in_both_nodes() -> None:
    """`make images` ran `kind load docker-image` (helpers.k8s.load_image): every node has them."""
    for node in (CONTROL_PLANE, WORKER):
        listed = in_node(node, "crictl", "images", "-o", "json")
        tags = {tag for image in json.loads(listed)["images"] for tag in image["repoTags"] or []}
        assert {"docker.io/course/web:v1", "docker.io/course/web:v2"} <= tags, (node, tags)


def test_cluster_volumes_is_the_same_folder_in_pods_on_either_node(ns: str) -> None:
    """A file written into cluster/volumes on this machine is read by a pod on each node through
    a hostPath volume of class manual; what a pod writes there appears in cluster/volumes."""
    folder = f"pytest-kind-{uuid.uuid4().hex[:8]}"
    volumes = volumes_folder()
    assert volumes is not None
    on_host = volumes / folder
    on_host.mkdir(parents=True)
    (on_host / "from-host.txt").write_text("written on the host\n")
    pv = f"{ns}-{folder}"
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv},
        "spec": {
            "storageClassName": "manual",
            "capacity": {"storage": "10Mi"},
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": f"{VOLUMES_IN_NODE}/{folder}", "type": "Directory"},
            "claimRef": {"namespace": ns, "name": "shared"},
        },
    }
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "shared"},
        "spec": {
            "storageClassName": "manual",
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "10Mi"}},
        },
    }
    try:
        kubectl("apply", "-f", "-", stdin=json.dumps(volume))
        apply(claim)
        wait_until(
            "claim shared Bound", lambda: get("pvc/shared")["status"]["phase"] == "Bound", 30
        )
        mounted = {
            "container": {"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "shared"}}],
        }
        for node, name in ((CONTROL_PLANE, "reader-cp"), (WORKER, "reader-worker")):
            apply(
                pod_on(
                    name, node, f"cp /data/from-host.txt /data/{name}.txt && sleep 600", **mounted
                )
            )
        for name in ("reader-cp", "reader-worker"):
            wait_until(f"pod {name} Ready", lambda name=name: ready(name), 60)
            assert get(f"pod/{name}")["spec"]["nodeName"] in (CONTROL_PLANE, WORKER)
            copied = wait_until(
                f"{name}.txt in cluster/volumes",
                lambda name=name: (
                    (on_host / f"{name}.txt").exists() and (on_host / f"{name}.txt").read_text()
                ),
                30,
            )
            assert copied == "written on the host\n"
    finally:
        kubectl("delete", "-n", ns, "pod/reader-cp", "pod/reader-worker", "pvc/shared",
                "--ignore-not-found", "--wait=true", timeout=90)  # fmt: skip
        kubectl("delete", f"pv/{pv}", "--ignore-not-found")
        for file in on_host.iterdir():
            file.unlink()
        on_host.rmdir()


def test_pods_on_different_nodes_reach_each_other_directly_and_through_a_service(ns: str) -> None:
    """The pod network of the node image (kind-network: routes between the nodes' pod ranges)."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web-on-worker"},
        "spec": {"selector": {"app": "web-on-worker"}, "ports": [{"port": 80}]},
    }
    apply(pod_on("web-on-worker", WORKER), service, pod_on("client-cp", CONTROL_PLANE, "sleep 600"))
    wait_until("pods Ready", lambda: ready("web-on-worker") and ready("client-cp"), 60)
    server, client = get("pod/web-on-worker"), get("pod/client-cp")
    assert server["spec"]["nodeName"] == WORKER and client["spec"]["nodeName"] == CONTROL_PLANE
    server_ip = server["status"]["podIP"]
    assert server_ip != client["status"]["podIP"]

    def fetch(url: str) -> str:
        done = subprocess.run(
            ["kubectl", "exec", "-n", ns, "client-cp", "--", "sh", "-c",
             f"timeout 5 wget -q -O - {url}"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        return done.stdout.strip()

    assert fetch(f"http://{server_ip}/version") == "v1", "pod to pod across nodes"
    assert (
        wait_until("the Service answers", lambda: fetch("http://web-on-worker/version"), 30) == "v1"
    )


def test_make_test_kind_names_its_own_cluster_and_deletes_only_the_named_one() -> None:
    """A learner's kind cluster (cloud-native-course) survives `make test-kind`: the tests run on
    a cluster of their own name, and cluster/kind.sh deletes only the cluster it names. kind knows
    a cluster by its node containers' labels: a learner's cluster and a throwaway one stand here
    as such containers."""
    learner = "cloud-native-course"
    assert learner != CLUSTER, "make test-kind runs on a cluster of its own (COURSE_KIND_CLUSTER)"
    throwaway = f"course-decoy-{uuid.uuid4().hex[:6]}"
    listed = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True)
    decoys = [throwaway] + ([] if learner in listed.stdout.split() else [learner])
    for name in decoys:
        subprocess.run(
            ["docker", "run", "-d", "--name", f"{name}-control-plane",
             "--label", f"io.x-k8s.kind.cluster={name}",
             "--label", "io.x-k8s.kind.role=control-plane",
             "course/web:v1", "sleep", "600"],
            check=True, capture_output=True,
        )  # fmt: skip
    try:
        down = subprocess.run(
            ["bash", str(REPO / "cluster/kind.sh"), "down"],
            env={**os.environ, "COURSE_KIND_CLUSTER": throwaway},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert down.returncode == 0, down.stdout + down.stderr
        clusters = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True)
        assert throwaway not in clusters.stdout.split(), "the named cluster is deleted"
        assert learner in clusters.stdout.split(), "the learner's cluster is untouched"
        assert CLUSTER in clusters.stdout.split(), "and so is the one the tests run on"
    finally:
        for name in decoys:
            subprocess.run(["docker", "rm", "-f", f"{name}-control-plane"], capture_output=True)
