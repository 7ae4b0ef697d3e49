"""The course helpers: Docker and Kubernetes in a few readable calls.

    import helpers
    from helpers import docker, k8s, check

    me = helpers.setup("01-containers")   # who you are, which chapter; names get your prefix
    helpers.doctor()                   # is everything ready?
    docker.run("course/web:v1", "web", ports={80: 8080})
    helpers.fetch("http://127.0.0.1:8080/")

Modules: ``docker`` (one function per docker command), ``k8s`` (one function per kubectl verb,
each naming its REST call), ``check`` (grading checks that explain failures). Every error is a
``CourseError`` with a ``hint``; see ``helpers.errors``.
"""

from . import check, docker, errors, k8s
from ._docker import free_port
from ._doctor import doctor
from ._errors import CourseError
from ._http import fetch
from ._identity import Chapter
from ._images import build_course_images
from ._monitor import Monitor
from ._output import Table
from ._setup import setup

__all__ = [
    "Chapter",
    "CourseError",
    "Monitor",
    "Table",
    "build_course_images",
    "check",
    "docker",
    "doctor",
    "errors",
    "fetch",
    "free_port",
    "k8s",
    "setup",
]
