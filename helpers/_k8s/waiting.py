"""Waiting for an object to reach a condition, driven by a watch (as ``kubectl wait`` is)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from .._deadline import Deadline
from .._errors import ClusterUnreachable, Forbidden, KubernetesError, WaitTimeout
from . import status
from .client import get_or_none, watch
from .discovery import split_target
from .objects import Object, list_objects, namespace_for

Raw = Mapping[str, Any]


def jsonpath(raw: Raw, path: str) -> Any:
    """The value at a JSONPath as ``kubectl wait --for=jsonpath`` takes them: dots, list
    indexes and one kind of filter, e.g. ``.status.containerStatuses[0].restartCount`` or
    ``.status.conditions[?(@.type=="Progressing")].reason``. None when it is not there."""
    value: Any = raw
    steps = re.findall(r'\.([^.\[]+)|\[(\d+)\]|\[\?\(@\.(\w+)=="([^"]*)"\)\]', path)
    for key, index, field, wanted in steps:
        if key:
            value = value.get(key) if isinstance(value, Mapping) else None
        elif index:
            position = int(index)
            value = value[position] if isinstance(value, list) and position < len(value) else None
        else:  # [?(@.field=="wanted")]: the first item whose field has that value
            items = value if isinstance(value, list) else []
            value = next(
                (i for i in items if isinstance(i, Mapping) and i.get(field) == wanted), None
            )
        if value is None:
            return None
    return value


def satisfied(raw: Raw, condition: str) -> bool:
    """Whether an object (its JSON, with ``kind``) meets ``condition``."""
    kind, state = raw.get("kind"), raw.get("status") or {}
    if condition.startswith("{"):  # {.status.phase}=Bound, as kubectl wait --for=jsonpath=...
        path, _, value = condition[1:].partition("}=")
        found = jsonpath(raw, path)
        text = str(found).lower() if isinstance(found, bool) else str(found)  # JSON's true/false
        return found is not None and text == value
    if condition == "exists":
        return True
    if condition == "Ready" and kind in ("Deployment", "ReplicaSet", "StatefulSet"):
        wanted = int((raw.get("spec") or {}).get("replicas", 1))
        return int(state.get("readyReplicas", 0)) == wanted
    if condition in ("Complete", "Available") and kind in ("Deployment", "StatefulSet"):
        return status.rollout_complete(raw)
    if condition == "Bound":
        return state.get("phase") == "Bound"
    if kind == "Pod":
        if condition == "Ready":
            return status.condition_true(raw, "Ready")
        if condition == "Unschedulable":
            return any(
                c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
                for c in state.get("conditions") or []
            )
        if condition in ("Pending", "Running", "Succeeded", "Failed"):
            return state.get("phase") == condition
        if status.pod_status(raw) == condition:
            return True
    return status.condition_true(raw, condition)


def _deadline_exceeded(raw: Raw) -> Raw | None:
    """A Deployment's Progressing condition, when it says the progress deadline passed."""
    for c in (raw.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return dict(c)
    return None


def _stuck_pods(
    ns: str | None, raw: Raw, condition: str, old_news: str | None = None
) -> str | None:
    """Why the wait cannot succeed, if a pod it depends on is stuck for good. ``old_news``: the
    lastUpdateTime of a deadline exceeded before the wait began, not to be taken as an answer."""
    if condition in status.HOPELESS_REASONS or condition in (
        "Failed",
        "Succeeded",
        "deleted",
        "exists",
    ):
        return None
    if condition.startswith("{"):  # a field's value: a crashing pod may be just what is awaited
        return None
    kind = raw.get("kind")
    seen = (raw.get("status") or {}).get("observedGeneration", 0)
    current = seen >= (raw.get("metadata") or {}).get("generation", 0)  # not an older spec's news
    if kind == "Deployment" and condition in ("Complete", "Available", "Ready") and current:
        exceeded = _deadline_exceeded(raw)
        if exceeded and exceeded.get("lastUpdateTime") != old_news:
            return f"the rollout exceeded its progress deadline: {exceeded.get('message', '')}"
    if kind == "Pod":
        candidates = [raw]
    elif kind in ("Deployment", "ReplicaSet", "StatefulSet"):
        labels = dict(((raw.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        if kind == "Deployment":  # only the newest ReplicaSet's pods: old ones are on their way out
            if not current:  # a new template (a rollback, say) not yet seen: its pods are not made
                return None
            newest = _newest_template_hash(ns, raw, labels)
            if newest is None:
                return None
            labels["pod-template-hash"] = newest
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        candidates = (
            [p.raw for p in list_objects("pods", ns, selector=selector)] if selector else []
        )
    else:
        return None
    for pod in candidates:
        pod_state = pod.get("status") or {}
        for container in (pod_state.get("initContainerStatuses") or []) + (
            pod_state.get("containerStatuses") or []
        ):
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason in status.HOPELESS_REASONS:
                return (
                    f"pod/{pod['metadata']['name']} container {container.get('name')!r} is "
                    f"{reason}: {status.HOPELESS_REASONS[reason]}."
                )
    return None


def _newest_template_hash(ns: str | None, deployment: Raw, labels: Mapping[str, str]) -> str | None:
    """The pod-template-hash of the ReplicaSet of the Deployment's current revision."""
    revision_key = "deployment.kubernetes.io/revision"
    revision = ((deployment.get("metadata") or {}).get("annotations") or {}).get(revision_key)
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    for rs in list_objects("replicasets", ns, selector=selector) if selector and revision else []:
        if (rs.metadata.get("annotations") or {}).get(revision_key) == revision:
            return rs.labels.get("pod-template-hash")
    return None


def _watch(path: str, name: str, resource_version: str, seconds: int) -> Iterator[dict[str, Any]]:
    """Changes to one object: ``GET PATH?watch=1&fieldSelector=metadata.name=NAME``."""
    return watch(path, resource_version, seconds, field_selector=f"metadata.name={name}")


def wait(target: str, condition: str, ns: str | None = None, *, timeout: float = 60) -> Object:
    """Wait until ``target`` meets ``condition``; returns the object as it was then (for
    ``deleted``: as it was last seen).

    Conditions, and the kubectl command that waits for the same:

    ==================  ==================================================================
    ``Ready``           ``kubectl wait --for=condition=Ready pod/web`` (pods; deployments:
                        all replicas ready)
    ``Complete``        ``kubectl rollout status deploy/web`` (a rollout has finished; unlike
                        kubectl, also waits until the old pods have finished stopping, and
                        gives a deadline exceeded before the wait began one more deadline)
    ``Bound``           ``kubectl wait --for=jsonpath='{.status.phase}'=Bound pvc/data``
    ``deleted``         ``kubectl wait --for=delete pod/web``
    ``exists``          ``kubectl wait --for=create pod/web``
    a pod phase         ``kubectl wait --for=jsonpath='{.status.phase}'=Failed pod/web``
    ``Unschedulable``   ``kubectl wait --for=condition=PodScheduled=false pod/web``
    a pod status        ``CrashLoopBackOff`` and the like, as the STATUS column shows it
    ``{PATH}=VALUE``    ``kubectl wait --for=jsonpath='{PATH}'=VALUE``, e.g.
                        ``{.status.containerStatuses[0].restartCount}=3``
    any other word      a status condition of that type: ``--for=condition=WORD``
    ==================  ==================================================================

    A pod that cannot get there (ErrImagePull, CrashLoopBackOff) ends the wait early with the
    reason; a timeout says the last state seen and shows recent events.

    CLI: ``kubectl wait --for=condition=Ready pod/web -n NS --timeout=60s``

    >>> wait("pod/web", "Ready", ns)   # doctest: +SKIP
    pod/web in alice-03-pods: Running, ready 1/1
    """
    resource, name = split_target(target)
    where = namespace_for(resource, ns)
    collection = resource.collection(where)
    deadline = Deadline(timeout)
    last: dict[str, Any] | None = None
    trouble_check = Deadline(0)
    # A rollback or a fix of a rollout past its deadline: the controller can mark the new
    # revision with the old verdict once before it sees progress. That verdict gets one more
    # deadline (and 10 s) to clear; one given after the wait began counts at once.
    old_news: str | None = None
    grace = Deadline(0)

    def seen(raw: Mapping[str, Any]) -> Object | None:
        nonlocal last, trouble_check, old_news, grace
        first = last is None
        last = {"kind": resource.kind, "apiVersion": resource.api_version, **raw}
        if condition != "deleted" and satisfied(last, condition):
            return Object(last)
        if first and (exceeded := _deadline_exceeded(last)):
            old_news = exceeded.get("lastUpdateTime")
            grace = Deadline(
                int((last.get("spec") or {}).get("progressDeadlineSeconds") or 600) + 10
            )
        if trouble_check.expired:
            trouble_check = Deadline(2)
            stuck = _stuck_pods(where, last, condition, None if grace.expired else old_news)
            if stuck:
                raise WaitTimeout(
                    f"{target} will not become {condition}: {stuck}",
                    hint=f"Look at: k8s.events({where!r}, about={target!r}), and fix the manifest.",
                )
        return None

    while True:
        current = get_or_none(f"{collection}/{name}")
        if current is None and condition == "deleted":
            return Object(
                last or {"kind": resource.kind, "metadata": {"name": name, "namespace": where}}
            )
        if current is not None and (done := seen(current)):
            return done
        if deadline.expired:
            break
        version = (current or {}).get("metadata", {}).get("resourceVersion", "")
        try:
            for event in _watch(collection, name, version, int(min(deadline.remaining, 5)) or 1):
                if event.get("type") == "DELETED" and condition == "deleted":
                    return Object(last or event.get("object") or {})
                if event.get("type") in ("ADDED", "MODIFIED") and (done := seen(event["object"])):
                    return done
                if event.get("type") == "ERROR" or trouble_check.expired or deadline.expired:
                    break  # an expired resourceVersion, or time to look at the pods again
        except (ClusterUnreachable, Forbidden):
            raise
        except KubernetesError:
            deadline.sleep(0.2)  # e.g. the watch was refused for an old version: read it again
    from .pods import events

    state = status.summary(last) if last else "it does not exist"
    recent = events(where, about=target, limit=5) if where and last else None
    raise WaitTimeout(
        f"{target} was not {condition} after {timeout:g} s. Last state seen: {state}.",
        hint=f"Look at: k8s.events({where!r}, about={target!r}) and k8s.pods({where!r}).",
        output=str(recent) if recent is not None and len(recent) else None,
    )
