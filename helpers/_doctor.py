"""``doctor()``: is this machine ready for the course? Each line is pass, warn or fail, with a fix."""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from . import _docker, _images, _k8s
from ._cluster import backend, start_hint
from ._errors import CourseError
from ._output import Table

PACKAGES = (
    "jupyterlab",
    "notebook",
    "nbgrader",
    "kubernetes",
    "docker",
    "ipywidgets",
    "matplotlib",
    "ipympl",
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
        engine = _docker.client()
        info = engine.info()
    except CourseError as error:
        return [Finding("Docker engine", "fail", error.message, error.hint or "")]
    findings = [
        Finding(
            "Docker engine",
            "pass",
            f"Docker {engine.version().get('Version')} ({info.get('OperatingSystem')})",
        )
    ]
    memory_gb = info.get("MemTotal", 0) / 2**30
    findings.append(
        Finding(
            "Memory for Docker",
            "pass" if memory_gb >= 4 else "warn" if memory_gb >= 2 else "fail",
            f"{memory_gb:.1f} GB",
            "" if memory_gb >= 4 else "give Docker Desktop at least 4 GB (Settings > Resources)",
        )
    )
    missing = [tag for tag in _images.COURSE_IMAGES if not _images._has_image(tag)]
    findings.append(
        Finding(
            "Course images in Docker",
            "warn" if missing else "pass",
            "missing: " + ", ".join(missing) if missing else ", ".join(_images.COURSE_IMAGES),
            "make images" if missing else "",
        )
    )
    return findings


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
    findings = []
    for tool, needed_for in (
        ("kubectl", "the kubectl commands shown beside each helper"),
        ("kind", "the kind cluster (learners' default)"),
    ):
        path = shutil.which(tool)
        findings.append(
            Finding(
                f"{tool} on PATH",
                "pass" if path else "warn",
                path or "not found",
                ""
                if path
                else f"install {tool} for {needed_for} (conda env, or https://kind.sigs.k8s.io)",
            )
        )
    return findings


def _cluster() -> list[Finding]:
    name = f"Cluster ({backend()})"
    try:
        version = _k8s.raw("/version")
    except CourseError as error:
        return [Finding(name, "fail", error.message.split(". ")[0], start_hint())]
    findings = [
        Finding(name, "pass", f"API server {version.get('gitVersion')} at {_k8s._server()}")
    ]
    nodes = _k8s.list_objects("nodes")
    ready = [n.name for n in nodes if _k8s._condition_true(n.raw, "Ready")]
    findings.append(
        Finding(
            "Nodes Ready",
            "pass" if ready and len(ready) == len(nodes) else "fail",
            f"{len(ready)}/{len(nodes)} Ready",
            "" if ready else "look at the kubelet log; make cluster-status",
        )
    )
    unhealthy = [
        line
        for line in str(_k8s.raw("/readyz", verbose="true")).splitlines()
        if line.startswith("[-]")
    ]
    findings.append(
        Finding(
            "Control plane /readyz",
            "fail" if unhealthy else "pass",
            "; ".join(unhealthy) or "all checks ok",
            "see the API server log" if unhealthy else "",
        )
    )
    leases = {lease.name for lease in _k8s.list_objects("leases", "kube-system")}
    missing = {"kube-scheduler", "kube-controller-manager"} - leases
    findings.append(
        Finding(
            "Scheduler and controller manager",
            "warn" if missing else "pass",
            "no leader lease: " + ", ".join(sorted(missing))
            if missing
            else "both hold their leader lease",
            "",
        )
    )
    classes = _k8s.list_objects("storageclass")
    default = [
        c.name
        for c in classes
        if c.metadata.get("annotations", {}).get("storageclass.kubernetes.io/is-default-class")
        == "true"
    ]
    findings.append(
        Finding(
            "Default StorageClass",
            "pass" if default else "warn",
            ", ".join(default) or "none: PVCs without storageClassName stay Pending",
            "" if default else "make cluster (it creates 'standard')",
        )
    )
    on_nodes = {
        name
        for n in nodes
        for image in n.status.get("images") or []
        for name in image.get("names") or []
    }
    missing_images = [
        tag for tag in _images.COURSE_IMAGES if not ({tag, "docker.io/" + tag} & on_nodes)
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
    """Check Python packages, Docker, architecture, tools and (unless ``cluster=False``) the cluster.

    CLI: ``make doctor``
    """
    sections: list[Callable[[], list[Finding]]] = [
        _python_packages,
        _docker_engine,
        _architecture,
        _tools,
    ]
    if cluster:
        sections.append(_cluster)
    findings: list[Finding] = []
    for section in sections:
        try:
            findings += section()
        except CourseError as error:
            findings.append(
                Finding(section.__name__.strip("_"), "fail", error.message, error.hint or "")
            )
        except Exception as error:  # the doctor reports; it never crashes the notebook
            findings.append(
                Finding(
                    section.__name__.strip("_"),
                    "fail",
                    f"{type(error).__name__}: {error}",
                    "run with COURSE_DEBUG=1 and report this",
                )
            )
    return Report(findings)
