"""The course's errors; see the tree in ``helpers._errors``. Catch ``CourseError`` for all of them."""

from ._errors import (
    BuildFailed,
    CheckFailed,
    ClusterUnreachable,
    CommandFailed,
    ContainerNotFound,
    CourseError,
    DockerError,
    DockerNotRunning,
    Forbidden,
    ImageNotFound,
    KubernetesError,
    ManifestRejected,
    NameTaken,
    ObjectNotFound,
    PortInUse,
    WaitTimeout,
)

__all__ = [
    "BuildFailed",
    "CheckFailed",
    "ClusterUnreachable",
    "CommandFailed",
    "ContainerNotFound",
    "CourseError",
    "DockerError",
    "DockerNotRunning",
    "Forbidden",
    "ImageNotFound",
    "KubernetesError",
    "ManifestRejected",
    "NameTaken",
    "ObjectNotFound",
    "PortInUse",
    "WaitTimeout",
]
