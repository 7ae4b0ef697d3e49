"""``doctor()``: is this machine ready for the course? Each line is pass, warn or fail, with a fix."""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from . import _course_images
from ._cluster import backend, start_hint
from ._docker.engine import client, engine_errors
from ._errors import CourseError
from ._k8s import status
from ._k8s.client import get_or_none, request, server
from ._k8s.objects import Object, list_objects
from ._output import Table

PACKAGES = (
    "jupyterlab",
    "notebook",
    "nbgrader",
    "kubernetes",
    "docker",
    "ipywidgets",
    "matplotlib",
)
MARKS = {"pass": "✓", "warn": "!", "fail": "✗"}


@dataclass(frozen=True)
class Finding:
    check: str
    result: str  # pass, warn or fail
    detail: str
    fix: str = ""


class Report(Table):
    """The doctor's findings; ``.ok`` is False when anything failed."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        super().__init__(
            ["", "check", "result", "fix"],
            [[MARKS[f.result], f.check, f.detail, f.fix] for f in findings],
        )

    @property
    def ok(self) -> bool:
        return all(f.result != "fail" for f in self.findings)

    def failed(self) -> list[Finding]:
        return [f for f in self.findings if f.result == "fail"]


def _python_packages() -> list[Finding]:
    missing, found = [], []
    for package in PACKAGES:
        try:
            found.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            missing.append(package)
    if missing:
        return [
            Finding(
                "Python packages",
                "fail",
                "missing: " + ", ".join(missing),
                "make setup (or: pip install -e .)",
            )
        ]
    return [Finding("Python packages", "pass", ", ".join(found))]


def _docker_engine() -> list[Finding]:
    try:
        engine = client()
        with engine_errors("docker info"):
            info = engine.info()
            version = engine.version().get("Version")
    except CourseError as error:
        return [Finding("Docker engine", "fail", error.message, error.hint or "")]
    memory_gb = info.get("MemTotal", 0) / 2**30
    missing = [tag for tag in _course_images.COURSE_IMAGES if not _course_images.has_image(tag)]
    return [
        Finding("Docker engine", "pass", f"Docker {version} ({info.get('OperatingSystem')})"),
        Finding(
            "Memory for Docker",
            "pass" if memory_gb >= 4 else "warn" if memory_gb >= 2 else "fail",
            f"{memory_gb:.1f} GB",
            "" if memory_gb >= 4 else "give Docker Desktop at least 4 GB (Settings > Resources)",
        ),
        Finding(
            "Course images in Docker",
            "warn" if missing else "pass",
            "missing: " + ", ".join(missing)
            if missing
            else ", ".join(_course_images.COURSE_IMAGES),
            "make images" if missing else "",
        ),
    ]


def _architecture() -> list[Finding]:
    machine = platform.machine().lower()
    known = machine in ("x86_64", "amd64", "arm64", "aarch64")
    return [
        Finding(
            "CPU architecture",
            "pass" if known else "warn",
            machine,
            "" if known else "the course images are built for amd64 and arm64",
        )
    ]


def _tools() -> list[Finding]:
    wanted = [("kubectl", "the kubectl commands shown beside each helper")]
    if backend() == "kind":  # on the local cluster or a shared one, kind is not needed
        wanted.append(("kind", "the kind cluster"))
    findings = []
    for tool, needed_for in wanted:
        path = shutil.which(tool)
        fix = (
            ""
            if path
            else f"install {tool} for {needed_for} (conda env, or https://kind.sigs.k8s.io)"
        )
        findings.append(
            Finding(f"{tool} on PATH", "pass" if path else "warn", path or "not found", fix)
        )
    return findings


def _helm() -> list[Finding]:
    """Helm and the course's registry: what chapter 7 needs."""
    from . import helm

    try:
        found = helm.run("version", "--short", show=False).strip()
        where = f"{found} ({helm.binary()})"
        result = "pass" if found.startswith(helm.VERSION) else "warn"
    except CourseError:
        found, where, result = "", "not found", "warn"
    findings = [
        Finding(
            "Helm",
            result,
            where,
            "" if result == "pass" else f"make cluster (it builds Helm {helm.VERSION})",
        )
    ]
    try:
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
        with direct.open(f"http://{helm.REGISTRY}/v2/", timeout=3) as answer:
            registry = answer.status == 200
    except OSError:
        registry = False
    findings.append(
        Finding(
            f"Chart and image registry ({helm.REGISTRY})",
            "pass" if registry else "warn",
            "answers" if registry else "not running: helm push and oci:// installs fail",
            "" if registry else "make cluster (it starts the registry: cluster/registry.sh)",
        )
    )
    return findings


def _policy_enforcer() -> str | None:
    """The DaemonSet that enforces NetworkPolicy on the nodes (kube-network-policies, or kind's
    own network, kindnet), if one is ready on every node it wants."""
    for name in ("kube-network-policies", "kindnet"):
        found = get_or_none(f"/apis/apps/v1/namespaces/kube-system/daemonsets/{name}") or {}
        counts = found.get("status", {})
        if 0 < counts.get("desiredNumberScheduled", 0) == counts.get("numberReady"):
            return name
    return None


def _addons() -> list[Finding]:
    """Cluster DNS, resource metrics, the default StorageClass and NetworkPolicy enforcement."""
    dns = get_or_none("/apis/apps/v1/namespaces/kube-system/deployments/coredns")
    dns_ready = bool(dns) and int((dns or {}).get("status", {}).get("readyReplicas", 0)) > 0
    metrics = get_or_none("/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io")
    metrics_ok = bool(metrics) and status.condition_true(metrics or {}, "Available")
    classes = list_objects("storageclass")
    default = [c for c in classes if _is_default(c)]
    mode = default[0].raw.get("volumeBindingMode", "Immediate") if default else ""
    enforcer = _policy_enforcer()
    return [
        Finding(
            "Cluster DNS (CoreDNS)",
            "pass" if dns_ready else "warn",
            "ready" if dns_ready else "not running: pods cannot find Services by name",
            "" if dns_ready else "make cluster (it installs the add-ons)",
        ),
        Finding(
            "Resource metrics (metrics-server)",
            "pass" if metrics_ok else "warn",
            "available" if metrics_ok else "missing: kubectl top and autoscaling do not work",
            "" if metrics_ok else "make cluster (it installs metrics-server)",
        ),
        Finding(
            "Default StorageClass",
            "pass" if default else "warn",
            f"{default[0].name} ({mode})"
            if default
            else "none: claims that name no class stay Pending",
            "" if default else "make cluster (it installs the local-path provisioner)",
        ),
        Finding(
            "NetworkPolicy enforcement",
            "pass" if enforcer else "warn",
            f"by {enforcer}" if enforcer else "none: policies are accepted and ignored",
            "" if enforcer else "make cluster (it installs kube-network-policies)",
        ),
    ]


def _is_default(storage_class: Object) -> bool:
    annotations = storage_class.metadata.get("annotations") or {}
    return annotations.get("storageclass.kubernetes.io/is-default-class") == "true"


def _cluster() -> list[Finding]:
    name = f"Cluster ({backend()})"
    try:
        version = request("GET", "/version")
    except CourseError as error:
        return [Finding(name, "fail", error.message.split(". ")[0], start_hint())]
    findings = [Finding(name, "pass", f"API server {version.get('gitVersion')} at {server()}")]
    nodes = list_objects("nodes")
    ready = [n.name for n in nodes if status.condition_true(n.raw, "Ready")]
    findings.append(
        Finding(
            "Nodes Ready",
            "pass" if ready and len(ready) == len(nodes) else "fail",
            f"{len(ready)}/{len(nodes)} Ready",
            "" if ready else "look at the kubelet log; make cluster-status",
        )
    )
    checks = str(request("GET", "/readyz", query={"verbose": "true"})).splitlines()
    unhealthy = [line for line in checks if line.startswith("[-]")]
    findings.append(
        Finding(
            "Control plane /readyz",
            "fail" if unhealthy else "pass",
            "; ".join(unhealthy) or "all checks ok",
            "see the API server log" if unhealthy else "",
        )
    )
    leases = {lease.name for lease in list_objects("leases", "kube-system")}
    missing = {"kube-scheduler", "kube-controller-manager"} - leases
    findings.append(
        Finding(
            "Scheduler and controller manager",
            "warn" if missing else "pass",
            "no leader lease: " + ", ".join(sorted(missing))
            if missing
            else "both hold their leader lease",
            "make cluster-status; their logs say why" if missing else "",
        )
    )
    findings += _addons()
    on_nodes = {
        name
        for n in nodes
        for image in n.status.get("images") or []
        for name in image.get("names") or []
    }
    missing_images = [
        tag for tag in _course_images.COURSE_IMAGES if not ({tag, "docker.io/" + tag} & on_nodes)
    ]
    findings.append(
        Finding(
            "Course images in the cluster",
            "warn" if missing_images else "pass",
            "missing: " + ", ".join(missing_images) if missing_images else "all present",
            "make images" if missing_images else "",
        )
    )
    return findings


def doctor(*, cluster: bool = True) -> Report:
    """Check Python packages, Docker, architecture, tools and (unless ``cluster=False``) the
    cluster and its add-ons. Each line passes, warns or fails, with the fix.

    CLI: ``make doctor``
    """
    sections: list[Callable[[], list[Finding]]] = [
        _python_packages,
        _docker_engine,
        _architecture,
        _tools,
    ]
    if cluster:
        sections += [_cluster, _helm]
    findings: list[Finding] = []
    for section in sections:
        try:
            findings += section()
        except CourseError as error:  # one section failing does not hide the others
            findings.append(
                Finding(section.__name__.strip("_"), "fail", error.message, error.hint or "")
            )
    return Report(findings)
