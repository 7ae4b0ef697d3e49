"""Classroom mode on the real cluster: each student's kubeconfig reaches only that student's
namespaces, within a quota, and the lessons' first cells still work with it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from helpers import _classroom, k8s
from helpers._errors import CourseError
from helpers._identity import Chapter, learner_label
from tests.conftest import BETWEEN_GRADINGS

pytestmark = [pytest.mark.cluster]
REPO = Path(__file__).resolve().parent.parent
CHAPTER = "03-pods"


# What `make classroom` makes (and `make classroom-down` removes): the students' objects and the
# shared ones.
CLASSROOM_OWNED = "course.classroom in (student, shared)"


@pytest.fixture(scope="module")
def classroom(tmp_path_factory: pytest.TempPathFactory, cluster: None) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("classroom")
    stamp = int(time.time()) % 100000
    # The last two share their first 20 characters: they must still get apart namespaces.
    ids = [f"k{stamp}-ada", f"K{stamp}.Long.Student.Name.A", f"K{stamp}.Long.Student.Name.B"]
    roster = folder / "students.csv"
    roster.write_text("id,last_name\n" + "".join(f"{i},x\n" for i in ids))
    try:
        files = _classroom.up(_classroom.read_roster(roster), [CHAPTER], folder / "out", pods=2)
        yield {"ids": ids, "files": files, "out": folder / "out"}
    finally:
        _classroom.down(folder / "out")


def api(kubeconfig: Path) -> k8s_client.CoreV1Api:
    return k8s_client.CoreV1Api(k8s_config.new_client_from_config(config_file=str(kubeconfig)))


def refused(call: Any, *args: Any, **kwargs: Any) -> int:
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    return int(caught.value.status)


def namespace_of(student: str) -> str:
    return Chapter(CHAPTER, learner_label(student)).namespace


def sleeper(name: str) -> dict[str, Any]:
    container = {"name": "web", "image": "course/web:v1"}
    spec = {"containers": [container], "terminationGracePeriodSeconds": 1}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def test_every_student_gets_namespaces_of_their_own_and_a_private_kubeconfig(
    classroom: dict[str, Any],
) -> None:
    names = [namespace_of(s) for s in classroom["ids"]]
    assert len(set(names)) == 3, names
    for student, path in classroom["files"].items():
        assert path.stat().st_mode & 0o077 == 0, "a kubeconfig holds a token: only its owner reads"
        assert k8s.get(f"namespace/{namespace_of(student)}").labels["course.learner"] == (
            learner_label(student)
        )
        assert k8s.get("resourcequota/student", namespace_of(student)).spec["hard"]["pods"] == "2"


def test_a_student_works_in_their_namespace_and_nowhere_else(classroom: dict[str, Any]) -> None:
    ada, other = classroom["ids"][0], classroom["ids"][1]
    mine, theirs = namespace_of(ada), namespace_of(other)
    core = api(classroom["files"][ada])
    core.create_namespaced_pod(mine, sleeper("first"))
    assert core.read_namespace(mine).metadata.name == mine
    assert refused(core.list_namespaced_secret, theirs) == 403
    assert refused(core.list_namespaced_pod, theirs) == 403
    assert refused(core.delete_namespace, theirs) == 403
    assert refused(core.delete_namespace, mine) == 403, "the instructor's quota goes with it"
    assert refused(core.read_namespaced_secret, "x", "kube-system") == 403
    assert refused(core.patch_namespaced_resource_quota, "student", mine, {}) == 403
    assert core.list_node().items, "nodes are readable (the architecture chapter)"


def volume(name: str, path: str, storage_class: str = "manual", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "storageClassName": storage_class,
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": path, "type": "DirectoryOrCreate"},
            **spec,
        },
    }


def claim(name: str, volume_name: str | None, storage_class: str = "manual") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "storageClassName": storage_class,
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    if volume_name:
        spec["volumeName"] = volume_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_a_student_makes_quotas_and_volumes_of_their_own_and_no_one_elses(
    classroom: dict[str, Any],
) -> None:
    """Chapters 04 (a quota) and 06 (a volume) as a student: allowed for their own, refused
    (403, with the rule in the message) for the instructor's quota and for volumes and claims
    that would reach another student's folder or volume."""
    ada, other = classroom["ids"][0], classroom["ids"][1]
    mine, theirs = namespace_of(ada), namespace_of(other)
    core, rival = api(classroom["files"][ada]), api(classroom["files"][other])
    folder = "/var/lib/cloud-native-course/volumes"
    quota = {"metadata": {"name": "node-sized"}, "spec": {"hard": {"requests.cpu": "1"}}}
    made: list[str] = []
    try:
        core.create_namespaced_resource_quota(mine, quota)
        core.delete_namespaced_resource_quota("node-sized", mine)
        assert refused(core.delete_namespaced_resource_quota, "student", mine) == 403
        assert refused(core.delete_namespaced_limit_range, "student", mine) == 403

        core.create_persistent_volume(volume(f"{mine}-page", f"{folder}/{mine}/page"))
        made.append(f"{mine}-page")
        rival.create_persistent_volume(volume(f"{theirs}-page", f"{folder}/{theirs}/page"))
        made.append(f"{theirs}-page")
        assert refused(rival.delete_persistent_volume, f"{mine}-page") == 403
        attempts = {
            "another's name": volume(f"{theirs}-x", f"{folder}/{mine}/x"),
            "the node's /": volume(f"{mine}-root", "/"),
            "another's folder": volume(f"{mine}-up", f"{folder}/{mine}/../{theirs}/page"),
            "a dynamic class": volume(f"{mine}-std", f"{folder}/{mine}/std", "standard"),
            "reserved for another": volume(
                f"{mine}-for", f"{folder}/{mine}/for", claimRef={"namespace": theirs, "name": "c"}
            ),
        }
        for what, manifest in attempts.items():
            with pytest.raises(ApiException) as caught:
                core.create_persistent_volume(manifest)
                made.append(manifest["metadata"]["name"])
            if what == "another's folder":  # the API server itself refuses '..' in a path
                assert caught.value.status == 422 and ".." in str(caught.value.body), what
                continue
            assert caught.value.status == 403, what
            assert "Classroom:" in str(caught.value.body), (what, caught.value.body)
        assert (
            refused(
                core.create_namespaced_persistent_volume_claim,
                mine,
                claim("steal", f"{theirs}-page"),
            )
            == 403
        )
        assert (
            refused(core.create_namespaced_persistent_volume_claim, mine, claim("any", None)) == 403
        )
        core.create_namespaced_persistent_volume_claim(mine, claim("page", f"{mine}-page"))
        core.delete_persistent_volume(f"{mine}-page")
        made.remove(f"{mine}-page")
    finally:
        for name in made:
            k8s.delete(f"pv/{name}", wait_until_gone=False)


def test_a_student_pod_cannot_have_the_node(classroom: dict[str, Any]) -> None:
    """Pod Security baseline in a student's namespaces: a privileged pod, or one with a host
    folder, would be the whole node (every student's files, the instructor's credentials)."""
    ada = classroom["ids"][0]
    ns = namespace_of(ada)
    core = api(classroom["files"][ada])
    privileged = sleeper("root")
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    host = sleeper("host")
    host["spec"]["volumes"] = [{"name": "node", "hostPath": {"path": "/"}}]
    host["spec"]["containers"][0]["volumeMounts"] = [{"name": "node", "mountPath": "/node"}]
    network = sleeper("net")
    network["spec"]["hostNetwork"] = True
    for pod in (privileged, host, network):
        with pytest.raises(ApiException) as caught:
            core.create_namespaced_pod(ns, pod)
        assert caught.value.status == 403 and "baseline" in str(caught.value.body), pod
    # The node's memory: one container past the limit range's maximum, nor pods past the quota.
    hog = sleeper("hog")
    hog["spec"]["containers"][0]["resources"] = {"limits": {"memory": "30Gi"}}
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_pod(ns, hog)
    assert caught.value.status == 403 and "maximum memory usage" in str(caught.value.body)


def test_pods_past_the_quota_are_refused(classroom: dict[str, Any]) -> None:
    student = classroom["ids"][2]
    ns = namespace_of(student)
    core = api(classroom["files"][student])
    core.create_namespaced_pod(ns, sleeper("one"))
    core.create_namespaced_pod(ns, sleeper("two"))
    assert refused(core.create_namespaced_pod, ns, sleeper("three")) == 403
    pod = core.read_namespaced_pod("one", ns)
    limits = pod.spec.containers[0].resources.limits
    assert limits == {"memory": "256Mi"}, "the LimitRange's default applies"


def test_the_lessons_first_cells_work_with_a_student_kubeconfig(
    classroom: dict[str, Any],
) -> None:
    """helpers.setup, k8s.delete_namespace (which empties what it may not delete) and
    k8s.namespace, as every lesson starts, then a pod, as the student."""
    ada = classroom["ids"][0]
    code = (
        "import helpers\nfrom helpers import k8s\n"
        f"helpers.setup({CHAPTER!r})\n"
        "k8s.delete_namespace()\n"
        "ns = k8s.namespace()\n"
        "print('pods left:', len(k8s.list_objects('pods', ns)))\n"
        f"k8s.apply({sleeper('again')!r}, ns)\n"
        "print('namespace:', ns)\n"
    )
    env = {
        **os.environ,
        "KUBECONFIG": str(classroom["files"][ada]),
        "COURSE_LEARNER": ada,
        "COURSE_CLUSTER": "kubeconfig",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "pods left: 0" in done.stdout and f"namespace: {namespace_of(ada)}" in done.stdout


def test_a_roster_whose_ids_would_share_names_is_refused(tmp_path: Path) -> None:
    roster = tmp_path / "students.csv"
    roster.write_text("id\nada\nada\nAda.X\nada-x\n")
    assert _classroom.read_roster(roster)[:1] == ["ada"]
    roster.write_text("id\nalice\nAlice\n")
    assert len(set(map(learner_label, _classroom.read_roster(roster)))) == 2
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CourseError, match="empty"):
        _classroom.read_roster(tmp_path / "empty.csv")


@pytest.fixture(scope="class")
def no_grading_beside() -> Iterator[None]:
    with BETWEEN_GRADINGS:
        yield


@pytest.mark.usefixtures("no_grading_beside")
class TestClassroomDown:
    """make classroom-down. What it removes depends on whether a grading is in progress, so no
    chapter is graded in the background (tests/test_grading.py) from the first of these tests to
    the last: they wait for it once."""

    def test_removes_every_namespace_and_role(self, classroom: dict[str, Any]) -> None:
        # The classroom fixture's own teardown then finds nothing left.
        _classroom.down(classroom["out"])
        # (read from the listing: a namespace that finishes going between two calls is no error;
        # a graded student's work kept for inspection is labelled "grading", not the classroom's)
        left = [
            ns.name
            for ns in k8s.list_objects("namespaces", selector=CLASSROOM_OWNED)
            if ns.status.get("phase") != "Terminating"
        ]
        assert not left, left
        assert not k8s.list_objects("clusterroles", selector=CLASSROOM_OWNED)
        assert not classroom["out"].exists()

    def test_leaves_a_grading_in_progress_its_accounts(self, tmp_path: Path) -> None:
        """make classroom-down while make grade runs: the accounts the grading made for its
        students, and the shared namespace they live in, stay; the grading removes its own."""
        student = f"g{int(time.time()) % 100000}-busy"
        _classroom.grading_account(student, "07-helm", tmp_path / "kubeconfig")
        label = learner_label(student)
        try:
            _classroom.down(None)
            assert k8s.exists(f"serviceaccount/{label}", _classroom.ACCOUNTS)
            assert k8s.exists(f"clusterrole/course-student-{label}")
            assert k8s.exists(f"namespace/{Chapter('07-helm', label).namespace}")
        finally:
            _classroom.remove_grading_account(student)
            k8s.delete_namespace(Chapter("07-helm", label).namespace, wait_until_gone=False)
        _classroom.down(None)  # with no grading left, the shared objects go too
        shared = k8s.list_objects("namespaces", selector="course.classroom=shared")
        assert all(ns.status.get("phase") == "Terminating" for ns in shared), shared


def test_make_grade_grades_every_student_with_credentials_of_their_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The graded notebook asks the cluster to list every namespace: with credentials of the
    student's own it is refused, and only then does the answer earn its point. Without a
    classroom, the run makes the student an account of that kind and removes it after; only
    CLASSROOM=0 (--no-classroom) grades with the instructor's kubeconfig, and says so."""
    import nbformat

    from helpers.__main__ import main
    from tests.test_class_grading import OTHER, _with, other_notebook

    root = tmp_path / "course"
    (root / "solutions" / OTHER).mkdir(parents=True)
    nbformat.write(other_notebook(), root / "solutions" / OTHER / f"{OTHER}.ipynb")
    student = f"q{int(time.time()) % 100000}-ada"
    answer = (
        "from helpers import k8s\nfrom helpers.errors import Forbidden\n"
        "try:\n    k8s.request('GET', '/api/v1/namespaces')\n    answer = 0\n"
        "except Forbidden:\n    answer = 42"
    )
    folder = root / "submitted" / student / OTHER
    folder.mkdir(parents=True)
    nbformat.write(_with(other_notebook(), answer_other=answer), folder / f"{OTHER}.ipynb")
    account = f"serviceaccount/{learner_label(student)}"
    try:
        assert main(["grade", "--root", str(root), "--jobs", "1"]) == 0
        assert _grading_score(root, student) == 1, "graded with an account of the student's own"
        printed = capsys.readouterr().out
        assert "1 grading account (made for this run and removed)" in printed, printed
        assert not k8s.exists(account, "course-classroom"), "the grading account is removed"
        _classroom.up([student], [OTHER], root / "classroom")
        assert main(["grade", "--root", str(root), "--force"]) == 0
        assert _grading_score(root, student) == 1, "graded with the student's classroom account"
        printed = capsys.readouterr().out
        assert "1 classroom account" in printed and "your kubeconfig" not in printed, printed
        assert k8s.exists(account, "course-classroom"), "a classroom account stays"
        assert main(["grade", "--root", str(root), "--force", "--no-classroom"]) == 0
        assert _grading_score(root, student) == 0, "with the instructor's, the listing works"
        assert "1 notebook(s) graded with your kubeconfig" in capsys.readouterr().out
    finally:
        _classroom.down(root / "classroom")


def _grading_score(root: Path, student: str) -> float:
    from helpers import _grading
    from tests.test_class_grading import OTHER

    return float(_grading.scores(root, OTHER, student)["score"])


@pytest.mark.slow
def test_chapters_04_and_06_earn_every_point_with_a_students_own_kubeconfig(
    tmp_path: Path,
) -> None:
    """Graded as the class is graded, with the student's classroom kubeconfig: 04's hidden test
    makes a ResourceQuota, 06 makes a PersistentVolume and its folder. The solutions earn every
    point, so neither exercise needs the instructor's credentials."""
    import shutil

    from helpers import _grading
    from helpers.__main__ import main

    root = tmp_path / "course"
    student = f"v{int(time.time()) % 100000}-ada"
    chapters = ["04-deployments", "06-volumes"]
    for chapter in chapters:
        shutil.copytree(REPO / "solutions" / chapter, root / "solutions" / chapter)
        folder = root / "submitted" / student / chapter
        folder.mkdir(parents=True)
        shutil.copy(REPO / "solutions" / chapter / f"{chapter}.ipynb", folder)
    try:
        _classroom.up([student], chapters, root / "classroom")
        assert main(["grade", "--root", str(root)]) == 0
        for chapter in chapters:
            scores = _grading.scores(root, chapter, student)
            assert scores["score"] == scores["max_score"], (chapter, scores)
    finally:
        _classroom.down(root / "classroom")
