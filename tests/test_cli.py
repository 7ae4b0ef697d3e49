"""The command shown beside each helper is exact: run the docstring's own kubectl or docker
command against the real cluster and engine, and compare what it says with what the helper
returns (or did). A docstring that drifts from what its function really does fails here."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import helpers
from helpers import _identity, docker, k8s

pytestmark = [pytest.mark.cluster, pytest.mark.docker]
CAUSE = "kubernetes.io/change-cause"
WEB_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "course/web:v1"}]},
}


def documented_command(function: Callable[..., Any], **values: str | None) -> list[str]:
    """The first command in ``function``'s "CLI:" line, with its placeholders filled in.

    A placeholder given as None is left out, together with the flag before it (``-c CONTAINER``).
    """
    found = re.search(r"CLI: ``(.+?)``", " ".join((function.__doc__ or "").split()))
    assert found, f"{function.__qualname__} names no CLI command"
    words: list[str] = []
    for word in shlex.split(found.group(1)):
        flag, equals, value = word.partition("=")
        if equals and value in values:  # --to-revision=N, name=^alice-01-
            if values[value] is not None:
                words.append(f"{flag}={values[value]}")
            continue
        if word in values and values[word] is None:
            if words and words[-1].startswith("-"):
                words.pop()
            continue
        words.append(values.get(word) or word)
    return words


def run(argv: list[str]) -> str:
    assert shutil.which(argv[0]), f"{argv[0]} is not on PATH"
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{shlex.join(argv)} failed: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def ns(cluster: None) -> Iterator[str]:
    import os

    os.environ["COURSE_LEARNER"] = "pytest"
    _identity.chapter("92-cli")
    name = k8s.namespace()
    k8s.apply(WEB_POD, name)
    k8s.wait("pod/web", "Ready", name)
    yield name
    k8s.delete_namespace(name, wait_until_gone=False)


def test_request_is_kubectl_get_raw(ns: str) -> None:
    argv = documented_command(k8s.request, PATH="/version")
    assert json.loads(run(argv)) == k8s.request("GET", "/version")


def test_get_and_list_are_kubectl_get(ns: str) -> None:
    mine = k8s.get("pod/web", ns)
    theirs = json.loads(run(documented_command(k8s.get, **{"deploy/web": "pod/web", "NS": ns})))
    assert theirs["metadata"]["uid"] == mine.metadata["uid"]
    argv = documented_command(k8s.list_objects, KIND="pods", NS=ns, SELECTOR="app=web")
    names = [item["metadata"]["name"] for item in json.loads(run(argv))["items"]]
    assert names == [p.name for p in k8s.list_objects("pods", ns, selector="app=web")] == ["web"]


def test_pods_and_nodes_are_the_kubectl_tables(ns: str) -> None:
    rows = run(documented_command(k8s.pods, NS=ns, SELECTOR=None)).splitlines()[1:]
    assert [(r.split()[0], r.split()[1], r.split()[2]) for r in rows] == [
        (p["name"], p["ready"], p["status"]) for p in k8s.pods(ns)
    ]
    rows = run(documented_command(k8s.nodes)).splitlines()[1:]
    assert [(r.split()[0], r.split()[1]) for r in rows] == [
        (n["name"], n["status"]) for n in k8s.nodes()
    ]


def test_exists_is_the_exit_code_of_kubectl_get(ns: str) -> None:
    for target in ("pod/web", "pod/absent"):
        argv = documented_command(k8s.exists, TARGET=target, NS=ns)
        done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
        assert (done.returncode == 0) == k8s.exists(target, ns)


def test_apply_shares_its_fields_with_kubectl_apply_server_side(ns: str, tmp_path: Path) -> None:
    manifest = tmp_path / "notes.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata: {by: kubectl}\n"
    )
    dry = [*documented_command(k8s.apply, NS=ns, FILE=str(manifest)), "--dry-run=server"]
    run(dry)
    assert not k8s.exists("configmap/notes", ns), "a dry run stores nothing"
    k8s.apply(manifest, ns, dry_run=True)
    assert not k8s.exists("configmap/notes", ns)
    run(documented_command(k8s.apply, NS=ns, FILE=str(manifest)))
    k8s.apply({**__import__("yaml").safe_load(manifest.read_text()), "data": {"by": "helper"}}, ns)
    note = k8s.get("configmap/notes", ns)
    assert note.raw["data"] == {"by": "helper"}
    managers = {(m["manager"], m["operation"]) for m in note.metadata["managedFields"]}
    assert managers == {("kubectl", "Apply")}, "the helper applies as kubectl does: one owner"


def test_logs_and_exec_are_kubectl_logs_and_exec(ns: str) -> None:
    argv = documented_command(
        k8s.logs, POD="web", NS=ns, CONTAINER=None, **{"--previous": None}, N="1"
    )
    assert run(argv) == k8s.logs("web", ns, tail=1)
    argv = documented_command(
        k8s.exec, POD="web", NS=ns, CONTAINER=None, COMMAND="cat /www/version"
    )
    assert run(argv) == k8s.exec("web", "cat /www/version", ns).stdout == "v1\n"


def test_events_are_kubectl_events_for_the_object(ns: str) -> None:
    output = run(documented_command(k8s.events, NS=ns))
    mine = {e["reason"] for e in k8s.events(ns, about="pod/web")}
    assert "Scheduled" in mine and all(reason in output for reason in mine)


def test_wait_is_kubectl_wait(ns: str) -> None:
    assert "condition met" in run(documented_command(k8s.wait, NS=ns))
    assert k8s.wait("pod/web", "Ready", ns).status["phase"] == "Running"


def test_annotate_is_kubectl_annotate_overwrite(ns: str) -> None:
    run(documented_command(k8s.annotate, TARGET="pod/web", NS=ns, **{"KEY=VALUE": "course/by=cli"}))
    assert k8s.get("pod/web", ns).metadata["annotations"]["course/by"] == "cli"
    k8s.annotate("pod/web", {"course/by": "helper"}, ns)  # --overwrite: no conflict
    by_kubectl = json.loads(run(["kubectl", "get", "pod/web", "-n", ns, "-o", "json"]))
    assert by_kubectl["metadata"]["annotations"]["course/by"] == "helper"
    k8s.annotate("pod/web", {"course/by": None}, ns)
    assert "course/by" not in (k8s.get("pod/web", ns).metadata.get("annotations") or {})


def test_evict_is_the_eviction_drain_sends(ns: str, tmp_path: Path) -> None:
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    }
    k8s.apply(budget, ns)
    k8s.wait("pdb/web", "{.status.expectedPods}=1", ns)
    eviction = tmp_path / "eviction.json"
    eviction.write_text(
        json.dumps(
            {
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": "web", "namespace": ns},
            }
        )
    )
    argv = documented_command(k8s.evict, **{"eviction.json": str(eviction)})
    argv = [word.replace("/NS/", f"/{ns}/").replace("/POD/", "/web/") for word in argv]
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and "disruption budget" in refused.stderr, refused.stderr
    assert k8s.evict("web", ns) is False, "the budget keeps the only web pod"
    spare = {**WEB_POD, "metadata": {"name": "spare", "labels": {"app": "spare"}}}
    k8s.apply(spare, ns)
    k8s.wait("pod/spare", "Ready", ns)
    assert k8s.evict("spare", ns) is True, "no budget covers spare"
    k8s.wait("pod/spare", "deleted", ns)
    k8s.delete("pdb/web", ns)
    assert k8s.exists("pod/web", ns)


def test_scale_history_and_undo_are_kubectl_rollout(ns: str) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"kubernetes.io/change-cause": "v1: first"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web-deploy"}},
            "template": {
                "metadata": {"labels": {"app": "web-deploy"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "web", "image": "course/web:v1"}],
                },
            },
        },
    }
    k8s.apply(deployment, ns)
    run(documented_command(k8s.scale, NS=ns))
    assert k8s.get("deploy/web", ns).spec["replicas"] == 3
    assert k8s.scale("web", 2, ns).spec["replicas"] == 2
    run(documented_command(k8s.set_image, NS=ns))
    run(["kubectl", "annotate", "--overwrite", "-n", ns, "deployment/web", f"{CAUSE}=v2"])
    k8s.wait("deploy/web", "Complete", ns, timeout=90)
    output = run(documented_command(k8s.rollout_history, NS=ns))
    revisions = [int(line.split()[0]) for line in output.splitlines() if line[:1].isdigit()]
    assert revisions == k8s.rollout_history("web", ns).column("revision") == [1, 2]
    run(documented_command(k8s.rollback, NS=ns, N="1"))
    k8s.wait("deploy/web", "Complete", ns, timeout=90)
    assert k8s.rollout_history("web", ns).column("revision") == [2, 3]
    by_kubectl = k8s.get("deploy/web", ns).metadata["annotations"]
    assert by_kubectl[CAUSE] == "v1: first"  # the revision's annotations come back with it
    k8s.rollback("web", ns, revision=2)
    helper = k8s.get("deploy/web", ns)
    assert helper.spec["template"]["spec"]["containers"][0]["image"] == "course/web:v2"
    assert helper.metadata["annotations"][CAUSE] == "v2"
    k8s.wait("deploy/web", "Complete", ns, timeout=90)
    assert k8s.rollback("web", ns, revision=4).metadata["annotations"][CAUSE] == "v2"  # no-op


def test_pause_resume_and_restart_are_kubectl_rollout(ns: str) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "paused"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "paused"}},
            "template": {
                "metadata": {"labels": {"app": "paused"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "web", "image": "course/web:v1"}],
                },
            },
        },
    }
    k8s.apply(deployment, ns)
    k8s.wait("deploy/paused", "Complete", ns, timeout=90)
    run(documented_command(k8s.rollout_pause, NS=ns, **{"deployment/web": "deployment/paused"}))
    assert k8s.get("deploy/paused", ns).spec["paused"] is True
    k8s.set_image("paused", "web", "course/web:v2", ns)
    with pytest.raises(helpers.errors.CourseError, match="cannot be rolled back"):
        k8s.rollback("paused", ns, revision=1)
    assert k8s.rollout_history("paused", ns).column("revision") == [1]  # held while paused
    run(documented_command(k8s.rollout_resume, NS=ns, **{"deployment/web": "deployment/paused"}))
    k8s.wait("deploy/paused", "Complete", ns, timeout=90)
    assert k8s.rollout_history("paused", ns).column("revision") == [1, 2]
    run(documented_command(k8s.rollout_restart, NS=ns, **{"deployment/web": "deployment/paused"}))
    k8s.wait("deploy/paused", "Complete", ns, timeout=90)
    k8s.rollout_restart("paused", ns)
    k8s.wait("deploy/paused", "Complete", ns, timeout=90)
    assert k8s.rollout_history("paused", ns).column("revision") == [1, 2, 3, 4]
    k8s.rollout_pause("paused", ns)
    assert k8s.rollout_resume("paused", ns).spec.get("paused") in (None, False)


# --- docker ---------------------------------------------------------------------------------


@pytest.fixture
def web(docker_engine: None) -> Iterator[str]:
    _identity.chapter("92-cli")
    docker.cleanup()
    docker.run("course/web:v1", "web")
    yield docker.inspect("web").name
    docker.cleanup()


def test_docker_ps_inspect_logs_exec_match_the_cli(web: str) -> None:
    names = run(
        [*documented_command(docker.ps, **{"^alice-01-": "^pytest-92-"}), "--format", "{{.Names}}"]
    )
    assert names.split() == [web] == [f"pytest-92-{n}" for n in docker.ps().column("name")]
    inspected = json.loads(run(documented_command(docker.inspect, **{"alice-01-web": web})))
    assert inspected[0]["State"]["Status"] == docker.inspect("web").status == "running"
    argv = documented_command(docker.logs, N="1", **{"alice-01-web": web})
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout + done.stderr == docker.logs("web", tail=1)
    argv = documented_command(docker.exec, **{"alice-01-web": web, "ps": "cat /www/version"})
    assert run(argv) == docker.exec("web", "cat /www/version").stdout == "v1\n"


def test_docker_stop_waits_as_long_as_its_cli_says(web: str) -> None:
    argv = documented_command(docker.stop, **{"alice-01-web": web})
    seconds = int(argv[argv.index("-t") + 1])
    import inspect

    assert inspect.signature(docker.stop).parameters["timeout"].default == seconds
    # A container that ignores SIGTERM is killed after exactly that grace period.
    docker.run("course/web:v1", "stubborn", command=["sh", "-c", "trap '' TERM; sleep 600"])
    import time

    started = time.monotonic()
    docker.stop("stubborn")
    assert seconds - 0.5 < time.monotonic() - started < seconds + 5
    assert helpers.docker.inspect("stubborn").exit_code == 137
