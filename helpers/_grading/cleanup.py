"""Remove what a student's graded notebook left on the engine and the cluster: containers and
images labelled ``course.learner=<learner>``, namespaces with that label (their pods first,
without a grace period, so a class of 30 never fills the node's pod limit), the volumes ``apply``
labelled, and the files of the namespaces' manual volumes."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field

from .._cluster import volumes_folder
from .._errors import CourseError, DockerNotRunning, ObjectNotFound


def learner_of(student: str) -> str:
    """The learner name a graded kernel uses for this student id: the prefix of every container
    and namespace its notebook creates (``helpers._identity`` maps it; see its ``learner_name``)."""
    from .._identity import learner_label

    return learner_label(student)


@dataclass
class Removed:
    containers: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)  # deleted
    emptied: list[str] = field(default_factory=list)  # a classroom's: emptied, kept
    cluster_objects: list[str] = field(default_factory=list)  # volumes: in no namespace
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{len(items)} {what}"
            for what, items in (
                ("container(s)", self.containers),
                ("image(s)", self.images),
                ("namespace(s)", self.namespaces),
                ("emptied classroom namespace(s)", self.emptied),
                ("volume(s)", self.cluster_objects),
            )
        ]
        return ", ".join(parts)


def _engine(learner: str, removed: Removed) -> None:
    import docker

    from .._docker.engine import client

    label = f"course.learner={learner}"
    engine = client()
    for container in engine.containers.list(all=True, filters={"label": label}):
        try:
            container.remove(force=True)
            removed.containers.append(str(container.name))
        except docker.errors.NotFound:
            continue
    for image in engine.images.list(filters={"label": label}):
        for tag in image.tags:
            try:
                engine.images.remove(tag, force=True)
                removed.images.append(tag)
            except docker.errors.NotFound:
                continue


def wait_gone(namespaces: list[str], timeout: float) -> list[str]:
    """Wait until these namespaces are gone; returns those still there at the timeout."""
    from .._k8s.objects import list_objects

    left = list(namespaces)
    deadline = time.monotonic() + timeout
    while left:
        still = {ns.name for ns in list_objects("namespaces")}
        left = [name for name in left if name in still]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return left


def _cluster(learner: str, removed: Removed, timeout: float | None) -> None:
    from .._k8s.client import request
    from .._k8s.objects import delete_cluster_objects, empty_namespace, list_objects

    removed.cluster_objects.extend(delete_cluster_objects(learner))  # volumes outlive namespaces

    found = list_objects("namespaces", selector=f"course.learner={learner}")
    for ns in found:
        classroom = ns.labels.get("course.classroom") == "student"  # made by make classroom
        if ns.status.get("phase") != "Terminating":
            try:
                # The pods go at once (no grace period): a graded notebook's, not a service.
                request(
                    "DELETE",
                    f"/api/v1/namespaces/{ns.name}/pods",
                    body={"gracePeriodSeconds": 0},
                    what=f"deleting the pods in {ns.name}",
                )
                if classroom:  # it keeps its quota and the student's access: emptied only
                    empty_namespace(ns.name, timeout=0)
                else:
                    request("DELETE", f"/api/v1/namespaces/{ns.name}", what=f"deleting {ns.name}")
            except ObjectNotFound:
                continue
        (removed.emptied if classroom else removed.namespaces).append(ns.name)
    volumes = volumes_folder()
    for name in removed.namespaces + removed.emptied:
        # A Retain volume's files stay on the node: a regrade must not find this run's.
        if volumes is not None:
            shutil.rmtree(volumes / name, ignore_errors=True)
    if timeout is None:
        return
    left = wait_gone(removed.namespaces, timeout)
    if left:
        removed.problems.append(f"namespace(s) {', '.join(left)} still terminating")


def remove_learner_resources(learner: str, *, timeout: float | None = 120) -> Removed:
    """Remove the learner's containers, images and namespaces; wait (up to ``timeout``; None:
    not at all) until the namespaces are gone. Problems are returned, not raised: grading goes
    on. Their pods are deleted at once either way, so they stop counting against the node."""
    removed = Removed()
    try:
        _engine(learner, removed)
    except DockerNotRunning:
        pass  # no engine, no containers
    except CourseError as error:
        removed.problems.append(f"containers not removed: {error.message}")
    except Exception as error:  # the Docker SDK's own errors
        removed.problems.append(f"containers not removed: {type(error).__name__}: {error}")
    try:
        _cluster(learner, removed, timeout)
    except CourseError as error:
        removed.problems.append(f"namespaces not removed: {error.message}")
    return removed
