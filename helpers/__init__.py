"""The course helpers: Docker and Kubernetes in a few readable calls.

    import helpers
    from helpers import docker, k8s, check

    me = helpers.setup("01-containers")   # who you are, which chapter; names get your prefix
    helpers.doctor()                       # is everything ready?
    docker.run("course/web:v1", "web", ports={80: 8080})
    helpers.fetch("http://127.0.0.1:8080/")

Modules: ``docker`` (one function per docker command), ``k8s`` (one function per kubectl verb,
each naming its REST request), ``helm`` (one function per helm command), ``check`` (grading
checks that explain failures), ``errors`` (one tree of errors, each with a hint). Everything else in this package is private machinery.
"""

from . import check, docker, errors, helm, k8s
from ._doctor import doctor
from ._http import fetch, free_port
from ._identity import Chapter
from ._monitor import Monitor
from ._output import Picture, Table
from ._predict import predict
from ._setup import setup
from ._types import ExecResult, Usage

__all__ = [
    "Chapter",
    "ExecResult",
    "Monitor",
    "Picture",
    "Table",
    "Usage",
    "check",
    "docker",
    "doctor",
    "errors",
    "fetch",
    "free_port",
    "helm",
    "k8s",
    "predict",
    "setup",
]
