"""Docker for the containers chapter: each function mirrors one ``docker`` command.

Pass short names ("web"); on the engine they carry your prefix ("alice-01-web").

>>> from helpers import docker
>>> docker.run("course/web:v1", "web", ports={80: 8080})   # doctest: +SKIP
>>> docker.logs("web")                                     # doctest: +SKIP
"""

from ._docker import (
    Container,
    Image,
    Usage,
    build,
    cleanup,
    exec,
    free_port,
    image,
    images,
    inspect,
    logs,
    ps,
    rm,
    run,
    stats,
    stop,
)
from ._docker import StatsSampler as _StatsSampler
from ._monitor import Monitor as _Monitor
from ._monitor import live as _live
from ._output import ExecResult


def monitor(*names: str, interval: float = 1.0) -> _Monitor:
    """A live CPU and memory plot of your containers; it starts at once, ``.stop()`` ends it.

    CLI: ``docker stats alice-01-web``
    """
    sampler = _StatsSampler(names)
    return _live(sampler.sample, title="docker stats: " + ", ".join(names), interval=interval)


__all__ = [
    "Container",
    "ExecResult",
    "Image",
    "Usage",
    "build",
    "cleanup",
    "exec",
    "free_port",
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
