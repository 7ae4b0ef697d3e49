"""CPU and memory of containers, as ``docker stats`` computes them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from .._errors import ContainerNotFound
from .._types import Usage
from .containers import _get
from .engine import engine_errors


def _counters(name: str) -> tuple[float, float, int, float]:
    container = _get(name)
    with engine_errors(f"docker stats {container.name}"):
        raw = container.stats(stream=False, one_shot=True)
    cpu = raw.get("cpu_stats") or {}
    memory = raw.get("memory_stats") or {}
    cache = (memory.get("stats") or {}).get("cache", 0)
    return (
        float((cpu.get("cpu_usage") or {}).get("total_usage", 0)),
        float(cpu.get("system_cpu_usage", 0)),
        int(cpu.get("online_cpus") or 1),
        max(0.0, float(memory.get("usage", 0)) - cache) / 2**20,
    )


def _counters_or_none(name: str) -> tuple[float, float, int, float] | None:
    try:
        return _counters(name)
    except ContainerNotFound:  # gone, or removed meanwhile: it reads as zero
        return None


class StatsSampler:
    """CPU% from the difference between two reads of the container's counters, like docker stats.
    A container that is gone (or not running) reads as zero."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self._last: dict[str, tuple[float, float]] = {}

    def sample(self) -> list[Usage]:
        # The engine answers each container's stats after up to a second: ask for all at once.
        with ThreadPoolExecutor(max_workers=max(1, len(self.names))) as pool:
            counters = list(pool.map(_counters_or_none, self.names))
        usages = []
        for name, read in zip(self.names, counters, strict=True):
            if read is None:
                usages.append(Usage(name, 0.0, 0.0))
                continue
            total, system, cpus, memory = read
            before = self._last.get(name)
            self._last[name] = (total, system)
            cpu = 0.0
            if before and system > before[1]:
                cpu = (total - before[0]) / (system - before[1]) * cpus * 100
            usages.append(Usage(name, round(max(cpu, 0.0), 1), round(memory, 1)))
        return usages


def stats(name: str) -> Usage:
    """CPU (percent of one core) and memory of a container, measured over half a second.

    CLI: ``docker stats --no-stream alice-01-web``
    """
    sampler = StatsSampler([name])
    sampler.sample()
    time.sleep(0.5)
    return sampler.sample()[0]
