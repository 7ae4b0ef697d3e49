"""Classroom mode: each student gets credentials that reach only their own namespaces.

``make classroom ROSTER=students.csv`` (``python -m helpers classroom ROSTER``) creates, on the
cluster the course talks to (kind, the local one, or a shared one through a kubeconfig), for each
student id in the roster:

- a namespace per chapter, ``<student>-<chapter>``, labelled as ``k8s.namespace()`` labels its
  own, with a ResourceQuota (pods, claims, storage) and a LimitRange (a default request and limit
  for containers that set none);
- a ServiceAccount ``course-classroom/<student>``, allowed the built-in ``edit`` role in those
  namespaces only (not roles), quotas of their own there (chapter 04 makes one), to read nodes,
  storage classes, volumes and kube-system (the architecture chapter looks there), to get its
  own namespaces by name, and to make and delete PersistentVolumes of their own (chapter 06);
- an admission policy (a ValidatingAdmissionPolicy, checked by the API server itself) that holds
  that account to its own things where RBAC cannot name them: its volumes are named after its
  namespaces, are "manual" hostPath folders under its own folder of the volumes directory, and
  are reserved only for its own claims; its "manual" claims name its own volume; the quota and
  limits named ``student`` stay as the instructor made them;
- Pod Security ``baseline`` enforced in its namespaces: no privileged pods, no host folders, no
  host network (a pod with the node's / mounted would be the whole node);
- a kubeconfig, ``classroom/<student id>/kubeconfig``, holding a token of that account.

A student's id becomes the same prefix ``helpers`` gives their work (``learner_label``), so the
lessons run unchanged with ``KUBECONFIG`` pointing at that file and ``COURSE_LEARNER`` set to the
id. ``make grade`` uses the file when it exists. Running it again is harmless (server-side apply);
``make classroom-down`` removes it all.
"""

from __future__ import annotations

import base64
import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ._classroom_policy import ACCOUNTS, LABEL, OWN, admission_policy
from ._cluster import kubeconfig_path
from ._errors import CourseError
from ._identity import Chapter, learner_label
from ._output import step

STUDENTS_GROUP = f"system:serviceaccounts:{ACCOUNTS}"
TOKEN_SECONDS = 90 * 24 * 3600  # a term
QUOTA = {"pods": "30", "persistentvolumeclaims": "10", "requests.storage": "20Gi"}
# What a pod in a student's namespace may not do: privileged, host folders, host network.
POD_SECURITY = {
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/warn": "baseline",
}


def read_roster(path: Path) -> list[str]:
    """Student ids from a CSV: the ``id`` (or ``student_id``) column, else the first one
    (nbgrader's ``db student import`` format works as it is)."""
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except OSError as error:
        raise CourseError(
            f"Cannot read the roster {path}: {error.strerror}.",
            hint="Give a CSV file with a column named id, one student per row.",
        ) from None
    if not rows:
        raise CourseError(f"The roster {path} is empty.", hint="One student id per row.")
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((header.index(n) for n in ("id", "student_id") if n in header), None)
    body = rows[1:] if column is not None else rows
    ids = [row[column or 0].strip() for row in body if row and row[column or 0].strip()]
    labels: dict[str, str] = {}
    for student in ids:
        other = labels.setdefault(learner_label(student), student)
        if other != student:
            raise CourseError(
                f"The roster lists {other!r} and {student!r}, which would share their names.",
                hint="Student ids must differ; check for duplicates.",
            )
    return list(dict.fromkeys(ids))


def _cluster_access() -> tuple[str, str]:
    """The API server's address and its CA certificate (base64), from the instructor's
    kubeconfig: the students' kubeconfigs reach the same server."""
    path = kubeconfig_path()
    if path is None:
        raise CourseError(
            "There is no kubeconfig to read the cluster's address from.",
            hint="Start the cluster (make cluster) or set KUBECONFIG.",
        )
    config: Any = yaml.safe_load(Path(path).read_text()) or {}
    context_name = config.get("current-context")
    context: dict[str, Any] = next(
        (c["context"] for c in config.get("contexts") or [] if c.get("name") == context_name), {}
    )
    cluster = next(
        (c["cluster"] for c in config.get("clusters") or [] if c["name"] == context.get("cluster")),
        None,
    )
    if cluster is None:
        raise CourseError(f"{path} has no cluster for its current context {context_name!r}.")
    ca = cluster.get("certificate-authority-data")
    if ca is None and cluster.get("certificate-authority"):
        ca_file = Path(path).parent / cluster["certificate-authority"]
        ca = base64.b64encode(ca_file.read_bytes()).decode()
    return str(cluster["server"]), str(ca or "")


def _shared_objects() -> list[dict[str, Any]]:
    """What every student shares: their accounts' namespace, read access to the cluster's
    nodes, storage and kube-system."""
    labels = {LABEL: "shared"}
    group = [{"kind": "Group", "name": STUDENTS_GROUP, "apiGroup": "rbac.authorization.k8s.io"}]
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ACCOUNTS, "labels": labels},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "course-student", "labels": labels},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["nodes", "persistentvolumes"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["storage.k8s.io"],
                    "resources": ["storageclasses"],
                    "verbs": ["get", "list", "watch"],
                },
                {"apiGroups": ["metrics.k8s.io"], "resources": ["nodes"], "verbs": ["get", "list"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "course-student-quotas", "labels": labels},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["resourcequotas"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "course-student", "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "course-student",
            },
            "subjects": group,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {
                "name": "course-students-view",
                "namespace": "kube-system",
                "labels": labels,
            },
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "view",
            },
            "subjects": group,
        },
    ]


def _student_objects(student: str, chapters: Iterable[str], pods: int) -> list[dict[str, Any]]:
    label = learner_label(student)
    account = [{"kind": "ServiceAccount", "name": label, "namespace": ACCOUNTS}]
    namespaces = [Chapter(name, label).namespace for name in chapters]
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": label, "namespace": ACCOUNTS, "labels": {LABEL: "student"}},
        },
        *admission_policy(label, namespaces),  # before the rights it holds to their own
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"course-student-{label}", "labels": {LABEL: "student"}},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["namespaces"],
                    "resourceNames": namespaces,
                    "verbs": ["get"],
                },
                {  # which volumes are theirs: the admission policy says
                    "apiGroups": [""],
                    "resources": ["persistentvolumes"],
                    "verbs": ["create", "update", "patch", "delete"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"course-student-{label}", "labels": {LABEL: "student"}},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"course-student-{label}",
            },
            "subjects": account,
        },
    ]
    for chapter_name in chapters:
        chapter = Chapter(chapter_name, label)
        ns = chapter.namespace
        objects += [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "labels": {**chapter.labels, LABEL: "student", **POD_SECURITY},
                },
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "student-quotas", "namespace": ns},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "course-student-quotas",
                },
                "subjects": account,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "student", "namespace": ns},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "edit",
                },
                "subjects": account,
            },
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": OWN, "namespace": ns},
                "spec": {"hard": {**QUOTA, "pods": str(pods)}},
            },
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": {"name": OWN, "namespace": ns},
                "spec": {
                    "limits": [
                        {
                            "type": "Container",
                            "defaultRequest": {"cpu": "20m", "memory": "32Mi"},
                            # No CPU limit: CPU is shared, not lost, and a limit would refuse
                            # a request sized to the node (chapter 04). Memory is bounded.
                            "default": {"memory": "256Mi"},
                        }
                    ]
                },
            },
        ]
    return objects


def _kubeconfig(student: str, server: str, ca: str, token: str, namespace: str) -> str:
    name = f"course-{learner_label(student)}"
    cluster: dict[str, Any] = {"server": server}
    if ca:
        cluster["certificate-authority-data"] = ca
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "course", "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": "course", "user": name, "namespace": namespace}}
        ],
        "current-context": name,
    }
    return yaml.safe_dump(config, sort_keys=False)


def _wait_for_terminating(namespaces: Iterable[str]) -> None:
    from ._k8s.objects import find
    from ._k8s.waiting import wait

    for name in namespaces:
        found = find(f"namespace/{name}")
        if found is not None and found.status.get("phase") == "Terminating":
            wait(f"namespace/{name}", "deleted", timeout=180)


def _wait_for_policy(name: str) -> None:
    """Until the API server has checked the admission policy (its rules in force): a typo in a
    rule is a bug of ours, said at once, not a classroom that lets everything through."""
    from ._deadline import poll
    from ._k8s.client import request

    path = f"/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/{name}"

    def checked() -> dict[str, Any] | None:
        policy = request("GET", path, what=f"the admission policy {name}")
        status = policy.get("status") or {}
        done = status.get("observedGeneration", 0) >= policy["metadata"].get("generation", 1)
        return status if done else None

    status = poll(checked, timeout=30, what=f"the API server to check the admission policy {name}")
    warnings = (status.get("typeChecking") or {}).get("expressionWarnings") or []
    if warnings:
        raise CourseError(
            f"The admission policy {name} has rules the API server cannot check: {warnings}.",
            hint="This is a bug of the course: please report it with this message.",
        )


def up(
    students: Iterable[str], chapters: Iterable[str], out: Path, *, pods: int = 30
) -> dict[str, Path]:
    """Create (or bring up to date) every student's namespaces, account and kubeconfig;
    returns each student's kubeconfig file."""
    from ._k8s.client import request
    from ._k8s.objects import apply

    chapters = list(chapters)
    server, ca = _cluster_access()
    _wait_for_terminating([ACCOUNTS])  # a classroom-down just before: its namespaces still go
    with step("Classroom: shared account namespace and read access"):
        for document in _shared_objects():
            apply(document, document["metadata"].get("namespace"))
    written: dict[str, Path] = {}
    for student in students:
        label = learner_label(student)
        with step(f"Classroom: {student} ({label}-*)"):
            _wait_for_terminating([Chapter(name, label).namespace for name in chapters])
            for document in _student_objects(student, chapters, pods):
                apply(document, document["metadata"].get("namespace"))
            for kind in ("quotas", "volumes", "claims"):
                _wait_for_policy(f"course-student-{label}-{kind}")
            token = request(
                "POST",
                f"/api/v1/namespaces/{ACCOUNTS}/serviceaccounts/{label}/token",
                body={"spec": {"expirationSeconds": TOKEN_SECONDS}},
                what=f"a token for {student}",
            )["status"]["token"]
            folder = out / student
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "kubeconfig"
            path.touch(mode=0o600)
            first = Chapter(chapters[0], label).namespace if chapters else "default"
            path.write_text(_kubeconfig(student, server, ca, token, first))
            written[student] = path
    return written


def down(out: Path | None = None) -> list[str]:
    """Remove every student's namespaces, accounts and access (and the kubeconfigs in ``out``);
    returns what was deleted."""
    import shutil

    from ._k8s.objects import delete, list_objects

    deleted = []
    kinds = ("validatingadmissionpolicybindings", "validatingadmissionpolicies")
    for kind in ("namespaces", "clusterrolebindings", "clusterroles", *kinds):
        for found in list_objects(kind, selector=LABEL):
            # Deletion is in the foreground: a role stays listed for a moment after the call.
            # Namespaces take longer; `make classroom` waits for them if they are still going.
            delete(f"{kind}/{found.name}", wait_until_gone=kind != "namespaces", timeout=30)
            deleted.append(f"{found.kind.lower()}/{found.name}")
    delete("rolebinding/course-students-view", "kube-system", wait_until_gone=False)
    # The students' volumes belong to no namespace: named after one of theirs, they go too.
    namespaces = tuple(
        f"{name.split('/', 1)[1]}-" for name in deleted if name.startswith("namespace/")
    )
    for found in list_objects("persistentvolumes") if namespaces else []:
        if found.name.startswith(namespaces):
            delete(f"pv/{found.name}", wait_until_gone=False)
            deleted.append(f"persistentvolume/{found.name}")
    if out is not None and out.is_dir():
        shutil.rmtree(out)
    return deleted
