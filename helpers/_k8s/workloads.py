"""Deployments: scaling, rolling updates, their history, and rollbacks."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
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
    (then ``kubectl annotate --overwrite deployment/web kubernetes.io/change-cause='REASON'``)
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


# The annotations a rollback keeps from the Deployment; every other one comes from the revision
# (as ``kubectl rollout undo`` does, so the change-cause after a rollback is the revision's).
_KEPT_BY_ROLLBACK = (
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
)
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def rollback(deployment: str, ns: str | None = None, *, revision: int | None = None) -> Object:
    """Go back to the previous revision (or to ``revision``), as ``kubectl rollout undo`` does:
    the deployment's pod template is replaced by that revision's, and so are its annotations
    (the change-cause becomes the revision's). That starts a rolling update, which becomes a new
    revision. Rolling back to the template the deployment already has changes nothing.

    CLI: ``kubectl rollout undo deployment/web -n NS --to-revision=N``
    """
    target = _deployment(deployment)
    current = get(target, ns)
    if current.spec.get("paused"):
        raise CourseError(
            f"{target} is paused, and a paused deployment cannot be rolled back.",
            hint=f"Resume it first: k8s.rollout_resume({target!r}, ns).",
        )
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
    chosen = by_revision[revision]
    template = copy.deepcopy(chosen.spec["template"])
    template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    if template == current.spec["template"]:
        print(f"{target}: skipped rollback (its template already is revision {revision}'s)")
        return current
    kept = current.metadata.get("annotations") or {}
    annotations = {key: kept[key] for key in _KEPT_BY_ROLLBACK if key in kept}
    for key, value in (chosen.metadata.get("annotations") or {}).items():
        if key not in _KEPT_BY_ROLLBACK:
            annotations[key] = value
    request(
        "PATCH",
        object_path(target, ns),
        body=[
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations},
        ],
        content_type="application/json-patch+json",
        what=f"rolling back {target} to revision {revision}",
    )
    return get(target, ns)


def _patch_spec(target: str, ns: str | None, spec: dict[str, Any], what: str) -> Object:
    target = _deployment(target)
    request(
        "PATCH",
        object_path(target, ns),
        body={"spec": spec},
        content_type="application/strategic-merge-patch+json",
        what=f"{what} {target}",
    )
    return get(target, ns)


def rollout_pause(deployment: str, ns: str | None = None) -> Object:
    """Pause a deployment: changes to its pod template are kept but not rolled out (several
    changes then make one revision) until ``rollout_resume``. Scaling still works.

    CLI: ``kubectl rollout pause deployment/web -n NS``
    """
    return _patch_spec(deployment, ns, {"paused": True}, "pausing")


def rollout_resume(deployment: str, ns: str | None = None) -> Object:
    """Resume a paused deployment: what changed in its template while paused rolls out now.

    CLI: ``kubectl rollout resume deployment/web -n NS``
    """
    return _patch_spec(deployment, ns, {"paused": False}, "resuming")


def rollout_restart(deployment: str, ns: str | None = None) -> Object:
    """Replace every pod of a deployment by a rolling update, with nothing else changed: the time
    is written into the pod template's annotations, which makes a new revision.

    CLI: ``kubectl rollout restart deployment/web -n NS``
    """
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    template = {"metadata": {"annotations": {RESTARTED_AT: now}}}
    return _patch_spec(deployment, ns, {"template": template}, "restarting")
