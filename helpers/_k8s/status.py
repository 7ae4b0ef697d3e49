"""Reading an object's state from its JSON: plain functions on plain data, no API calls."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

Raw = Mapping[str, Any]

# Container states that will not fix themselves: a wait for Ready stops early on these.
HOPELESS_REASONS = {
    "ErrImagePull": "the image is not in the cluster's image store, and the course never pulls: "
    "check the name and tag, and load the image (make images, or k8s.load_image)",
    "ImagePullBackOff": "the image is not in the cluster's image store, and the course never "
    "pulls: check the name and tag, and load the image (make images, or k8s.load_image)",
    "InvalidImageName": "the image name is not valid",
    "CrashLoopBackOff": "the container keeps exiting: read its logs with previous=True",
    "CreateContainerConfigError": "the container's config refers to something missing "
    "(a ConfigMap, Secret or key)",
    "RunContainerError": "the container could not start: check its command",
    "CreateContainerError": "the container could not be created: check its command and mounts",
}
_STARTING = ("ContainerCreating", "PodInitializing")


def condition_true(raw: Raw, condition_type: str) -> bool:
    """Whether the object has ``condition_type`` with status True (``Ready``, ``Available``...)."""
    return any(
        c.get("type") == condition_type and c.get("status") == "True"
        for c in (raw.get("status") or {}).get("conditions") or []
    )


def pod_status(pod: Raw) -> str:
    """The STATUS column of ``kubectl get pods``: a waiting reason if there is one, else the phase."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    inits = status.get("initContainerStatuses") or []
    sidecars = {
        c.get("name")
        for c in (pod.get("spec") or {}).get("initContainers") or []
        if c.get("restartPolicy") == "Always"
    }

    def init_done(c: Raw) -> bool:
        if c.get("name") in sidecars:  # a native sidecar counts once it has started
            return bool(c.get("started"))
        return ((c.get("state") or {}).get("terminated") or {}).get("exitCode") == 0

    done = sum(1 for c in inits if init_done(c))
    if inits and done < len(inits):
        for container in inits:
            reason = ((container.get("state") or {}).get("waiting") or {}).get("reason")
            if reason and reason not in _STARTING:
                return f"Init:{reason}"
        return f"Init:{done}/{len(inits)}"
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        reason = (state.get("waiting") or state.get("terminated") or {}).get("reason")
        if reason and reason not in _STARTING:
            return str(reason)
    return str(status.get("phase", "Unknown"))


def ready_text(pod: Raw) -> str:
    """The READY column: ready containers / containers, e.g. ``1/2``."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or []) or len(statuses)
    return f"{sum(1 for c in statuses if c.get('ready'))}/{total}"


def restarts(pod: Raw) -> int:
    return sum(
        int(c.get("restartCount", 0))
        for c in (pod.get("status") or {}).get("containerStatuses") or []
    )


def rollout_complete(raw: Raw) -> bool:
    """What ``kubectl rollout status`` waits for: every replica updated, available, and no old
    pod left (not even one shutting down)."""
    spec, status = raw.get("spec") or {}, raw.get("status") or {}
    wanted = spec.get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= (raw.get("metadata") or {}).get("generation", 0)
        and status.get("updatedReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted
        and status.get("availableReplicas", 0) == wanted
        # Old pods still shutting down (reported since Kubernetes 1.33) count as not done yet.
        and status.get("terminatingReplicas", 0) == 0
    )


def age(timestamp: str | None) -> str:
    """``2026-11-28T08:00:00Z`` -> ``45s`` or ``3m``, as kubectl shows ages."""
    if not timestamp:
        return ""
    then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = int((datetime.now(UTC) - then).total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    return f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"


def summary(raw: Raw) -> str:
    """A few words on an object's state, for printing it."""
    kind, status, spec = raw.get("kind"), raw.get("status") or {}, raw.get("spec") or {}
    if kind == "Pod":
        return f"{pod_status(raw)}, ready {ready_text(raw)}"
    if kind in ("Deployment", "ReplicaSet", "StatefulSet"):
        return (
            f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)} ready, "
            f"{status.get('updatedReplicas', status.get('replicas', 0))} up to date"
        )
    if kind in ("PersistentVolumeClaim", "PersistentVolume", "Namespace"):
        return str(status.get("phase", "unknown"))
    if kind == "HorizontalPodAutoscaler":
        return hpa_summary(raw)
    if kind == "Service":
        return f"{spec.get('type', 'ClusterIP')} {spec.get('clusterIP', '')}".strip()
    return "present"


def hpa_summary(raw: Raw) -> str:
    """What ``kubectl get hpa`` shows: the CPU target and its current value, and the replicas."""
    spec, state = raw.get("spec") or {}, raw.get("status") or {}
    target = next(
        (
            m["resource"]["target"].get("averageUtilization")
            for m in spec.get("metrics") or []
            if m.get("type") == "Resource" and m["resource"].get("name") == "cpu"
        ),
        None,
    )
    current = next(
        (
            m["resource"]["current"].get("averageUtilization")
            for m in state.get("currentMetrics") or []
            if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"
        ),
        None,
    )
    shown = "<unknown>" if current is None else f"{current}%"
    return (
        f"cpu {shown}/{target}%, {state.get('currentReplicas', 0)} replicas "
        f"(min {spec.get('minReplicas', 1)}, max {spec.get('maxReplicas')})"
    )
