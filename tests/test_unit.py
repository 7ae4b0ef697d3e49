"""Unit tests of pure logic: plain data in, plain data out. No engine, no cluster."""

from __future__ import annotations

import ast
import re
import socket
import tomllib
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

import helpers
from helpers import _identity, _output
from helpers._errors import CheckFailed, CourseError, ManifestRejected, WaitTimeout
from helpers._k8s import client, discovery, objects, status, waiting

REPO = Path(__file__).resolve().parent.parent


# --- identity -------------------------------------------------------------------------------


def test_learner_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_LEARNER", "ada")
    current = _identity.chapter("03-pods")
    assert current.learner == "ada"
    assert current.prefix == "ada-03"
    assert current.namespace == "ada-03-pods"
    assert current.labels == {"course.learner": "ada", "course.chapter": "03-pods"}


def test_learner_ids_that_must_change_keep_apart_with_a_hash() -> None:
    assert _identity.learner_label("alice") == "alice"
    ids = [
        "Ada Lovelace!",
        "ada-lovelace",
        "Student_42",
        "student-42",
        "alice.smith-2026-spring-section-a",
        "alice.smith-2026-spring-section-b",
    ]
    labels = [_identity.learner_label(name) for name in ids]
    assert len(set(labels)) == len(ids), labels
    for label in labels:
        assert len(label) <= 20 and re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", label), label
    assert labels[0].startswith("ada-lovelace-"), "still readable"


def test_autograde_names_the_learner_after_the_student(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "autograded" / "Student_42" / "03-pods"
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("COURSE_LEARNER", "instructor")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert _identity.learner_name() == _identity.learner_label("Student_42")
    assert _identity.learner_name().startswith("student-42-")
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
    error = client._from_api_exception(_api_error(500, body), "applying pod/bad")
    assert isinstance(error, ManifestRejected)
    assert "Field: spec.containerz." in error.message
    assert "field not declared in schema" in error.message


def test_validation_errors_name_the_field() -> None:
    body = (
        '{"message": "Pod \\"bad\\" is invalid: spec.containers[0].image: Required value",'
        ' "details": {"causes": [{"field": "spec.containers[0].image"}]}}'
    )
    error = client._from_api_exception(_api_error(422, body), "applying pod/bad")
    assert isinstance(error, ManifestRejected)
    assert "Field: spec.containers[0].image." in error.message
    assert "apply it again" in (error.hint or "")


def test_a_refused_pod_update_says_delete_and_recreate() -> None:
    body = (
        '{"message": "Pod \\"web\\" is invalid: spec: Forbidden: pod updates may not change '
        'fields other than `spec.containers[*].image`, ...", "details": {"causes": []}}'
    )
    error = client._from_api_exception(_api_error(422, body), "applying pod/web")
    assert isinstance(error, ManifestRejected)
    assert "delete the object and create it again" in (error.hint or "")
    assert "apply it again" not in (error.hint or "")


def test_connection_errors_become_cluster_unreachable_and_bugs_stay_bugs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import urllib3

    monkeypatch.setenv("COURSE_CLUSTER", "local")
    with pytest.raises(helpers.errors.ClusterUnreachable) as caught, client.api_errors("x"):
        raise urllib3.exceptions.MaxRetryError(None, "/")  # type: ignore[arg-type]
    assert caught.value.hint and "make cluster" in caught.value.hint
    # A bug in the helpers is not dressed up as a cluster error.
    with pytest.raises(AttributeError), client.api_errors("GET /version"):
        raise AttributeError("'ApiClient' object has no attribute 'param_serialize'")


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
    assert status.pod_status(_pod("CrashLoopBackOff", "Running")) == "CrashLoopBackOff"
    assert status.pod_status(_pod("ContainerCreating")) == "Pending"
    assert status.pod_status(_pod(None, "Running", ready=True)) == "Running"


def test_wait_conditions() -> None:
    assert waiting.satisfied(_pod(None, "Running", ready=True), "Ready")
    assert not waiting.satisfied(_pod(None, "Running"), "Ready")
    assert waiting.satisfied(_pod("CrashLoopBackOff", "Running"), "CrashLoopBackOff")
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
    assert not waiting.satisfied(rolling, "Complete"), "an old pod is still there"
    rolling["status"]["replicas"] = 3  # type: ignore[index]
    assert waiting.satisfied(rolling, "Complete")
    assert waiting.satisfied(
        {"kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}}, "Bound"
    )


def test_wait_takes_jsonpath_conditions_as_kubectl_does() -> None:
    pod = _pod("CrashLoopBackOff", "Running")
    pod["status"]["containerStatuses"][0]["restartCount"] = 3
    assert waiting.satisfied(pod, "{.status.containerStatuses[0].restartCount}=3")
    assert not waiting.satisfied(pod, "{.status.containerStatuses[0].restartCount}=4")
    assert not waiting.satisfied(pod, "{.status.containerStatuses[5].restartCount}=3")
    assert waiting.satisfied(pod, "{.status.phase}=Running")
    assert waiting.satisfied(pod, "{.status.containerStatuses[0].ready}=false")
    filtered = '{.status.conditions[?(@.type=="Ready")].status}'
    assert waiting.satisfied(pod, filtered + "=False")
    assert not waiting.satisfied(pod, '{.status.conditions[?(@.type=="Gone")].status}=False')


def test_targets_resolve_every_name_the_server_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    served = discovery._from_aggregated(
        {
            "items": [
                {
                    "metadata": {"name": ""},
                    "versions": [
                        {
                            "version": "v1",
                            "resources": [
                                {
                                    "resource": "pods",
                                    "responseKind": {"kind": "Pod"},
                                    "scope": "Namespaced",
                                    "singularResource": "pod",
                                    "shortNames": ["po"],
                                },
                                {
                                    "resource": "namespaces",
                                    "responseKind": {"kind": "Namespace"},
                                    "scope": "Cluster",
                                    "singularResource": "namespace",
                                    "shortNames": ["ns"],
                                },
                            ],
                        }
                    ],
                },
                {
                    "metadata": {"name": "apps"},
                    "versions": [
                        {
                            "version": "v1",
                            "resources": [
                                {
                                    "resource": "deployments",
                                    "responseKind": {"kind": "Deployment"},
                                    "scope": "Namespaced",
                                    "singularResource": "deployment",
                                    "shortNames": ["deploy"],
                                }
                            ],
                        }
                    ],
                },
            ]
        }
    )
    monkeypatch.setattr(discovery, "_resources", served)
    monkeypatch.setattr(discovery, "forget", lambda: None)
    for word in ("deploy", "deployment", "deployments", "Deployment", "deployments.apps"):
        resource, name = discovery.split_target(f"{word}/web")
        assert (resource.api_version, resource.kind, name) == ("apps/v1", "Deployment", "web")
    assert discovery.resolve("po").collection("ns1") == "/api/v1/namespaces/ns1/pods"
    assert discovery.resolve("ns").collection("ignored") == "/api/v1/namespaces"
    assert discovery.for_manifest("apps/v1", "Deployment").plural == "deployments"
    with pytest.raises(CourseError, match="Did you mean 'deployment'"):
        discovery.resolve("deploymnet")
    with pytest.raises(ManifestRejected, match="Did you mean 'Deployment'"):
        discovery.for_manifest("apps/v1", "Deploymnet")
    with pytest.raises(CourseError, match="kind/name"):
        discovery.split_target("web")


def test_manifests_load_from_text_and_reject_junk(tmp_path: Path) -> None:
    docs = objects.load_manifests("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n")
    assert docs == [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}]
    with pytest.raises(ManifestRejected, match="YAML"):
        objects.load_manifests("a: [\n  b")
    with pytest.raises(ManifestRejected, match="apiVersion, kind"):
        objects.load_manifests("just: text\nmore: text")
    with pytest.raises(ManifestRejected, match=r"no metadata\.name"):
        objects.load_manifests({"apiVersion": "v1", "kind": "Pod", "metadata": {}})
    with pytest.raises(CourseError, match="no manifest file"):
        objects.load_manifests(str(tmp_path / "missing.yaml"))


def test_wait_timeout_is_a_course_error() -> None:
    assert issubclass(WaitTimeout, CourseError)


def test_poll_retries_until_an_answer_and_gives_up_at_the_deadline() -> None:
    import time

    from helpers._deadline import poll

    answers = iter([None, None, "ready"])
    assert poll(lambda: next(answers), timeout=5, what="x", interval=0.01) == "ready"
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"nothing did not happen within 0\.3 s"):
        poll(lambda: None, timeout=0.3, what="nothing", interval=0.05)
    assert time.monotonic() - started < 1.0

    def broken() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):  # only the errors named in retry_on are retried
        poll(broken, timeout=5, what="x", retry_on=(ValueError,))


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
    for module in (helpers, helpers.docker, helpers.k8s):
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) or type(value).__name__ == "module" or name == "free_port":
                continue
            assert "CLI:" in (value.__doc__ or ""), f"{module.__name__}.{name} should name its CLI"


def test_nothing_is_exported_twice() -> None:
    seen: dict[int, str] = {}
    for module in (helpers, helpers.docker, helpers.k8s, helpers.check, helpers.errors):
        for name in module.__all__:
            value = getattr(module, name)
            if type(value).__name__ == "module":
                continue
            where = f"{module.__name__}.{name}"
            assert id(value) not in seen, f"{where} is also exported as {seen[id(value)]}"
            seen[id(value)] = where


def test_public_modules_only_re_export_and_private_modules_hold_the_code() -> None:
    # The layout the helpers promise: public modules are short front doors.
    for public in ("k8s.py", "docker.py", "check.py", "errors.py", "__init__.py"):
        lines = (REPO / "helpers" / public).read_text().count("\n")
        assert lines < 120, f"helpers/{public} has {lines} lines; put code in a private module"
    for module in (REPO / "helpers").rglob("*.py"):
        lines = module.read_text().count("\n")
        assert lines < 450, f"{module.relative_to(REPO)} has {lines} lines; split it by concern"


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


# --- grading: default jobs, the sandbox (the grader's kernel: test_grader_kernel.py) ----------


def test_default_jobs_is_two_more_than_the_cores_unless_memory_is_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from helpers._grading import settings

    monkeypatch.setattr(settings.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(settings, "_memory_available", lambda: 16 * 2**30)
    assert settings.default_jobs() == 4
    monkeypatch.setattr(settings, "_memory_available", lambda: 2 * settings.MEMORY_PER_JOB)
    assert settings.default_jobs() == 2
    monkeypatch.setattr(settings, "_memory_available", lambda: 100)
    assert settings.default_jobs() == 1


def test_importing_helpers_leaves_plotting_and_widgets_for_later() -> None:
    import subprocess
    import sys

    # Every notebook, and every graded one twice, imports helpers first: these cost a second.
    probe = "import sys, helpers; print(sorted({'matplotlib', 'ipywidgets'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


def test_free_ports_are_outside_the_range_outgoing_connections_take() -> None:
    from helpers import _http

    outgoing = _http._ephemeral_ports()
    ports = {helpers.free_port() for _ in range(20)}
    assert len(ports) > 1, "the same port every time: two notebooks at once would collide"
    assert not any(port in outgoing for port in ports), (sorted(ports), outgoing)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", min(ports)))
        taken.listen()
        assert not _http._free(min(ports))


# --- helpers.helm: the flags it builds and the hints it gives (no helm run) -------------------


@pytest.mark.parametrize(
    ("values", "settings", "expected"),
    [
        (None, None, []),
        (None, {"replicas": 3}, ["--set", "replicas=3"]),
        (
            None,
            {"image.tag": "v2", "debug": True},
            ["--set", "image.tag=v2", "--set", "debug=true"],
        ),
        ("prod.yaml", {"replicas": 1}, ["--values", "prod.yaml", "--set", "replicas=1"]),
    ],
)
def test_helm_values_become_flags_in_helms_order(
    values: str | None, settings: dict[str, object] | None, expected: list[str]
) -> None:
    from helpers import helm

    assert helm._value_flags(values, settings) == expected


def test_helm_values_given_as_a_dict_go_through_a_file() -> None:
    from helpers import helm

    flags = helm._value_flags({"image": {"tag": "v2"}}, None)
    assert flags[0] == "--values"
    assert yaml.safe_load(Path(flags[1]).read_text()) == {"image": {"tag": "v2"}}


@pytest.mark.parametrize(
    ("reference", "version", "expected"),
    [
        ("charts/web", None, []),
        ("oci://localhost:5001/alice/charts/web", "0.1.0", ["--plain-http", "--version", "0.1.0"]),
        ("oci://registry.example/web", None, []),  # another registry: Helm's default, TLS
    ],
)
def test_only_the_course_registry_is_reached_over_plain_http(
    reference: str, version: str | None, expected: list[str]
) -> None:
    from helpers import helm

    assert helm._chart_flags(reference, version) == expected


@pytest.mark.parametrize(
    ("stderr", "advice"),
    [
        ("Error: INSTALLATION FAILED: cannot reuse a name that is still in use", "helm.upgrade"),
        ('Error: UPGRADE FAILED: "web" has no deployed releases', "uninstall"),
        ("Error: UPGRADE FAILED: conflict occurred while applying object", "--force-conflicts"),
        ("Error: parse error at (web/templates/service.yaml:9): unexpected", "helm.template"),
        ("dial tcp 127.0.0.1:5001: connect: connection refused", "make cluster"),
        ("Error: something nobody has seen", None),
    ],
)
def test_helms_common_errors_get_a_next_step(stderr: str, advice: str | None) -> None:
    from helpers import helm

    hint = helm._hint(stderr)
    assert (hint is None) if advice is None else (advice in (hint or ""))


def test_a_progress_deadline_exceeded_before_the_wait_is_not_its_answer() -> None:
    """A rollback of a rollout past its deadline: the controller can stamp the new revision with
    the old verdict once; the wait takes a verdict it saw at its start as old news."""
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "web", "generation": 4},
        "spec": {"selector": {"matchLabels": {"app": "web"}}},
        "status": {
            "observedGeneration": 4,
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "lastUpdateTime": "2026-12-07T19:00:00Z",
                    "message": 'ReplicaSet "web-1" has timed out progressing.',
                }
            ],
        },
    }
    stuck = waiting._stuck_pods("ns", deployment, "Complete")
    assert stuck is not None and "progress deadline" in stuck
    assert waiting._stuck_pods("ns", deployment, "Complete", "2026-12-07T19:00:00Z") is None
    fresh = waiting._stuck_pods("ns", deployment, "Complete", "2026-12-07T18:00:00Z")
    assert fresh is not None, "a verdict given after the wait began counts"
