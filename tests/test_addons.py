"""The cluster add-ons and the cluster scripts, against the real cluster: DNS (CoreDNS), the
metrics API (metrics-server), the default StorageClass (local-path, WaitForFirstConsumer),
NetworkPolicy enforcement (kube-network-policies), down.sh, and the shell library's checks.
Plain kubectl and bash, not the course helpers, so these tests depend only on the cluster and
the scripts in cluster/."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parent.parent
LIB = REPO / "cluster" / "lib.sh"
NS = "pytest-addons"
BACKEND = os.environ.get("COURSE_CLUSTER", "local")
T = TypeVar("T")


def kubectl(
    *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result


def get(kind_name: str, ns: str | None = NS) -> dict[str, Any]:
    args = ["get", kind_name, "-o", "json"] + (["-n", ns] if ns else [])
    found: dict[str, Any] = json.loads(kubectl(*args).stdout)
    return found


def apply(*objects: dict[str, Any]) -> None:
    kubectl(
        "apply",
        "-n",
        NS,
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )


def wait_until(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    """Polls probe until it returns something truthy; fails with what was last seen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last seen: {last!r})")


def exec_in(pod: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return kubectl("exec", "-n", NS, pod, "--", "sh", "-c", command, check=False, timeout=timeout)


def pod(name: str, command: str | None = None, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "course/web:v1"}
    if command:
        container["command"] = ["sh", "-c", command]
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 1, **spec},
    }


def ready(name: str) -> bool:
    conditions = get(f"pod/{name}").get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="module")
def ns() -> Iterator[str]:
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", timeout=120)
    kubectl("create", "namespace", NS)
    # The controller manager adds the default ServiceAccount a moment later; a pod created
    # before it is refused.
    wait_until(
        "the namespace's default ServiceAccount",
        lambda: (
            kubectl("get", "serviceaccount", "default", "-n", NS, check=False).returncode == 0
            or None
        ),
        timeout=30,
    )
    yield NS
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", timeout=120)


# --- DNS --------------------------------------------------------------------------------------


def lookup(client: str, name: str) -> dict[str, str]:
    """What busybox's nslookup finds for name inside the pod: {full name: address}.

    It tries every search domain and exits 1 when any of them is NXDOMAIN, even when another
    one answered, so its answers are read from what it prints, not from its exit code."""
    result = exec_in(client, f"timeout 5 nslookup {name}")
    return dict(re.findall(r"^Name:\s*(\S+)\s*\nAddress:\s*([0-9.]+)", result.stdout, re.MULTILINE))


def test_a_pod_resolves_a_service_by_full_and_short_name(ns: str) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    apply(pod("web"), service, pod("client", "sleep 600"))
    wait_until("pods web and client Ready", lambda: ready("web") and ready("client"), 60)
    cluster_ip = get("service/web")["spec"]["clusterIP"]

    resolv = exec_in("client", "cat /etc/resolv.conf").stdout
    dns_ip = get("service/kube-dns", "kube-system")["spec"]["clusterIP"]
    assert f"nameserver {dns_ip}" in resolv, resolv
    assert f"search {ns}.svc.cluster.local svc.cluster.local cluster.local" in resolv, resolv

    full = f"web.{ns}.svc.cluster.local"
    found = wait_until(f"{full} resolves", lambda: lookup("client", full), 30)
    assert found == {full: cluster_ip}
    assert lookup("client", "web") == {full: cluster_ip}, "the short name, through the search path"
    assert lookup("client", "no-such-service") == {}
    # and the short name works for a real request (the C library's resolver), through the Service
    fetched = exec_in("client", "timeout 5 wget -q -O - http://web/version")
    assert fetched.stdout.strip() == "v1", fetched.stderr


# --- NetworkPolicy ----------------------------------------------------------------------------


def reaches(client: str, address: str) -> bool:
    """Whether a new connection from the client pod gets the web page at address within 3 s."""
    return (
        exec_in(client, f"timeout 3 wget -q -O - http://{address}/version").stdout.strip() == "v1"
    )


def test_a_network_policy_is_enforced_not_just_accepted(ns: str) -> None:
    """The cluster's enforcer (kube-network-policies; kindnet on upstream kind) acts on a policy:
    the pod it allows gets in, another pod does not, and deleting the policy opens it again."""
    apply(pod("guarded"), pod("friend", "sleep 600"), pod("stranger", "sleep 600"))
    wait_until(
        "pods guarded, friend and stranger Ready",
        lambda: all(ready(name) for name in ("guarded", "friend", "stranger")),
        60,
    )
    address = get("pod/guarded")["status"]["podIP"]
    # Both get in before there is a policy, so a refusal later is the policy's doing.
    wait_until("friend reaches guarded", lambda: reaches("friend", address), 30)
    assert reaches("stranger", address)
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "only-friend"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "guarded"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "friend"}}}],
                    "ports": [{"protocol": "TCP", "port": 80}],
                }
            ],
        },
    }
    apply(policy)
    try:
        wait_until(
            "stranger is kept out", lambda: None if reaches("stranger", address) else True, 30
        )
        assert reaches("friend", address), "the allowed pod must still get in"
        assert not reaches("stranger", address), "the refusal must hold, not flicker"
    finally:
        kubectl("delete", "networkpolicy", "only-friend", "-n", NS, "--ignore-not-found")
    wait_until("stranger gets in once the policy is gone", lambda: reaches("stranger", address), 30)


# --- metrics ----------------------------------------------------------------------------------


def millicores(quantity: str) -> float:
    units = {"n": 1e-6, "u": 1e-3, "m": 1.0}
    if quantity[-1] in units:
        return float(quantity[:-1]) * units[quantity[-1]]
    return float(quantity) * 1000


def busy_cpu() -> float | None:
    result = kubectl(
        "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods/busy", check=False
    )
    if result.returncode != 0:  # not scraped yet: NotFound
        return None
    containers = json.loads(result.stdout)["containers"]
    cpu = sum(millicores(c["usage"]["cpu"]) for c in containers)
    return cpu if cpu > 200 else None


def top_pods_answers() -> subprocess.CompletedProcess[str] | None:
    """kubectl finds the metrics API through discovery, cached on disk: a cache made while the
    API was away (right after the API server restarted) says "Metrics API not available" until
    it is refreshed, which `kubectl api-resources` does."""
    top = kubectl("top", "pods", "-A", check=False)
    if top.returncode == 0:
        return top
    kubectl("api-resources", check=False)
    return None


def test_the_metrics_api_reports_a_busy_pods_cpu(ns: str) -> None:
    apply(pod("busy", "while :; do :; done"))
    wait_until("pod busy Ready", lambda: ready("busy"), 60)
    # metrics-server scrapes every 15 s and needs two samples for a rate
    cpu = wait_until("busy's CPU above 200m in the metrics API", busy_cpu, 90)
    assert cpu > 200

    listing = json.loads(kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/pods").stdout)
    namespaces = {item["metadata"]["namespace"] for item in listing["items"]}
    assert {"kube-system", ns} <= namespaces
    top_pods = wait_until("kubectl top pods", top_pods_answers, 30)
    assert re.search(rf"^{ns}\s+busy\s+\d+m", top_pods.stdout, re.MULTILINE), top_pods.stdout
    top_nodes = kubectl("top", "nodes")
    assert re.search(r"\d+m\s+\d+%\s+\d+Mi\s+\d+%", top_nodes.stdout), top_nodes.stdout
    kubectl("delete", "-n", NS, "pod/busy", "--wait=false")


# --- storage ----------------------------------------------------------------------------------


def test_the_default_class_waits_for_the_first_consumer_then_provisions(ns: str) -> None:
    standard = get("storageclass/standard", None)
    assert standard["provisioner"] == "rancher.io/local-path"
    assert standard["volumeBindingMode"] == "WaitForFirstConsumer"
    assert standard["reclaimPolicy"] == "Delete"
    annotations = standard["metadata"].get("annotations", {})
    assert annotations.get("storageclass.kubernetes.io/is-default-class") == "true"
    defaults = [
        c["metadata"]["name"]
        for c in get("storageclass", None)["items"]
        if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class")
        == "true"
    ]
    assert defaults == ["standard"], "exactly one default class"

    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}},
    }
    apply(claim)
    assert get("pvc/data")["spec"]["storageClassName"] == "standard", "the default class filled in"

    def waiting_event() -> str | None:
        events = kubectl(
            "get", "events", "-n", NS, "--field-selector",
            "involvedObject.kind=PersistentVolumeClaim,involvedObject.name=data", "-o", "json",
        )  # fmt: skip
        for event in json.loads(events.stdout)["items"]:
            if event["reason"] == "WaitForFirstConsumer":
                return str(event["message"])
        return None

    message = wait_until("a WaitForFirstConsumer event on the claim", waiting_event, 30)
    assert "waiting for first consumer" in message
    assert get("pvc/data")["status"]["phase"] == "Pending", "no pod uses it yet"

    writer = pod(
        "writer",
        "echo written-by-the-pod > /data/proof.txt && sleep 600",
        container={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
    )
    apply(writer)
    wait_until("claim data Bound", lambda: get("pvc/data")["status"]["phase"] == "Bound", 90)
    wait_until("pod writer Ready", lambda: ready("writer"), 60)
    assert exec_in("writer", "cat /data/proof.txt").stdout.strip() == "written-by-the-pod"

    volume_name = get("pvc/data")["spec"]["volumeName"]
    volume = get(f"pv/{volume_name}", None)
    assert volume["spec"]["storageClassName"] == "standard"
    source = volume["spec"].get("hostPath") or volume["spec"].get("local")
    host_dir = source["path"]
    assert host_dir.startswith("/var/local-path-provisioner/"), host_dir
    node = get("pod/writer")["spec"]["nodeName"]  # kind: the worker, where the volume was made
    assert node_read(f"{host_dir}/proof.txt", node) == "written-by-the-pod", "visible on the node"

    # reclaimPolicy Delete: the claim gone, the provisioner's helper pod removes the directory
    kubectl("delete", "-n", NS, "pod/writer", "pvc/data", "--wait=true", timeout=90)
    wait_until(
        f"pv/{volume_name} deleted",
        lambda: kubectl("get", f"pv/{volume_name}", check=False).returncode != 0,
        60,
    )
    assert node_read(f"{host_dir}/proof.txt", node) is None, "the directory was removed"


def node_read(path: str, node: str) -> str | None:
    """A file on the node: the host itself on the local cluster, the node's container on kind."""
    if BACKEND == "kind":
        result = subprocess.run(
            ["docker", "exec", node, "cat", path], capture_output=True, text=True
        )
        return result.stdout.strip() if result.returncode == 0 else None
    file = Path(path)
    return file.read_text().strip() if file.exists() else None


# --- etcd ---------------------------------------------------------------------------------


@pytest.mark.skipif(BACKEND != "local", reason="kind's etcd is kubeadm's, inside the node")
def test_etcd_answers_only_the_api_servers_certificate() -> None:
    """Anything on the machine, a graded notebook included, could rewrite the whole cluster
    through an etcd that answers everyone: it must take only the API server's certificate."""
    import http.client
    import ssl

    pki = Path(os.environ.get("COURSE_STATE_DIR", "/var/lib/cloud-native-course")) / "pki"

    def version(context: ssl.SSLContext | None) -> int | str:
        connection: http.client.HTTPConnection = (
            http.client.HTTPSConnection("127.0.0.1", 2379, context=context, timeout=10)
            if context
            else http.client.HTTPConnection("127.0.0.1", 2379, timeout=10)
        )
        try:
            connection.request("GET", "/version")
            return connection.getresponse().status
        except (ssl.SSLError, ConnectionError) as error:
            return type(error).__name__
        finally:
            connection.close()

    trusting = ssl.create_default_context(cafile=str(pki / "etcd-ca.crt"))
    assert version(None) != 200, "etcd answers plain HTTP"
    assert version(trusting) != 200, "etcd answers a client without a certificate"
    trusting.load_cert_chain(pki / "apiserver-etcd-client.crt", pki / "apiserver-etcd-client.key")
    assert version(trusting) == 200, "etcd refuses the API server's own certificate"


# --- the shell library (no cluster needed, but it is the cluster scripts' code) ---------------


def bash(script: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Runs script with cluster/lib.sh sourced, as the cluster scripts do."""
    return subprocess.run(
        ["bash", "-c", f'set -euo pipefail; source "{LIB}"; {script}', "test", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_sha256_matches_the_published_sum_and_only_that(tmp_path: Path) -> None:
    binary = tmp_path / "kubectl"
    binary.write_bytes(b"\x7fELF pretend binary\n" * 1000)
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    bare = tmp_path / "kubectl.sha256"  # dl.k8s.io's format: the hash alone, no newline
    bare.write_text(digest)
    listed = tmp_path / "SHA256SUMS"  # sha256sum's format
    listed.write_text(f"{digest.upper()}  kubectl\n")
    wrong = tmp_path / "wrong.sha256"
    wrong.write_text(hashlib.sha256(b"something else").hexdigest())
    empty = tmp_path / "empty.sha256"
    empty.write_text("")

    check = 'sha256_matches "$1" "$2"'
    assert bash(check, str(binary), str(bare)).returncode == 0
    assert bash(check, str(binary), str(listed)).returncode == 0
    assert bash(check, str(binary), str(wrong)).returncode == 1
    assert bash(check, str(binary), str(empty)).returncode == 1
    assert bash(check, str(binary), str(tmp_path / "missing")).returncode == 1


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()


def test_download_verified_installs_only_a_file_that_matches(
    local_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, served = local_server
    content = b"release binary\n"
    (served / "good").write_bytes(content)
    (served / "good.sha256").write_text(hashlib.sha256(content).hexdigest())
    (served / "tampered").write_bytes(content + b"extra")
    (served / "tampered.sha256").write_text(hashlib.sha256(content).hexdigest())

    good = tmp_path / "bin" / "good"
    good.parent.mkdir()
    result = bash('download_verified "$1" "$2"', f"{url}/good", str(good))
    assert result.returncode == 0, result.stderr
    assert good.read_bytes() == content and os.access(good, os.X_OK)

    bad = tmp_path / "bin" / "tampered"
    result = bash('download_verified "$1" "$2"', f"{url}/tampered", str(bad))
    assert result.returncode == 1
    assert "does not match its published checksum" in result.stderr
    assert sorted(p.name for p in bad.parent.iterdir()) == ["good"], "nothing else left behind"

    result = bash(
        'download_verified "$1" "$2" || echo "unreachable: $?"', f"{url}/absent", str(bad)
    )
    assert result.stdout.strip() == "unreachable: 1"


def test_a_component_that_dies_is_reported_at_once_with_its_log(tmp_path: Path) -> None:
    log, pidfile = tmp_path / "comp.log", tmp_path / "comp.pid"
    script = (
        f'sh -c "echo starting; echo fatal: port already in use; exit 3" >"{log}" 2>&1 & '
        f'echo $! >"{pidfile}"; '
        f'wait_for_component comp "{pidfile}" "{log}" 90 false'
    )
    started = time.monotonic()
    result = bash(script)
    assert result.returncode == 1
    assert time.monotonic() - started < 10, "not a silent wait for the whole 90 s"
    assert "comp is not running" in result.stderr
    assert "fatal: port already in use" in result.stderr, result.stderr


def test_a_failing_command_names_its_step_and_the_command(tmp_path: Path) -> None:
    result = bash('step "Copying the config"; cp /nonexistent/config /tmp/; echo not reached')
    assert result.returncode == 1
    assert "✗ Copying the config failed (exit 1)" in result.stderr, result.stderr
    assert "command: cp /nonexistent/config /tmp/" in result.stderr
    assert "not reached" not in result.stdout

    # under `run` the output is quiet until it fails, even inside a function
    script = (
        'compile() { echo "compiling"; echo "x.go:3: undefined: foo" >&2; return 2; }; '
        'RUN_LOG="$1"; step "Building x"; run compile --fast; echo not reached'
    )
    result = bash(script, str(tmp_path / "run.log"))
    assert result.returncode == 2
    assert "✗ Building x failed (exit 2)" in result.stderr, result.stderr
    assert "command: compile --fast" in result.stderr
    assert "x.go:3: undefined: foo" in result.stderr, "the command's own output, shown"
    assert "compiling" not in result.stdout and "not reached" not in result.stdout


# --- the course's registry (cluster/registry.sh) ---------------------------------------------


def test_a_pod_runs_an_image_pushed_to_the_course_registry(ns: str) -> None:
    """docker push localhost:5001/..., then a pod with that image: the node's containerd pulls
    it from the course's registry (on kind, from inside the node, by the registry's name)."""
    token = f"pushed-{os.getpid()}-{int(time.time())}"
    # An image of its own (its own ID): a course image pushed under a second name is not tested.
    tag = f"localhost:5001/pytest/web:{token}"
    context = f"FROM course/web:v1\nENV VERSION={token}\n"
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, "-"],
        input=context,
        text=True,
        check=True,
        capture_output=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    try:
        subprocess.run(["docker", "push", tag], check=True, capture_output=True, timeout=120)
    finally:
        subprocess.run(["docker", "rmi", tag], capture_output=True)
    apply(pod("pushed", container={"image": tag, "imagePullPolicy": "Always"}))
    wait_until("pod/pushed ready", lambda: ready("pushed"), 90)
    served = exec_in("pushed", "cat /www/version").stdout.strip()
    assert served == token


def test_helm_is_the_version_the_course_pins() -> None:
    """helm on make's PATH (or the one cluster/tools.sh built) is the pinned release."""
    from helpers import helm

    assert helm.run("version", "--short", show=False).strip().startswith(helm.VERSION)
