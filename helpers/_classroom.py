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

from ._classroom_objects import kubeconfig_text, shared_objects, student_objects
from ._classroom_policy import ACCOUNTS, LABEL, OWN
from ._cluster import kubeconfig_path
from ._errors import CourseError
from ._identity import Chapter, learner_label
from ._output import step

TOKEN_SECONDS = 90 * 24 * 3600  # a term
GRADING = "grading"  # the label of an account made for one grading (grading_account)


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


def _account_kubeconfig(
    student: str, label: str, first_namespace: str, path: Path, seconds: int
) -> Path:
    from ._k8s.client import request

    server, ca = _cluster_access()
    token = request(
        "POST",
        f"/api/v1/namespaces/{ACCOUNTS}/serviceaccounts/{label}/token",
        body={"spec": {"expirationSeconds": seconds}},
        what=f"a token for {student}",
    )["status"]["token"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.write_text(kubeconfig_text(student, server, ca, token, first_namespace))
    return path


def _account(student: str, chapters: list[str], pods: int, role: str) -> str:
    """Apply one student's account and namespaces; returns their learner label."""
    from ._k8s.objects import apply

    label = learner_label(student)
    _wait_for_terminating([Chapter(name, label).namespace for name in chapters])
    for document in student_objects(student, chapters, pods, role):
        apply(document, document["metadata"].get("namespace"))
    for kind in ("quotas", "volumes", "claims"):
        _wait_for_policy(f"course-student-{label}-{kind}")
    _wait_until_enforced(label, Chapter(chapters[0], label).namespace)
    return label


def _wait_until_enforced(label: str, namespace: str) -> None:
    """Until the API server refuses the student what the policies forbid. A policy is checked
    (above) a moment before admission enforces it: on a cluster just started, the student's
    first seconds could delete the instructor's quota. Asked as the student, with a dry run."""
    from kubernetes.client.exceptions import ApiException

    from ._deadline import poll
    from ._k8s.client import send

    student = {"Impersonate-User": f"system:serviceaccount:{ACCOUNTS}:{label}"}
    path = f"/api/v1/namespaces/{namespace}/resourcequotas/{OWN}"

    def refused() -> bool | None:
        try:
            send("DELETE", path, query={"dryRun": "All"}, headers=student)
        except ApiException as error:
            body = str(error.body or "")
            return True if error.status == 403 and "ValidatingAdmissionPolicy" in body else None
        return None

    poll(refused, timeout=60, what=f"the API server to enforce the admission policy in {namespace}")


def _shared() -> None:
    from ._k8s.objects import apply

    _wait_for_terminating([ACCOUNTS])  # a classroom-down just before: its namespaces still go
    for document in shared_objects():
        apply(document, document["metadata"].get("namespace"))


def up(
    students: Iterable[str], chapters: Iterable[str], out: Path, *, pods: int = 30
) -> dict[str, Path]:
    """Create (or bring up to date) every student's namespaces, account and kubeconfig;
    returns each student's kubeconfig file."""
    chapters = list(chapters)
    with step("Classroom: shared account namespace and read access"):
        _shared()
    written: dict[str, Path] = {}
    for student in students:
        label = learner_label(student)
        with step(f"Classroom: {student} ({label}-*)"):
            _account(student, chapters, pods, "student")
            first = Chapter(chapters[0], label).namespace if chapters else "default"
            written[student] = _account_kubeconfig(
                student, label, first, out / student / "kubeconfig", TOKEN_SECONDS
            )
    return written


def grading_account(student: str, chapter: str, path: Path, *, seconds: int = 3600) -> Path:
    """An account for grading one notebook of a student who has no classroom account: what
    ``make classroom`` gives a student, for ``chapter`` only, labelled to be removed after the
    grading (``remove_grading_account``). Writes its kubeconfig, valid ``seconds``, to ``path``.
    The account reaches that chapter's namespace and nothing of anyone else's."""
    _shared()
    label = _account(student, [chapter], 30, GRADING)
    return _account_kubeconfig(
        student, label, Chapter(chapter, label).namespace, path, max(seconds, 600)
    )


def remove_grading_account(student: str) -> list[str]:
    """Remove what ``grading_account`` made for ``student`` (never a classroom student's
    account): the account, its roles and admission policies. Its namespaces carry the student's
    label and go with the student's other leftovers (``_grading.cleanup``). Returns what went."""
    from ._errors import ObjectNotFound
    from ._k8s.objects import delete, find

    label = learner_label(student)
    account = find(f"serviceaccount/{label}", ACCOUNTS)
    if account is None or account.labels.get(LABEL) != GRADING:
        return []
    removed = []
    named: list[tuple[str, str | None]] = [(f"serviceaccount/{label}", ACCOUNTS)]
    named += [
        (f"{kind}/course-student-{label}", None) for kind in ("clusterrolebinding", "clusterrole")
    ]
    for kind in ("quotas", "volumes", "claims"):
        for what in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            named.append((f"{what}/course-student-{label}-{kind}", None))
    for name, namespace in named:
        try:
            delete(name, namespace, wait_until_gone=False)
            removed.append(name)
        except ObjectNotFound:
            continue
    return removed


def down(out: Path | None = None) -> list[str]:
    """Remove every student's namespaces, accounts and access (and the kubeconfigs in ``out``);
    returns what was deleted."""
    import shutil

    from ._k8s.objects import delete, list_objects

    deleted = []
    kinds = ("validatingadmissionpolicybindings", "validatingadmissionpolicies")
    # What a grading in progress made for its students (grading_account) is its own to remove,
    # and the accounts' shared namespace holds their accounts: both stay while one exists.
    grading = list_objects("clusterroles", selector=f"{LABEL}={GRADING}")
    roles = "student" if grading else "student, shared"
    for kind in ("namespaces", "clusterrolebindings", "clusterroles", *kinds):
        for found in list_objects(kind, selector=f"{LABEL} in ({roles})"):
            # Deletion is in the foreground: a role stays listed for a moment after the call.
            # Namespaces take longer; `make classroom` waits for them if they are still going.
            delete(f"{kind}/{found.name}", wait_until_gone=kind != "namespaces", timeout=30)
            deleted.append(f"{found.kind.lower()}/{found.name}")
    if not grading:
        delete("rolebinding/course-students-view", "kube-system", wait_until_gone=False)
    # The students' volumes belong to no namespace: named after one of theirs, they go too.
    namespaces = tuple(
        f"{name.split('/', 1)[1]}-" for name in deleted if name.startswith("namespace/")
    )
    for found in list_objects("persistentvolumes") if namespaces else []:
        if found.name.startswith(namespaces):
            delete(f"pv/{found.name}", wait_until_gone=False)
            deleted.append(f"persistentvolume/{found.name}")
    if grading:
        print(
            f"   kept: the accounts of a grading in progress ({len(grading)}), and their shared "
            "namespace; the grading removes its own (make classroom-down again afterwards)"
        )
    if out is not None and out.is_dir():
        shutil.rmtree(out)
    return deleted
