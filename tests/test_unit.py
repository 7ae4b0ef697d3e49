"""Unit tests of pure logic: plain data in, plain data out. No engine, no cluster."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

import helpers
from helpers import _identity, _k8s, _output
from helpers._errors import CheckFailed, CourseError, ManifestRejected, WaitTimeout

REPO = Path(__file__).resolve().parent.parent


# --- identity -------------------------------------------------------------------------------


def test_learner_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_LEARNER", "Ada Lovelace!")
    current = _identity.chapter("03-pods")
    assert current.learner == "ada-lovelace"
    assert current.prefix == "ada-lovelace-03"
    assert current.namespace == "ada-lovelace-03-pods"
    assert current.labels == {"course.learner": "ada-lovelace", "course.chapter": "03-pods"}


def test_autograde_names_the_learner_after_the_student(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "autograded" / "Student_42" / "03-pods"
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("COURSE_LEARNER", "instructor")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert _identity.learner_name() == "student-42"
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    assert _identity.learner_name() == "instructor"


def test_chapter_names_are_checked() -> None:
    with pytest.raises(CourseError, match="not a chapter name"):
        _identity.chapter("pods")


# --- errors and output ----------------------------------------------------------------------


def test_errors_print_message_command_output_and_fix() -> None:
    error = CourseError(
        "It broke.", hint="Do this.", command=["kind", "load", "x y"], output="a\nb"
    )
    text = str(error)
    assert text.splitlines()[0] == "It broke."
    assert "Command: kind load 'x y'" in text
    assert "    b" in text
    assert text.endswith("Fix: Do this.")


def test_check_failures_are_assertion_errors_that_say_where_to_look() -> None:
    failure = CheckFailed("pod/web: expected 2, found 1.", hint="k8s.logs(...)")
    assert isinstance(failure, AssertionError)
    assert str(failure) == "✗ pod/web: expected 2, found 1.\n  Look at: k8s.logs(...)"


def test_table_renders_text_and_html() -> None:
    table = _output.Table(["name", "status"], [["web", "<running>"]])
    assert str(table).splitlines() == ["name  status", "web   <running>"]
    assert "&lt;running&gt;" in table._repr_html_()
    assert table.column("status") == ["<running>"]
    assert list(table) == [{"name": "web", "status": "<running>"}]
    assert "(none)" in str(_output.Table(["a"], []))


# --- Kubernetes logic on plain data ---------------------------------------------------------


def _api_error(status: int, body: str) -> ApiException:
    error = ApiException(status=status, reason="x")
    error.body = body
    return error


def test_server_side_apply_schema_errors_name_the_field() -> None:
    body = (
        '{"message": "failed to create typed patch object (/bad; /v1, Kind=Pod): '
        '.spec.containerz: field not declared in schema"}'
    )
    error = _k8s._translate(_api_error(500, body), what="applying pod/bad")
    assert isinstance(error, ManifestRejected)
    assert "Field: spec.containerz." in error.message
    assert "field not declared in schema" in error.message


def test_validation_errors_name_the_field() -> None:
    body = (
        '{"message": "Pod \\"bad\\" is invalid: spec.containers[0].image: Required value",'
        ' "details": {"causes": [{"field": "spec.containers[0].image"}]}}'
    )
    error = _k8s._translate(_api_error(422, body), what="applying pod/bad")
    assert isinstance(error, ManifestRejected)
    assert "Field: spec.containers[0].image." in error.message


def test_connection_errors_become_cluster_unreachable_with_a_fix() -> None:
    import urllib3

    error = _k8s._translate(urllib3.exceptions.MaxRetryError(None, "/"), what="GET /version")  # type: ignore[arg-type]
    assert type(error).__name__ == "ClusterUnreachable"
    assert error.hint and "make cluster" in error.hint


def _pod(waiting: str | None = None, phase: str = "Pending", ready: bool = False) -> dict:  # type: ignore[type-arg]
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "c", "ready": ready, "state": state}],
        },
    }


def test_pod_status_reads_like_kubectl() -> None:
    assert _k8s.pod_status(_pod("CrashLoopBackOff", "Running")) == "CrashLoopBackOff"
    assert _k8s.pod_status(_pod("ContainerCreating")) == "Pending"
    assert _k8s.pod_status(_pod(None, "Running", ready=True)) == "Running"


def test_wait_conditions() -> None:
    assert _k8s._satisfied(_pod(None, "Running", ready=True), "Ready")
    assert not _k8s._satisfied(_pod(None, "Running"), "Ready")
    assert _k8s._satisfied(_pod("CrashLoopBackOff", "Running"), "CrashLoopBackOff")
    rolling = {
        "kind": "Deployment",
        "metadata": {"generation": 2},
        "spec": {"replicas": 3},
        "status": {
            "observedGeneration": 2,
            "updatedReplicas": 3,
            "replicas": 4,
            "availableReplicas": 3,
        },
    }
    assert not _k8s._satisfied(rolling, "Complete"), "an old pod is still there"
    rolling["status"]["replicas"] = 3  # type: ignore[index]
    assert _k8s._satisfied(rolling, "Complete")
    assert _k8s._satisfied({"kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}}, "Bound")


def test_targets_accept_kubectl_short_names() -> None:
    assert _k8s._parse_target("deploy/web") == ("apps/v1", "Deployment", "web")
    assert _k8s._parse_target("pvc/data") == ("v1", "PersistentVolumeClaim", "data")
    assert _k8s._parse_target("namespaces/x")[1] == "Namespace"
    with pytest.raises(CourseError, match="kind/name"):
        _k8s._parse_target("web")


def test_manifests_load_from_text_and_reject_junk(tmp_path: Path) -> None:
    docs = _k8s._load_manifests("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n")
    assert docs == [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}]
    with pytest.raises(ManifestRejected, match="YAML"):
        _k8s._load_manifests("a: [\n  b")
    with pytest.raises(ManifestRejected, match="apiVersion, kind"):
        _k8s._load_manifests("just: text\nmore: text")
    with pytest.raises(CourseError, match="no manifest file"):
        _k8s._load_manifests(str(tmp_path / "missing.yaml"))


def test_wait_timeout_is_a_course_error() -> None:
    assert issubclass(WaitTimeout, CourseError)


# --- the public API -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module", [helpers, helpers.docker, helpers.k8s, helpers.check, helpers.errors]
)
def test_all_names_exactly_the_public_api(module: object) -> None:
    exported = set(module.__all__)  # type: ignore[attr-defined]
    public = {
        name
        for name, value in vars(module).items()
        if (not name.startswith("_") and getattr(value, "__module__", "").startswith("helpers"))
        or (not name.startswith("_") and type(value).__name__ == "module" and name in exported)
    }
    assert exported == public, f"__all__ and the public names differ: {exported ^ public}"
    for name in exported:
        assert getattr(module, name).__doc__, f"{name} needs a docstring"


def test_every_public_function_shows_its_cli_equivalent() -> None:
    skip = {
        "Object",
        "pod_status",
        "monitor",
        "load_image",
        "backend",
        "request",
        "summary",
        "usage",
        "free_port",
        "Container",
        "Image",
        "Usage",
        "ExecResult",
        "list_objects",
        "delete_namespace",
        "build_image",
    }
    for module in (helpers.docker, helpers.k8s):
        for name in module.__all__:
            doc = getattr(module, name).__doc__ or ""
            if name not in skip:
                assert "CLI:" in doc, f"{module.__name__}.{name} should name its CLI command"


def test_no_raw_client_exception_is_raised_by_helpers_modules() -> None:
    # Errors from docker/kubernetes must be converted at the edge: no `raise` of their classes.
    for path in (REPO / "helpers").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                call = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                name = ast.unparse(call)
                assert not name.startswith(("docker.errors", "ApiException(", "kubernetes")) or (
                    name == "ApiException" and path.name == "_k8s.py"
                ), f"{path.name} raises {name}"


# --- project files --------------------------------------------------------------------------


def _requirement_names(requirements: list[str]) -> dict[str, str]:
    found = {}
    for requirement in requirements:
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*(.*)$", requirement.strip())
        assert match, requirement
        found[match.group(1).lower().replace("_", "-")] = match.group(2).replace(" ", "")
    return found


def test_environment_yml_lists_the_same_dependencies_as_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = _requirement_names(project["dependencies"])
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    assert "conda-forge" in environment["channels"]
    conda = _requirement_names(
        [d.split("#")[0] for d in environment["dependencies"] if isinstance(d, str)]
    )
    # conda-forge names two of them differently from PyPI.
    for pypi_name, conda_name in {"kubernetes": "python-kubernetes", "docker": "docker-py"}.items():
        conda[pypi_name] = conda.pop(conda_name, "missing")
    for name, spec in wanted.items():
        assert name in conda, f"environment.yml lacks {name}"
        assert conda[name] == spec, (
            f"{name}: pyproject says {spec!r}, environment.yml {conda[name]!r}"
        )
    assert {"kind", "kubectl", "python", "pip"} <= set(conda)
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert any(line.startswith("-e .") for line in pip_section), (
        "the course itself is pip-installed"
    )


def test_kind_config_parses_and_pins_the_local_clusters_minor() -> None:
    config = yaml.safe_load((REPO / "cluster" / "kind.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["name"] == "cloud-native-course"
    image = config["nodes"][0]["image"]
    assert re.fullmatch(r"kindest/node:v1\.\d+\.\d+@sha256:[0-9a-f]{64}", image), image
    versions = (REPO / "cluster" / "local" / "versions.sh").read_text()
    local = re.search(r"K8S_VERSION:-v(1\.\d+)\.", versions)
    assert local and image.startswith(f"kindest/node:v{local.group(1)}."), (
        "keep kind and local on one minor"
    )
    mounts = config["nodes"][0]["extraMounts"]
    assert mounts[0]["containerPath"] == "/var/lib/cloud-native-course/volumes"


def test_course_images_never_use_latest() -> None:
    for dockerfile in (REPO / "images").rglob("Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("FROM") and "scratch" not in line:
                assert ":" in line and ":latest" not in line, f"{dockerfile}: {line}"


def test_test_cells_end_without_a_value() -> None:
    """nbgrader reads a test cell's last value as partial credit, so a test cell must not end in
    an expression that produces one (checks return None; port_published returns a port)."""
    import nbformat

    for path in sorted((REPO / "solutions").rglob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if not cell.metadata.get("nbgrader", {}).get("grade"):
                continue
            last = ast.parse(cell.source).body[-1]
            if isinstance(last, ast.Expr) and not isinstance(last.value, ast.Constant):
                call = ast.unparse(last.value)
                returns_none = call.startswith(("check.", "k8s.delete", "docker.rm("))
                assert returns_none and "port_published" not in call, (
                    f"{path.name} {cell.metadata['nbgrader']['grade_id']}: ends with {call[:60]}"
                )
