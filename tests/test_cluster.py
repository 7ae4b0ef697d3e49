"""Integration tests against the real cluster (the local one here, kind on a laptop).
Nothing is mocked: every call goes to the API server, and pods run in containerd."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import helpers
from helpers import _identity, docker, k8s
from helpers._errors import ClusterUnreachable, CourseError, ManifestRejected, WaitTimeout

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def ns(cluster: None) -> Iterator[str]:
    import os

    os.environ["COURSE_LEARNER"] = "pytest"
    name = k8s.namespace("90-cluster-tests")
    yield name
    k8s.delete_namespace(name, wait_until_gone=False)


def pod(
    name: str, image: str = "course/web:v1", command: list[str] | None = None, **spec: Any
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "web", "image": image}
    if command:
        container["command"] = command
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 1, **spec},
    }


def deployment(name: str, replicas: int = 1, image: str = "course/web:v1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "web",
                            "image": image,
                            "readinessProbe": {
                                "httpGet": {"path": "/healthz", "port": 80},
                                "periodSeconds": 1,
                            },
                        }
                    ],
                },
            },
        },
    }


def test_namespace_is_per_learner_and_labelled(ns: str) -> None:
    assert ns == "pytest-90-cluster-tests"
    labels = k8s.get(f"namespace/{ns}").metadata["labels"]
    assert labels["course.learner"] == "pytest" and labels["course.chapter"] == "90-cluster-tests"
    assert k8s.namespace("90-cluster-tests") == ns, "asking again is a no-op"


def test_a_pod_from_the_course_image_runs_and_answers(ns: str) -> None:
    k8s.apply(pod("web"), ns)
    ready = k8s.wait("pod/web", "Ready", ns, timeout=60)
    assert ready is not None and ready.status["phase"] == "Running"
    assert "web v1 starting" in k8s.logs("web", ns)
    result = k8s.exec("web", "cat /www/version; exit 4", ns)
    assert result.stdout.strip() == "v1" and result.returncode == 4
    page = helpers.fetch("pod/web", ns)
    assert "Course web app v1" in page and "Served by web" in page
    with k8s.port_forward("pod/web", 80, ns) as local_port:
        assert helpers.fetch(f"http://127.0.0.1:{local_port}/version").strip() == "v1"
    assert "response:200" in k8s.logs("web", ns)
    table = k8s.pods(ns)
    assert table[table.column("name").index("web")]["status"] == "Running"
    assert any(r["reason"] == "Scheduled" for r in k8s.events(ns, about="pod/web"))


def test_the_two_container_pod_shares_one_network(ns: str) -> None:
    manifest = pod(
        "two",
        containers=[
            {"name": "web", "image": "course/web:v1"},
            {"name": "sidecar", "image": "course/web:v1", "command": ["sh", "-c", "sleep 3600"]},
        ],
    )
    k8s.apply(manifest, ns)
    k8s.wait("pod/two", "Ready", ns, timeout=60)
    answer = k8s.exec("two", "wget -q -O - http://localhost:80/version", ns, container="sidecar")
    assert answer.stdout.strip() == "v1", answer
    assert k8s.exec("two", "hostname", ns, container="sidecar").stdout.strip() == "two"


def test_a_deployment_scales_and_replaces_a_deleted_pod(ns: str) -> None:
    k8s.apply(deployment("scaled", 1), ns)
    k8s.wait("deploy/scaled", "Complete", ns, timeout=60)
    k8s.scale("deploy/scaled", 3, ns)
    k8s.wait("deploy/scaled", "Complete", ns, timeout=60)
    names = k8s.pods(ns, selector="app=scaled").column("name")
    assert len(names) == 3
    k8s.delete(f"pod/{names[0]}", ns)
    k8s.wait("deploy/scaled", "Complete", ns, timeout=60)
    after = k8s.pods(ns, selector="app=scaled").column("name")
    assert len(after) == 3 and names[0] not in after


def versions_served(ns: str, selector: str) -> set[str]:
    live = [p["name"] for p in k8s.pods(ns, selector=selector) if p["status"] != "Terminating"]
    return {helpers.fetch(f"pod/{name}", ns, path="/version").strip() for name in live}


def test_a_rolling_update_completes_and_rolls_back(ns: str) -> None:
    k8s.apply(deployment("rolling", 2), ns)
    k8s.wait("deploy/rolling", "Complete", ns, timeout=60)
    k8s.set_image("deploy/rolling", "web", "course/web:v2", ns, reason="v2 please")
    k8s.wait("deploy/rolling", "Complete", ns, timeout=90)
    assert versions_served(ns, "app=rolling") == {"v2"}
    history = k8s.rollout_history("deploy/rolling", ns)
    assert history.column("revision") == [1, 2]
    assert history.column("images") == ["course/web:v1", "course/web:v2"]
    assert history[1]["change-cause"] == "v2 please"
    k8s.rollback("deploy/rolling", ns)
    k8s.wait("deploy/rolling", "Complete", ns, timeout=90)
    assert versions_served(ns, "app=rolling") == {"v1"}
    assert k8s.rollout_history("deploy/rolling", ns).column("revision") == [2, 3]


def test_a_rollout_chart_made_while_grading_still_sees_the_whole_rollout(
    ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While grading, no thread follows the watch: what the chart reports must catch up anyway.
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    k8s.apply(deployment("graded", 2), ns)
    k8s.wait("deploy/graded", "Complete", ns, timeout=60)
    chart = k8s.rollout_chart("graded", ns)
    assert not chart.running
    k8s.set_image("deploy/graded", "web", "course/web:v2", ns)
    k8s.wait("deploy/graded", "Complete", ns, timeout=90)
    assert (chart.peak_pods(), chart.fewest_ready()) == (3, 2)  # maxSurge 1, maxUnavailable 0
    assert len(chart.timeline()[-1][1]) == 2, "both ReplicaSets are on the chart"
    assert chart.stop().png


def test_a_volume_is_labelled_as_yours_and_grading_cleanup_removes_only_that_students(
    ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers._grading.cleanup import remove_learner_resources

    def volume(name: str) -> dict[str, Any]:
        spec = {"capacity": {"storage": "1Mi"}, "accessModes": ["ReadWriteOnce"]}
        spec |= {"storageClassName": "manual", "hostPath": {"path": f"/tmp/{name}"}}
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name},
            "spec": spec,
        }

    mine = k8s.apply(volume(f"{ns}-mine"))[0]
    assert mine.labels["course.learner"] == "pytest"
    monkeypatch.setenv("COURSE_LEARNER", "pytest-other")
    k8s.apply(volume(f"{ns}-theirs"))
    removed = remove_learner_resources("pytest-other", timeout=None)
    assert removed.cluster_objects == [f"persistentvolume/{ns}-theirs"]
    assert k8s.exists(f"pv/{ns}-mine")
    k8s.wait(f"pv/{ns}-theirs", "deleted", timeout=30)
    k8s.delete(f"pv/{ns}-mine")


def test_a_manual_pv_keeps_data_across_pods_and_the_default_class_provisions(ns: str) -> None:
    folder = Path("/var/lib/cloud-native-course/volumes") / ns  # on the node
    # ... which on kind is a folder of the course on this machine (cluster/kind.yaml's extraMounts)
    from helpers import _cluster

    volumes = _cluster.volumes_folder()
    assert volumes is not None, "local or kind: the volumes are on this machine"
    on_host = volumes / ns
    pv_name = f"{ns}-manual"
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name, "labels": {"course.learner": "pytest"}},
        "spec": {
            "storageClassName": "manual",
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "hostPath": {"path": str(folder), "type": "DirectoryOrCreate"},
            "claimRef": {"namespace": ns, "name": "manual-claim"},
        },
    }
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "manual-claim"},
        "spec": {
            "storageClassName": "manual",
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    try:
        k8s.apply([volume], None)
        k8s.apply(claim, ns)
        k8s.wait("pvc/manual-claim", "Bound", ns, timeout=30)
        mounted = {
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "manual-claim"}}]
        }
        writer = pod("writer", **mounted)
        writer["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        k8s.apply(writer, ns)
        k8s.wait("pod/writer", "Ready", ns, timeout=60)
        k8s.exec("writer", "echo kept > /data/note.txt", ns).check_returncode()
        k8s.delete("pod/writer", ns, timeout=60)
        reader = yaml.safe_load(yaml.safe_dump(writer))
        reader["metadata"]["name"] = "reader"
        k8s.apply(reader, ns)
        k8s.wait("pod/reader", "Ready", ns, timeout=60)
        assert k8s.exec("reader", "cat /data/note.txt", ns).stdout.strip() == "kept"
        assert (on_host / "note.txt").read_text().strip() == "kept", "visible from the host too"

        dynamic = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "dynamic"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "100Mi"}},
            },
        }
        k8s.apply(dynamic, ns)
        time.sleep(2)
        # The default class binds a claim once a pod uses it (WaitForFirstConsumer), on kind too.
        assert k8s.get("pvc/dynamic", ns).status["phase"] == "Pending"
        consumer = pod("consumer")
        consumer["spec"]["volumes"] = [
            {"name": "data", "persistentVolumeClaim": {"claimName": "dynamic"}}
        ]
        consumer["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        k8s.apply(consumer, ns)
        bound = k8s.wait("pvc/dynamic", "Bound", ns, timeout=60)
        assert bound.spec["storageClassName"] == "standard"
    finally:
        k8s.delete("pod/consumer", ns, wait_until_gone=True)
        k8s.delete("pod/reader", ns, wait_until_gone=True)
        k8s.delete("pvc/manual-claim", ns)
        k8s.delete(f"pv/{pv_name}", None, wait_until_gone=False)


def test_the_summary_api_sees_a_busy_pod(ns: str) -> None:
    k8s.apply(pod("busy", command=["sh", "-c", "while :; do :; done"]), ns)
    k8s.wait("pod/busy", "Ready", ns, timeout=60)
    deadline = time.monotonic() + 60
    cpu = 0.0
    while time.monotonic() < deadline and cpu < 20:
        cpu = next((u.cpu_percent for u in k8s.usage(ns) if u.name == "busy"), 0.0)
        time.sleep(2)
    assert cpu >= 20, f"busy pod CPU {cpu}%"
    containers = k8s.usage(ns, containers=True)
    assert any(u.name == "busy/web" and u.memory_mib > 0 for u in containers)
    k8s.delete("pod/busy", ns, wait_until_gone=False)


def test_course_images_are_loaded_into_the_cluster(ns: str) -> None:
    _identity.chapter("90-cluster-tests")
    tag = docker.build(".", "loaded:v1", dockerfile="FROM course/web:v1\nENV VERSION=loaded\n")
    try:
        k8s.load_image(tag)
        k8s.apply(pod("loaded", image=tag), ns)
        k8s.wait("pod/loaded", "Ready", ns, timeout=60)
        assert helpers.fetch("pod/loaded", ns, path="/version").strip() == "loaded"
    finally:
        docker.cleanup()
    with pytest.raises(CourseError, match="fixed version tag"):
        k8s.load_image("course/web:latest")


# --- bad input ------------------------------------------------------------------------------


def test_a_wrong_field_or_type_gets_the_servers_message_and_the_field(ns: str) -> None:
    wrong_type = pod("bad")
    wrong_type["spec"]["containers"][0]["ports"] = [{"containerPort": "eighty"}]
    with pytest.raises(ManifestRejected) as caught:
        k8s.apply(wrong_type, ns)
    assert "containerPort" in str(caught.value) and "expected numeric" in str(caught.value)
    wrong_field = pod("bad", restartPolicy="Sometimes")
    with pytest.raises(ManifestRejected) as caught:
        k8s.apply(wrong_field, ns)
    assert "spec.restartPolicy" in str(caught.value) and "Sometimes" in str(caught.value)
    assert not k8s.exists("pod/bad", ns)


def test_a_missing_image_is_surfaced_not_waited_out(ns: str) -> None:
    k8s.apply(pod("ghost", image="course/ghost:v9"), ns)
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        k8s.wait("pod/ghost", "Ready", ns, timeout=120)
    assert time.monotonic() - started < 45, "ErrImagePull must end the wait early"
    assert "ErrImagePull" in str(caught.value) or "ImagePullBackOff" in str(caught.value)
    k8s.delete("pod/ghost", ns, wait_until_gone=False)


def test_a_wait_that_times_out_reports_the_last_state_and_events(ns: str) -> None:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "orphan"},
        "spec": {
            "storageClassName": "no-such-class",
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    k8s.apply(claim, ns)
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        k8s.wait("pvc/orphan", "Bound", ns, timeout=4)
    assert 3.5 < time.monotonic() - started < 10
    message = str(caught.value)
    assert "Last state seen: Pending" in message and "k8s.events" in message
    k8s.delete("pvc/orphan", ns)


def test_an_unreachable_cluster_says_how_to_start_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from helpers._k8s import client

    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "dead",
                "clusters": [
                    {
                        "name": "dead",
                        "cluster": {
                            "server": "https://127.0.0.1:9",
                            "insecure-skip-tls-verify": True,
                        },
                    }
                ],
                "users": [{"name": "dead", "user": {"token": "x"}}],
                "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "dead"}}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(dead))
    monkeypatch.setenv("COURSE_CLUSTER", "local")
    client.reconnect()
    try:
        with pytest.raises(ClusterUnreachable) as caught:
            k8s.request("GET", "/version")
        assert "make cluster" in str(caught.value) and "127.0.0.1:9" in str(caught.value)
    finally:
        monkeypatch.undo()
        client.reconnect()


def test_the_pod_monitor_plots_the_summary_api(ns: str) -> None:
    import threading

    k8s.apply(pod("hot", command=["sh", "-c", "while :; do :; done"]), ns)
    k8s.wait("pod/hot", "Ready", ns, timeout=60)
    monitor = k8s.monitor(ns, interval=0.5)
    time.sleep(2)
    picture = monitor.stop()
    assert not any(t.name == "course-live-view" for t in threading.enumerate()), "it ended"
    assert picture.png[:4] == b"\x89PNG"
    assert "hot" in monitor.names() and len(monitor.series("hot")) >= 2
    assert monitor.image.value[:4] == b"\x89PNG"
    k8s.delete("pod/hot", ns, wait_until_gone=False)


@pytest.mark.lifecycle
def test_a_stopped_api_server_is_reported_and_make_cluster_restarts_it(ns: str) -> None:
    """The local backend only: stop the real kube-apiserver, then bring it back with up.sh."""
    import os
    import signal
    import subprocess

    from helpers import _cluster
    from helpers._k8s import client

    if _cluster.backend() != "local":
        pytest.skip("stops a process of the local cluster; kind is covered by the kubeconfig test")
    pid = int(Path("/var/lib/cloud-native-course/pids/kube-apiserver.pid").read_text())
    os.kill(pid, signal.SIGKILL)  # as if it crashed, or the machine slept
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                k8s.request("GET", "/version")
            except ClusterUnreachable as error:
                assert "make cluster CLUSTER=local" in str(error) and "127.0.0.1:6443" in str(error)
                break
            time.sleep(0.5)
        else:
            pytest.fail("the API server still answered after being stopped")
    finally:
        while Path(f"/proc/{pid}").exists():  # let it finish shutting down before restarting
            time.sleep(0.2)
        repo = Path(__file__).resolve().parent.parent
        subprocess.run(["bash", str(repo / "cluster/local/up.sh")], check=True, capture_output=True)
        client.reconnect()
    assert k8s.request("GET", "/version")["gitVersion"].startswith("v1.")
