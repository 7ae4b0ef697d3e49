"""The version ranges in pyproject.toml are true: the lowest allowed version of every direct
dependency installs, and the helpers work with it (unit tests, and one test against the real
cluster and engine). The environment is cached under ~/.cache, keyed by the ranges."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("COURSE_CACHE", Path.home() / ".cache" / "cloud-native-course"))

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.docker]


def _lowest_environment() -> Path:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    build = project["build-system"]["requires"]
    ranges = "\n".join(
        build
        + project["project"]["dependencies"]
        + project["project"]["optional-dependencies"]["test"]
    )
    folder = CACHE / f"lowest-deps-{hashlib.sha256(ranges.encode()).hexdigest()[:12]}"
    python = folder / "bin" / "python"
    if not (folder / ".complete").exists():
        uv = [sys.executable, "-m", "uv"]
        subprocess.run(
            [*uv, "venv", "-q", "--clear", "-p", sys.executable, str(folder)], check=True
        )
        # The package itself is built with the lowest setuptools the build-system allows.
        pinned = folder / "build-constraints.txt"
        pinned.write_text("\n".join(r.replace(">=", "==").split(",")[0] + ".*" for r in build))
        install = ["pip", "install", "-q", "--python", str(python), "--resolution", "lowest-direct"]
        install += ["--build-constraint", str(pinned), "--reinstall-package", "cloud-native-course"]
        subprocess.run([*uv, *install, "-e", ".[test]"], cwd=REPO, check=True, timeout=900)
        (folder / ".complete").touch()
    return python


def _floors() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    found = {}
    for requirement in project["dependencies"] + project["optional-dependencies"]["test"]:
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*(?:>=|==)\s*([0-9.]+)", requirement)
        assert match, f"{requirement}: give every dependency a lowest version"
        found[match.group(1)] = match.group(2)
    return found


def test_the_lowest_allowed_versions_install_and_run_the_helpers() -> None:
    python = _lowest_environment()
    floors = _floors()
    report = subprocess.run(
        [
            python,
            "-c",
            "import importlib.metadata as m, json, sys;"
            "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))",
            *floors,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = json.loads(report.stdout)
    for name, floor in floors.items():
        wanted = Version(floor).release
        got = Version(installed[name]).release
        assert got[: len(wanted)] == wanted, (
            f"{name}: pyproject allows {floor}, but the lowest that installs beside the others "
            f"is {installed[name]}; raise the floor to what is true"
        )
    done = subprocess.run(
        [
            python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_unit.py",
            "tests/test_cli.py::test_request_is_kubectl_get_raw",
            "tests/test_cli.py::test_docker_ps_inspect_logs_exec_match_the_cli",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
