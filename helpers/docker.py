"""Docker for the containers chapter: each function mirrors one ``docker`` command.

Pass short names (``"web"``); on the engine they carry your prefix (``"alice-01-web"``), so
learners sharing one engine never collide. Only your own containers are listed or touched.
Every failure is a ``helpers.errors.CourseError`` that says what to do next.

>>> from helpers import docker
>>> docker.run("course/web:v1", "web", ports={80: 8080})   # doctest: +SKIP
>>> docker.logs("web")                                     # doctest: +SKIP

The code is in ``helpers/_docker/``, one module per concern.
"""

from ._docker.containers import Container, cleanup, exec, inspect, logs, ps, rm, run, stop
from ._docker.images import Image, build, image, images
from ._docker.stats import StatsSampler as _StatsSampler
from ._docker.stats import stats
from ._monitor import Monitor as _Monitor
from ._monitor import live as _live


def monitor(*names: str, interval: float = 1.0) -> _Monitor:
    """A live CPU and memory plot of your containers; it starts at once, ``.stop()`` ends it and
    leaves the last picture.

    CLI: ``docker stats alice-01-web``
    """
    sampler = _StatsSampler(names)
    return _live(sampler.sample, title="docker stats: " + ", ".join(names), interval=interval)


__all__ = [
    "Container",
    "Image",
    "build",
    "cleanup",
    "exec",
    "image",
    "images",
    "inspect",
    "logs",
    "monitor",
    "ps",
    "rm",
    "run",
    "stats",
    "stop",
]
