"""Deployments: scaling, rolling updates, their history, and rollbacks."""

from __future__ import annotations

import copy
from typing import Any

from .._errors import CourseError
from .._output import Table
from .client import request
from .objects import Object, get, list_objects, object_path

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"


def _deployment(name: str) -> str:
    return f"deployment/{name.split('/', 1)[-1]}"  # "web", "deploy/web", "deployment/web"


def scale(target: str, replicas: int, ns: str | None = None) -> Object:
    """Set the number of replicas of a Deployment (``"web"`` or ``"deployment/web"``), a
    StatefulSet (``"statefulset/db"``) or a ReplicaSet.

    CLI: ``kubectl scale deployment/web --replicas=3 -n NS``
    """
    target = target if "/" in target else _deployment(target)
    request(
        "PATCH",
        object_path(target, ns) + "/scale",
        body={"spec": {"replicas": replicas}},
        content_type="application/merge-patch+json",
        what=f"scaling {target}",
    )
    return get(target, ns)


def set_image(
    target: str, container: str, image: str, ns: str | None = None, *, reason: str | None = None
) -> Object:
    """Change a container's image. On a Deployment (``"web"`` or ``"deployment/web"``) this starts
    a rolling update, and ``reason`` is recorded as the revision's change-cause. On a bare pod
    (``"pod/web"``) the kubelet restarts that container in place: no new pod, no history.

    CLI: ``kubectl set image deployment/web web=course/web:v2 -n NS``
    (then ``kubectl annotate deployment/web kubernetes.io/change-cause='REASON'``)
    """
    kind = target.split("/", 1)[0] if "/" in target else "deployment"
    full = _deployment(target) if kind in ("deploy", "deployment", "deployments") else target
    spec = get(full, ns).spec
    pod_spec = spec["template"]["spec"] if "template" in spec else spec
    names = [c["name"] for c in pod_spec["containers"]]
    if container not in names:
        raise CourseError(
            f"{full} has no container {container!r}.", hint=f"Its containers: {', '.join(names)}."
        )
    change: dict[str, Any] = {"containers": [{"name": container, "image": image}]}
    patch: dict[str, Any] = {
        "spec": {"template": {"spec": change}} if "template" in spec else change
    }
    if reason:
        patch["metadata"] = {"annotations": {CHANGE_CAUSE: reason}}
    request(
        "PATCH",
        object_path(full, ns),
        body=patch,
        content_type="application/strategic-merge-patch+json",
        what=f"setting the image of {full}",
    )
    return get(full, ns)


def replicasets(deployment: str, ns: str | None = None) -> list[Object]:
    """The ReplicaSets a deployment owns, oldest revision first."""
    name = _deployment(deployment).split("/", 1)[1]
    owned = [
        rs
        for rs in list_objects("replicasets", ns)
        if any(
            o.get("kind") == "Deployment" and o.get("name") == name
            for o in rs.metadata.get("ownerReferences") or []
        )
    ]
    return sorted(owned, key=lambda rs: int(rs.metadata.get("annotations", {}).get(REVISION, 0)))


def rollout_history(deployment: str, ns: str | None = None) -> Table:
    """The revisions of a deployment, oldest first.

    CLI: ``kubectl rollout history deployment/web -n NS``
    """
    rows = []
    for rs in replicasets(deployment, ns):
        annotations = rs.metadata.get("annotations") or {}
        images = ", ".join(c["image"] for c in rs.spec["template"]["spec"]["containers"])
        rows.append(
            [
                int(annotations.get(REVISION, 0)),
                images,
                rs.status.get("replicas", 0),
                annotations.get(CHANGE_CAUSE, ""),
            ]
        )
    return Table(["revision", "images", "pods", "change-cause"], rows)


def rollback(deployment: str, ns: str | None = None, *, revision: int | None = None) -> Object:
    """Go back to the previous revision (or to ``revision``): the deployment's pod template is
    set to that revision's, which starts a rolling update and becomes a new revision.

    CLI: ``kubectl rollout undo deployment/web -n NS --to-revision=N``
    """
    target = _deployment(deployment)
    by_revision = {
        int(rs.metadata.get("annotations", {}).get(REVISION, 0)): rs
        for rs in replicasets(target, ns)
    }
    if revision is None:
        if len(by_revision) < 2:
            raise CourseError(
                f"{target} has no earlier revision to go back to.",
                hint=f"See k8s.rollout_history({target!r}, ns).",
            )
        revision = sorted(by_revision)[-2]
    if revision not in by_revision:
        raise CourseError(
            f"{target} has no revision {revision}.",
            hint=f"Its revisions: {sorted(by_revision)}. See k8s.rollout_history({target!r}, ns).",
        )
    template = copy.deepcopy(by_revision[revision].spec["template"])
    template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    request(
        "PATCH",
        object_path(target, ns),
        body={"spec": {"template": template}},
        content_type="application/merge-patch+json",
        what=f"rolling back {target} to revision {revision}",
    )
    return get(target, ns)
