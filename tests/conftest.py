"""Shared fixtures. Integration tests use the real Docker engine and the real cluster that
`make test` brings up; nothing here fakes either of them."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Generator, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

# What the lesson runs measured, printed at the end (times are reported, never asserted).
LESSON_TIMES = pytest.StashKey[str]()
# The lessons' runs, started in the background once the tests are collected.
LESSON_RUNS = pytest.StashKey[dict[Path, "Future[Any]"]]()
# The chapters' gradings, started in the background once the lessons are done.
GRADING_RUNS = pytest.StashKey[dict[str, "Future[dict[str, Any]]"]]()
# Held by the background gradings while a chapter is graded: a test that needs no grading in
# progress (what `make classroom-down` removes depends on it) holds it in between.
BETWEEN_GRADINGS = threading.Lock()
# The modules whose tests wait for the lessons or grade whole assignments (minutes of CPU).
HEAVY = ("test_grading", "test_notebooks")


@pytest.fixture(autouse=True)
def _learner(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests act as their own learner, so they never touch a person's containers or namespaces.
    monkeypatch.setenv("COURSE_LEARNER", "pytest")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


@pytest.fixture(scope="session")
def docker_engine() -> None:
    from helpers._docker.engine import client

    client()  # raises DockerNotRunning, which fails loudly instead of skipping


@pytest.fixture(scope="session")
def cluster() -> None:
    from helpers import k8s

    k8s.request("GET", "/version")  # raises ClusterUnreachable with the fix; no test is skipped


@pytest.fixture
def no_grading_running() -> Iterator[None]:
    """Holds the background gradings (tests/test_grading.py) between two chapters."""
    with BETWEEN_GRADINGS:
        yield


@pytest.fixture
def chapter01(docker_engine: None) -> Iterator[None]:
    from helpers import _identity, docker

    _identity.chapter("01-containers")
    docker.cleanup()
    yield
    docker.cleanup()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests that stop and restart the whole cluster run last, after everything that needs it.
    # Before them, the gradings and the lessons' tests: the lessons run in the background from
    # the start (pytest_collection_finish), while the lighter tests, which mostly wait for the
    # cluster, leave the two cores half idle.
    items.sort(
        key=lambda item: (
            item.get_closest_marker("lifecycle") is not None,
            item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in HEAVY,
        )
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    from tests.test_grading import start_gradings
    from tests.test_notebooks import start_lessons

    start_lessons(session)
    start_gradings(session)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if LESSON_TIMES in config.stash:
        terminalreporter.write_line(config.stash[LESSON_TIMES])


# COURSE_TIMELINE=file: when each test started and ended, and the load, to see what make test's
# time is spent on (a tool for whoever shortens it; nothing reads it).
def timeline(started: float, what: str) -> None:
    """One line of the timeline: start, seconds, load, what ran (nothing without COURSE_TIMELINE)."""
    if path := os.environ.get("COURSE_TIMELINE"):
        with open(path, "a") as out:
            load = os.getloadavg()[0]
            out.write(f"{started:.0f}\t{time.time() - started:.1f}\t{load:.1f}\t{what}\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None]:
    started = time.time()
    yield
    timeline(started, item.nodeid)
