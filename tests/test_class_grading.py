"""Grading a whole class, for real: a class folder with honest, broken and odd submissions of a
small assignment made here (one cell starts a container and a pod, so leftovers are real), graded
N at a time by the class run. The run finishes; every gradable student gets the score plain
nbgrader gives when grading them alone; every other one has the right status and reason;
grades.csv has everyone; nothing of theirs is left running. A rerun grades nothing; a changed
submission is graded again alone."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from helpers import _grading, k8s
from helpers._grading import containment
from helpers._grading.cleanup import learner_of, remove_learner_resources, wait_gone
from helpers._identity import Chapter
from tests.conftest import BETWEEN_GRADINGS


def integration(test: Any) -> Any:
    """Marks a test that grades for real: kernels, the engine and the cluster."""
    for mark in (pytest.mark.slow, pytest.mark.docker, pytest.mark.cluster):
        test = mark(test)
    return test


REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT, OTHER = "98-grading", "97-other"
CELL_TIMEOUT = 15  # seconds per cell: small, so the hung ones end fast
SUBMISSION_TIMEOUT = 40  # an honest submission takes 5-15 s
MARK = 7_654_321  # in the command line of the processes a submission leaves behind


def _cell(
    source: str, kind: str | None = None, grade_id: str = "", points: int = 0, rerun: bool = False
) -> Any:
    cell = new_code_cell(source)
    if rerun:
        cell.metadata["tags"] = ["run-by-grader"]
    if kind == "answer":
        cell.metadata["nbgrader"] = {
            "grade": False,
            "grade_id": grade_id,
            "locked": False,
            "schema_version": 3,
            "solution": True,
        }
    elif kind == "test":
        cell.metadata["nbgrader"] = {
            "grade": True,
            "grade_id": grade_id,
            "locked": True,
            "points": points,
            "schema_version": 3,
            "solution": False,
        }
    return cell


SETUP = (
    f'import helpers\nfrom helpers import check, docker, k8s\n\nme = helpers.setup("{ASSIGNMENT}")'
)
RUN_BOTH = """### BEGIN SOLUTION
docker.run("course/web:v1", "web")
pod = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "idle"},
    "spec": {"containers": [{"name": "idle", "image": "course/web:v1"}]},
}
k8s.apply(pod, k8s.namespace())
### END SOLUTION"""

DOUBLE = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"


def assignment_notebook() -> Any:
    notebook = new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    # The grader runs the tests in a kernel of its own, set up by this code (rerun.py).
    notebook.metadata["course"] = {"grader_setup": SETUP}
    notebook.cells = [
        new_markdown_cell("# Grading machinery\nA tiny assignment for the class-run tests."),
        _cell(SETUP),
        _cell("### BEGIN SOLUTION\ntotal = 2 + 3\n### END SOLUTION", "answer", "answer_total"),
        _cell(
            'check.answered(total, what="total", kind=int)\n### BEGIN HIDDEN TESTS\n'
            'check.equal(total, 5, what="total")\n### END HIDDEN TESTS',
            "test",
            "test_total",
            2,
            rerun=True,
        ),
        _cell(RUN_BOTH, "answer", "answer_run"),
        _cell(
            'check.container_running("web")\n'
            'check.equal(k8s.exists("pod/idle", k8s.namespace()), True, what="pod/idle exists")',
            "test",
            "test_running",
            1,
            rerun=True,
        ),
        _cell(DOUBLE, "answer", "answer_double"),
        # Calls the student's function: in the grader's kernel, at arm's length (arm.py).
        _cell(
            'check.equal(double(21), 42, what="double(21)")', "test", "test_double", 1, rerun=True
        ),
    ]
    return notebook


def other_notebook() -> Any:
    notebook = new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.cells = [
        _cell("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION", "answer", "answer_other"),
        _cell("assert answer == 42", "test", "test_other", 1),
    ]
    return notebook


def _with(notebook: Any, **answers: str) -> Any:
    changed = copy.deepcopy(notebook)
    for cell in changed.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers.pop(grade_id)
    assert not answers, answers
    return changed


def _edited(notebook: Any, cell_id: str, **meta: Any) -> Any:
    changed = copy.deepcopy(notebook)
    for cell in changed.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == cell_id:
            cell.metadata.nbgrader.update(meta)
    return changed


LEFTOVER = f"""import subprocess
subprocess.Popen(["setsid", "sh", "-c", "sleep {MARK} & sleep {MARK + 1} &"])
subprocess.Popen(["nohup", "sleep", "{MARK + 2}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
total = 2 + 3"""
BARE_EXCEPT = """import time
total = None
while total is None:
    try:
        time.sleep(1)  # a retry loop that swallows the timeout's KeyboardInterrupt
    except:
        pass"""
HUGE = "print('x' * 3_000_000)\ntotal = 2 + 3"
EXITS = "import os\nos._exit(3)"
KILLS_PARENT = "import os, signal\nos.kill(os.getppid(), signal.SIGTERM)"
TAMPERS = "check.equal = lambda *args, **kwargs: None\ntotal = 4"
# Turns every later cell (tests, and answers) into nothing.
TRANSFORMS = """get_ipython().input_transformers_post.append(lambda lines: ["pass\\n"])
total = 4"""
# A function the grader calls in a process of its own, which reaches for the grader's kernel
# (its /proc files, a signal, its connection file) and switches the checks off from inside:
# it records what it reached, and answers wrong. Nothing destructive: it reports, the test looks.
REACHES = """import os
import signal


def double(x):
    reached = []
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            command = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
        except OSError:
            continue
        if b"ipykernel_launcher" not in b" ".join(command):
            continue
        for what in ("environ", "mem", "fd", "cwd"):
            try:
                path = f"/proc/{pid}/{what}"
                if what in ("fd", "cwd"):
                    os.listdir(path)
                else:
                    open(path, "rb").close()  # opening is what needs ptrace rights
                reached.append(f"{what} of {pid}")
            except OSError:
                pass
        try:  # by its number here (pid 1 in its own namespace is itself: not tried)
            if int(pid) != os.getpid():
                os.kill(int(pid), 0)
                reached.append(f"a signal to {pid}")
        except OSError:
            pass
        try:  # by its /proc folder, whatever its number
            folder = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY)
            signal.pidfd_send_signal(folder, 0)
            reached.append(f"a signal through /proc/{pid}")
        except OSError:
            pass
        if b"-f" in command:
            connection = command[command.index(b"-f") + 1].decode()
            try:
                if "key" in open(connection).read():
                    reached.append(f"the connection file {connection}")
            except OSError:
                pass
    import helpers.check

    helpers.check.equal = lambda *args, **kwargs: None
    print("FUNCTION REACHED", reached, "AS PID", os.getpid(), "CHILD OF", os.getppid())
    return x"""
# Reaches for the grades, the answers and the other students (absolute paths and relative ones
# from the graded folder); records what it could reach and earns its points honestly.
SNOOPS = """from pathlib import Path
reached = []
for path, mode in {targets}:
    try:
        if Path(path).is_dir():
            listing = list(Path(path).iterdir())
        else:
            open(path, mode).close()
        reached.append(path)
    except OSError:
        pass
print("REACHED", reached)
total = 2 + 3"""


# Reaches for another student's containers and the host through Docker itself.
HURTS = """import docker as sdk
engine = sdk.from_env()
me, other = {me!r}, {other!r}
tries = {{
    "squat": lambda: engine.containers.create(
        "course/web:v1", name=other + "-98-web", labels={{"course.learner": other}}
    ),
    "host": lambda: engine.containers.create(
        "course/web:v1", name=me + "-98-h", labels={{"course.learner": me}},
        volumes={{"/": {{"bind": "/host"}}}},
    ),
    "remove": lambda: engine.api.remove_container(other + "-98-web", force=True),
    "privileged": lambda: engine.containers.create(
        "course/web:v1", name=me + "-98-p", labels={{"course.learner": me}}, privileged=True
    ),
}}
reached = []
for name, attempt in tries.items():
    try:
        attempt()
        reached.append(name)
    except sdk.errors.APIError:
        pass
print("ENGINE REACHED", reached)
total = 2 + 3"""


# Tries every way out of the sandbox but the files (SNOOPS) and the engine (HURTS): the network
# of this machine, root's rights, the grader's environment, the cluster beyond its own namespace,
# and the folder nbgrader writes the graded notebook to. Earns its points honestly.
ESCAPES = """import json, os, socket
from helpers import k8s
from helpers.errors import CourseError
reached = []
for host, port in {ports}:  # listening on this machine: a service, etcd, a kubelet
    try:
        socket.create_connection((host, port), timeout=2).close()
        reached.append(f"{{host}}:{{port}}")
    except OSError:
        pass
if os.getuid() == 0:
    reached.append("root")
for path in {secrets}:  # root's own, in the system folders the sandbox shows
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, "rb").close()
        reached.append(path)
    except OSError:
        pass
extra = [k for k in os.environ if k not in {allowed} and not k.startswith(("JPY_", "PYDEVD"))]
if extra:
    reached.append(f"the grader's environment: {{extra}}")
pod = {{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "x"}}, "spec": {{"containers": [
    {{"name": "x", "image": "course/web:v1", "securityContext": {{"privileged": True}}}}]}}}}
node = {{**pod, "metadata": {{"name": "y"}}, "spec": {{"containers": [{{"name": "y", "image": "course/web:v1"}}],
    "volumes": [{{"name": "node", "hostPath": {{"path": "/"}}}}]}}}}
for what, call in {{
    "every namespace": lambda: k8s.request("GET", "/api/v1/namespaces"),
    "another student's pods": lambda: k8s.request("GET", "/api/v1/namespaces/{other}/pods"),
    "a privileged pod": lambda: k8s.apply(pod, k8s.namespace()),
    "the node's /": lambda: k8s.apply(node, k8s.namespace()),
}}.items():
    try:
        call()
        reached.append(what)
    except CourseError:
        pass
os.remove("{notebook}")  # nbgrader writes the graded notebook here, as the instructor
os.symlink({victim!r}, "{notebook}")
print("ESCAPES REACHED", reached)
total = 2 + 3"""
# What the kernel's environment may hold: the sandbox's own (sandbox.py) and ipykernel's.
KERNEL_VARIABLES = sorted(
    {"PATH", "HOME", "LANG", "MPLCONFIGDIR", "IPYTHONDIR", "COURSE_SANDBOX", "COURSE_CLUSTER",
     "KUBECONFIG", "DOCKER_HOST", "COURSE_LEARNER", "NBGRADER_EXECUTION", "TERM", "CLICOLOR",
     "PAGER", "GIT_PAGER", "MPLBACKEND", "FORCE_COLOR", "CLICOLOR_FORCE", "PWD"}
)  # fmt: skip
# Forks until the process limit refuses, and every copy waits: the machine keeps forking.
FORK_BOMB = """import os, time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(60)"""
# 30 GiB, 64 MiB at a time, each written (a single 30 GiB request is merely refused).
MEMORY_HOG = """chunks = []
for _ in range(480):
    chunks.append(b"x" * 2**26)
total = 2 + 3"""


def root_only_files() -> list[str]:
    """Files and folders under /etc that only root may read (the docker daemon's key, the
    password hashes' backups): a kernel running as root would read them."""
    candidates = ["/etc/shadow-", "/etc/gshadow-", "/etc/docker/key.json", "/etc/ssl/private"]
    return [p for p in candidates if Path(p).exists() and not Path(p).stat().st_mode & 0o004]


def host_listener() -> socket.socket:
    """A service on this machine that no graded notebook should reach."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener


def snoop_targets(root: Path, prefix: str) -> list[tuple[str, str]]:
    repo = Path(__file__).resolve().parent.parent
    return [
        (str(root / "gradebook.db"), "r+b"),  # the class's gradebook
        ("../../../gradebook.db", "r+b"),  # the private grading root's gradebook
        (str(root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), "rb"),
        (f"../../../solutions/{ASSIGNMENT}/{ASSIGNMENT}.ipynb", "rb"),
        (str(repo / "solutions"), "rb"),
        (str(root / "submitted" / f"{prefix}full"), "rb"),  # another student's work
        (str(repo / "helpers" / "check.py"), "r+b"),  # code every later kernel imports
        (str(Path.home() / ".cache"), "rb"),  # the instructor's home (caches live there)
    ]


def build_class(root: Path, prefix: str, service_port: int = 9) -> dict[str, dict[str, Any]]:
    """Write the two assignments' sources in root/solutions and a collected class folder in
    root/collected; returns what each student should end as."""
    for name, notebook in ((ASSIGNMENT, assignment_notebook()), (OTHER, other_notebook())):
        (root / "solutions" / name).mkdir(parents=True)
        nbformat.write(notebook, root / "solutions" / name / f"{name}.ipynb")
    _grading.release(root)
    solution = nbformat.read(root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    blank = nbformat.read(root / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    other = nbformat.read(root / "exercises" / OTHER / f"{OTHER}.ipynb", 4)
    slow = copy.deepcopy(solution)
    slow.cells.extend(_cell(f"import time\ntime.sleep({CELL_TIMEOUT - 2})") for _ in range(5))
    graded = "graded"
    cases: dict[str, dict[str, Any]] = {
        "full": {"nb": solution, "status": graded},
        "partial": {"nb": _with(solution, answer_total="total = 4"), "status": graded},
        "blank": {"nb": blank, "status": graded},
        "huge": {"nb": _with(solution, answer_total=HUGE), "status": graded, "reason": "cut"},
        # Its output spends the notebook's budget: the failing test after it must still fail.
        "hugewrong": {
            "nb": _with(solution, answer_total=HUGE.replace("2 + 3", "2 + 2")),
            "status": graded,
            "reason": "cut",
        },
        # What it starts ends with the sandbox's PID namespace (and, without one, is killed by
        # the containment): test_nothing_of_the_students_is_left_running looks.
        "leftover": {"nb": _with(solution, answer_total=LEFTOVER), "status": graded},
        "badjson": {"text": nbformat.writes(solution)[:300], "status": "invalid notebook"},
        "nocells": {"nb": new_notebook(), "status": "invalid notebook", "reason": "no cells"},
        "other": {"nb": other, "status": "wrong assignment", "reason": f"{OTHER}'s cells"},
        "othername": {
            "nb": other,
            "file": f"{OTHER}.ipynb",
            "status": "wrong assignment",
            "reason": f"that is {OTHER}'s notebook",
        },
        "edited": {
            "nb": _edited(solution, "test_total", grade=False),
            "status": "checksum mismatch",
            "reason": "'test_total' had its nbgrader metadata edited",
        },
        "renamed": {
            "nb": _edited(solution, "answer_total", grade_id="my_total"),
            "status": "checksum mismatch",
            "reason": "'my_total' is not in the assignment",
        },
        # Ends at the cell limit plus nbgrader's wait for the interrupted cell ("did not stop
        # when interrupted"), or, on a loaded machine, at the submission's limit: both name it.
        "bareexcept": {
            "nb": _with(solution, answer_total=BARE_EXCEPT),
            "status": "timed out",
            "reason": "(answer_total)",
        },
        # Named to be graded first: it takes the whole limit.
        "asleep": {"nb": slow, "status": "timed out", "reason": f"{SUBMISSION_TIMEOUT} s limit"},
        "exits": {
            "nb": _with(solution, answer_total=EXITS),
            "status": "kernel died",
            "reason": "(answer_total)",
        },
        # Switch the checks off, then answer wrong (or not at all): plain nbgrader gives them
        # the points; the tests the grader runs in its own kernel do not, the flag tells the
        # instructor.
        "tampers": {
            "nb": _with(solution, answer_total=TAMPERS),
            "status": graded,
            "alone": False,
        },
        "transforms": {
            "nb": _with(solution, answer_total=TRANSFORMS),
            "status": graded,
            "alone": False,
        },
        # Graded for its own work only: its function's tampering stays in its own process.
        "reaches": {
            "nb": _with(solution, answer_double=REACHES),
            "status": graded,
            "alone": False,  # plain nbgrader would call it in the student's kernel
        },
        "hurts": {
            "nb": _with(
                solution,
                answer_total=HURTS.format(
                    me=learner_of(f"{prefix}hurts"), other=learner_of(f"{prefix}full")
                ),
            ),
            "status": graded,
            "alone": False,  # without the guard (plain nbgrader below) it would do that harm
        },
        "snoops": {
            "nb": _with(solution, answer_total=SNOOPS.format(targets=snoop_targets(root, prefix))),
            "status": graded,
        },
        # Every way out but files and the engine: the host's network, root, the grader's
        # environment, the cluster beyond its namespace, the graded notebook's folder.
        "escapes": {
            "nb": _with(
                solution,
                answer_total=ESCAPES.format(
                    ports=[("127.0.0.1", service_port), ("127.0.0.1", 2379), ("127.0.0.1", 10250)],
                    allowed=KERNEL_VARIABLES,
                    secrets=root_only_files(),
                    other=Chapter(ASSIGNMENT, learner_of(f"{prefix}full")).namespace,
                    notebook=f"{ASSIGNMENT}.ipynb",
                    victim=str(root / "victim.txt"),
                ),
            ),
            "status": graded,
            "alone": False,  # plain nbgrader grades in this process's network, as root
        },
        # Fork until refused, then wait: the process limit stops it; the cell times out.
        "forkbomb": {
            "nb": _with(solution, answer_total=FORK_BOMB),
            "status": "any",
            "alone": False,
        },
        # The memory limit ends it before it takes the machine.
        "hog": {
            "nb": _with(solution, answer_total=MEMORY_HOG),
            "status": "memory limit",
            "reason": "GiB one submission may use",
            "alone": False,
        },
        # In the sandbox its parent is the sandbox's own init, which such a signal cannot end:
        # the grader never sees it and the notebook earns what its work is worth (not graded
        # alone by plain nbgrader below: there it would signal the test run itself).
        "signals": {
            "nb": _with(solution, answer_total=KILLS_PARENT),
            "status": graded,
            "alone": False,
        },
    }
    collected = root / "collected"
    for name, case in cases.items():
        folder = collected / f"{prefix}{name}" / ASSIGNMENT
        folder.mkdir(parents=True)
        path = folder / case.get("file", f"{ASSIGNMENT}.ipynb")
        if "text" in case:
            path.write_text(case["text"])
        else:
            nbformat.write(case["nb"], path)
        case["gradable"] = case["status"] == graded
    # Strays, as a zip from a Mac brings them, and a folder named after no assignment.
    (collected / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (collected / f"{prefix}full" / ".DS_Store").write_bytes(b"\0")
    (collected / f"{prefix}full" / ASSIGNMENT / ".DS_Store").write_bytes(b"\0")
    (collected / "__MACOSX").mkdir()
    wrong = collected / f"{prefix}lost" / "homework-1"
    wrong.mkdir(parents=True)
    nbformat.write(solution, wrong / "homework-1.ipynb")
    cases["lost"] = {"status": "wrong assignment", "reason": "no assignment named"}
    return cases


def _key(prefix: str, name: str) -> str:
    return f"{prefix}{name}/{'homework-1' if name == 'lost' else ASSIGNMENT}"


def _processes_of(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(f"{proc.name}: {cmdline}")
    return found


def _processes_in(folder_marker: str) -> list[str]:
    """Processes whose working folder is a grading work folder (a kernel or what it started)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if folder_marker in cwd:
            found.append(f"{proc.name}: {cwd}")
    return found


def _belongings(student: str) -> list[str]:
    from helpers._docker.engine import client

    learner = learner_of(student)
    label = f"course.learner={learner}"
    found = [
        f"container/{c.name}" for c in client().containers.list(all=True, filters={"label": label})
    ]
    found += [f"namespace/{ns.name}" for ns in k8s.list_objects("namespaces", selector=label)]
    return found


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("class")
    prefix = f"g{int(time.time()) % 100000}-"
    service = host_listener()
    cases = build_class(root, prefix, service.getsockname()[1])
    (root / "victim.txt").write_text("the instructor's file")
    released = {p: p.read_bytes() for p in (root / "exercises").rglob("*.ipynb")}
    try:
        # Alone: what is left afterwards is looked for machine-wide (kernels, cgroups), so no
        # chapter is graded in the background meanwhile (tests/test_grading.py).
        with BETWEEN_GRADINGS:
            started = time.monotonic()
            run = _grading.grade(
                root,
                root / "collected",
                jobs=2,
                timeout=CELL_TIMEOUT,
                submission_timeout=SUBMISSION_TIMEOUT,
                cell_output_limit=64 * 1024,
                notebook_output_limit=256 * 1024,
            )
            seconds = time.monotonic() - started
            # What is left right after the run (later tests grade some students again).
            left = {
                "processes": _processes_of(f"sleep {MARK}"),
                "kernels": _processes_in("course-grading-"),
                "belongings": {n: _belongings(prefix + n) for n in cases if n != "lost"},
                "cgroups": _cgroups(),
            }
        yield {
            "left": left,
            "root": root,
            "prefix": prefix,
            "cases": cases,
            "run": run,
            "seconds": seconds,
            "released": released,
        }
    finally:
        service.close()
        for name in cases:
            remove_learner_resources(learner_of(prefix + name), timeout=60)
        for line in _processes_of(f"sleep {MARK}"):
            os.kill(int(line.split(":")[0]), 9)


@integration
def test_the_run_finishes_and_every_submission_has_its_status_and_reason(graded_class: Any) -> None:
    run, prefix, cases = graded_class["run"], graded_class["prefix"], graded_class["cases"]
    print(run, f"\n({graded_class['seconds']:.0f} s)")
    for name, case in cases.items():
        outcome = run[_key(prefix, name)]
        if case["status"] == "any":  # its own test says what it may end as
            continue
        assert outcome.status == case["status"], (name, outcome.status, outcome.reason)
        assert case.get("reason", "") in outcome.reason, (name, outcome.reason)
        if outcome.status != "graded":
            assert outcome.reason and "\n" not in outcome.reason, (name, outcome.reason)
            assert outcome.score is None
    assert len(run.outcomes) == len(cases), "a stray file became a submission, or one is missing"
    assert run.exit_code == 3, "some submissions need the instructor: the exit code must say so"


@integration
def test_gradable_students_score_what_nbgrader_gives_them_alone(
    graded_class: Any, tmp_path: Path
) -> None:
    """Each gradable submission graded alone by plain nbgrader (in this process, one at a time,
    its own course folder) must score exactly what the class run gave it, test by test."""
    root, prefix, cases, run = (graded_class[k] for k in ("root", "prefix", "cases", "run"))
    alone = tmp_path / "alone"
    shutil.copytree(root / "solutions", alone / "solutions")
    gradable = [n for n, case in cases.items() if case.get("gradable") and case.get("alone", True)]
    try:
        for name in gradable:
            student = prefix + name
            shutil.copytree(
                root / "submitted" / student / ASSIGNMENT,
                alone / "submitted" / student / ASSIGNMENT,
                ignore=shutil.ignore_patterns(".*"),
            )
            expected = _grading.autograde(alone, ASSIGNMENT, student, timeout=CELL_TIMEOUT)
            got = _grading.scores(root, ASSIGNMENT, student)
            assert got == expected, (name, got, expected)
            assert run[f"{student}/{ASSIGNMENT}"].score == expected["score"]
    finally:
        deleted = [
            ns
            for name in gradable
            for ns in remove_learner_resources(learner_of(prefix + name), timeout=None).namespaces
        ]
        wait_gone(deleted, 60)
        for line in _processes_of(f"sleep {MARK}"):
            os.kill(int(line.split(":")[0]), 9)
    scores = {name: _grading.scores(root, ASSIGNMENT, prefix + name)["score"] for name in gradable}
    assert scores["full"] == 4 and scores["partial"] == 2 and scores["blank"] == 0, scores
    assert scores["huge"] == 4 and scores["hugewrong"] == 2, scores
    assert run[f"{prefix}signals/{ASSIGNMENT}"].score == 2, "its own work: the pod and double"
    assert run[f"{prefix}tampers/{ASSIGNMENT}"].score == 2, "test_total in the grader's: total is 4"
    # The transformer made every later cell `pass` in the student's kernel: no container, no
    # pod; the grader still runs double from the source the student wrote.
    assert run[f"{prefix}transforms/{ASSIGNMENT}"].score == 1, "double only"
    assert run[f"{prefix}reaches/{ASSIGNMENT}"].score == 3, "all but test_double"


@integration
def test_grades_csv_has_every_student_with_status_and_no_score_for_the_ungradable(
    graded_class: Any,
) -> None:
    root, prefix, cases = graded_class["root"], graded_class["prefix"], graded_class["cases"]
    rows = _grading.read_csv(root / "grades.csv")
    by_key = {(r["student_id"], r["assignment"]): r for r in rows}
    for name, case in cases.items():
        if name == "lost":
            continue
        row = by_key[(prefix + name, ASSIGNMENT)]
        expected = graded_class["run"][_key(prefix, name)].status
        assert row["status"] == expected and case["status"] in (expected, "any"), (name, row)
        if expected == "graded":
            assert (
                float(row["raw_score"]) == _grading.scores(root, ASSIGNMENT, prefix + name)["score"]
            )
        else:
            assert row["raw_score"] == "" and row["reason"], (name, row)
    # A student who handed in only a folder named after no assignment is missing 98-grading:
    # no score, not 0.
    assert by_key[(prefix + "lost", "homework-1")]["status"] == "wrong assignment"
    missing = by_key[(prefix + "lost", ASSIGNMENT)]
    assert missing["status"] == "missing" and missing["raw_score"] == "", missing
    # Nobody handed in 97-other: no rows for it (it is not due yet).
    assert not [r for r in rows if r["assignment"] == OTHER]


@integration
def test_ungradable_feedback_says_why_and_graded_feedback_is_capped(graded_class: Any) -> None:
    root, prefix = graded_class["root"], graded_class["prefix"]
    page = (root / "feedback" / f"{prefix}exits" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "kernel died" in page and "not graded" in page
    huge_nb = root / "autograded" / f"{prefix}huge" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    huge_page = root / "feedback" / f"{prefix}huge" / ASSIGNMENT / f"{ASSIGNMENT}.html"
    assert huge_nb.stat().st_size < 400_000, "3 MB of output reached the graded notebook"
    assert huge_page.stat().st_size < 800_000, "3 MB of output reached the feedback page"
    assert "output cut here by the grader" in huge_page.read_text()
    full = (root / "feedback" / f"{prefix}full" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "Score: 4.0 / 4.0" in full
    log = root / "grading" / "logs" / f"{prefix}exits" / f"{ASSIGNMENT}.log"
    assert "DeadKernelError" in log.read_text(), "the full log of a failed grading is kept"


def _cgroups() -> list[Path]:
    if containment.best_kind() != "cgroup-v1":
        return []
    group = Path(containment.CGROUP_ROOT, "freezer", containment.GROUP)
    return [p for p in group.glob("*") if p.is_dir()]


@integration
def test_a_graded_notebook_reaches_no_grades_answers_or_other_students(graded_class: Any) -> None:
    root, prefix = graded_class["root"], graded_class["prefix"]
    assert all(Path(path).exists() for path, _ in snoop_targets(root, prefix) if path[0] == "/")
    graded = root / "autograded" / f"{prefix}snoops" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    outputs = json.dumps([c.get("outputs") for c in nbformat.read(graded, 4).cells])
    assert "REACHED []" in outputs, f"the sandbox let it reach: {outputs[-600:]}"
    assert _grading.scores(root, ASSIGNMENT, f"{prefix}snoops")["score"] == 4, "its own work counts"


@integration
def test_a_graded_notebook_reaches_no_other_students_containers_nor_the_host(
    graded_class: Any,
) -> None:
    root, prefix = graded_class["root"], graded_class["prefix"]
    graded = root / "autograded" / f"{prefix}hurts" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    outputs = json.dumps([c.get("outputs") for c in nbformat.read(graded, 4).cells])
    assert "ENGINE REACHED []" in outputs, f"the engine guard let it: {outputs[-600:]}"
    assert _grading.scores(root, ASSIGNMENT, f"{prefix}hurts")["score"] == 4
    assert _grading.scores(root, ASSIGNMENT, f"{prefix}full")["score"] == 4, "the victim's grade"


@integration
def test_a_graded_notebook_reaches_nothing_of_this_machine_the_cluster_or_the_grader(
    graded_class: Any,
) -> None:
    """The host's services, root's files, the grader's environment, other students' namespaces,
    privileged pods and the folder nbgrader writes to: none of them, and its own work counts."""
    root, prefix = graded_class["root"], graded_class["prefix"]
    graded = root / "autograded" / f"{prefix}escapes" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    outputs = json.dumps([c.get("outputs") for c in nbformat.read(graded, 4).cells])
    assert "ESCAPES REACHED []" in outputs, f"it got out: {outputs[-900:]}"
    assert (root / "victim.txt").read_text() == "the instructor's file", "written through a link"
    assert not graded.is_symlink()
    assert _grading.scores(root, ASSIGNMENT, f"{prefix}escapes")["score"] == 4, "its own work"
    assert graded_class["run"][f"{prefix}escapes/{ASSIGNMENT}"].credentials == "grading account"


@integration
def test_a_fork_bomb_and_a_memory_hog_take_nothing_from_the_others(graded_class: Any) -> None:
    """Graded beside the others: the fork bomb stops at the process limit, the 30 GiB hog at the
    memory limit (not gradable, saying so); every honest submission keeps its full marks and the
    cluster answers."""
    root, prefix, run = graded_class["root"], graded_class["prefix"], graded_class["run"]
    bomb = run[f"{prefix}forkbomb/{ASSIGNMENT}"]
    # Stopped by the process limit, or by the memory limit its copies reach first.
    assert bomb.status in ("graded", "timed out", "kernel died", "memory limit"), bomb
    assert bomb.status != "graded" or "it left running were killed" in bomb.reason, bomb.reason
    hog = run[f"{prefix}hog/{ASSIGNMENT}"]
    assert hog.status == "memory limit" and "GiB" in hog.reason, hog
    for honest in ("full", "snoops", "hurts", "escapes", "huge"):
        assert _grading.scores(root, ASSIGNMENT, prefix + honest)["score"] == 4, honest
    assert k8s.request("GET", "/readyz") == "ok"


@integration
def test_a_notebook_that_replaces_a_check_is_flagged_in_the_csv_feedback_and_exit_code(
    graded_class: Any,
) -> None:
    root, prefix, run = graded_class["root"], graded_class["prefix"], graded_class["run"]
    outcome = run[f"{prefix}tampers/{ASSIGNMENT}"]
    assert outcome.graded and "answer_total: replaces check.equal" in outcome.flags, outcome
    transforms = run[f"{prefix}transforms/{ASSIGNMENT}"].flags
    assert "answer_total: registers an input transformer" in transforms, transforms
    reaches = run[f"{prefix}reaches/{ASSIGNMENT}"].flags
    assert "answer_double: replaces helpers.check.equal" in reaches, reaches
    assert outcome in run.needs_instructor()
    rows = _grading.read_csv(root / "grades.csv")
    flags = {row["student_id"]: row["flags"] for row in rows if row["assignment"] == ASSIGNMENT}
    assert "replaces check.equal" in flags[f"{prefix}tampers"]
    assert not flags[f"{prefix}full"] and not flags[f"{prefix}snoops"], "honest work is not flagged"
    page = next((root / "feedback" / f"{prefix}tampers" / ASSIGNMENT).glob("*.html")).read_text()
    assert "Flagged for your instructor" in page
    assert "ran this test in a kernel of its own" in page, "the feedback says why it failed"


@integration
def test_a_function_the_grader_calls_reaches_nothing_of_its_kernel(graded_class: Any) -> None:
    """The student's function runs, for the grader, in a process that is PID 1 of namespaces of
    its own: the grader's kernel's /proc files, a signal to it and its connection file are out
    of its reach, and the check it replaced is replaced in that process only."""
    root, prefix = graded_class["root"], graded_class["prefix"]
    graded = root / "autograded" / f"{prefix}reaches" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    cells = {
        c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nbformat.read(graded, 4).cells
    }
    outputs = json.dumps(cells["test_double"].get("outputs"))
    assert "FUNCTION REACHED [] AS PID 1 CHILD OF 0" in outputs, outputs[-800:]
    assert "expected 42, found 21" in outputs, outputs[-800:]
    scores = _grading.scores(root, ASSIGNMENT, f"{prefix}reaches")["tests"]
    assert scores == {"test_total": 2, "test_running": 1, "test_double": 0}, scores


@integration
def test_nothing_of_the_students_is_left_running(graded_class: Any) -> None:
    left = graded_class["left"]
    assert not left["processes"], "a process a submission started outlived it"
    assert not left["kernels"], "a kernel or its child outlived its grading"
    assert not any(left["belongings"].values()), left["belongings"]
    assert not left["cgroups"], "a submission's cgroup was left behind"


@integration
def test_exercises_are_not_rewritten_by_grading(graded_class: Any) -> None:
    root = graded_class["root"]
    now = {p: p.read_bytes() for p in (root / "exercises").rglob("*.ipynb")}
    assert now == graded_class["released"], "grading changed exercises/"
    assert all(json.loads(data)["cells"] for data in now.values())


@integration
def test_a_rerun_grades_nothing_and_a_changed_submission_is_graded_alone(
    graded_class: Any,
) -> None:
    root, prefix = graded_class["root"], graded_class["prefix"]
    again = _grading.grade(
        root, jobs=2, timeout=CELL_TIMEOUT, submission_timeout=SUBMISSION_TIMEOUT
    )
    assert again.graded_now == []
    assert {o.key: o.score for o in again.outcomes} == {
        o.key: o.score for o in graded_class["run"].outcomes
    }
    # The student fixes the answer and hands in again: only that submission is graded.
    path = root / "submitted" / f"{prefix}partial" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    notebook = nbformat.read(path, 4)
    nbformat.write(_with(notebook, answer_total="total = 5"), path)
    changed = _grading.grade(
        root, jobs=2, timeout=CELL_TIMEOUT, submission_timeout=SUBMISSION_TIMEOUT
    )
    assert changed.graded_now == [f"{prefix}partial/{ASSIGNMENT}"]
    assert changed[f"{prefix}partial/{ASSIGNMENT}"].score == 4
    assert _grading.scores(root, ASSIGNMENT, prefix + "partial")["score"] == 4
    rows = {r["student_id"]: r for r in _grading.read_csv(root / "grades.csv")}
    assert float(rows[prefix + "partial"]["raw_score"]) == 4


@integration
def test_a_student_filter_grades_again_and_keep_leaves_their_work(graded_class: Any) -> None:
    root, prefix = graded_class["root"], graded_class["prefix"]
    student = prefix + "full"
    before = _grading.scores(root, ASSIGNMENT, student)
    try:
        again = _grading.grade(
            root,
            students=[student],
            assignments=[ASSIGNMENT],
            jobs=1,
            keep=True,
            timeout=CELL_TIMEOUT,
        )
        assert again.graded_now == [f"{student}/{ASSIGNMENT}"], "the filter must force a regrade"
        assert _grading.scores(root, ASSIGNMENT, student) == before, "grading twice differs"
        assert again.exit_code == 0, again
        kept = _belongings(student)
        assert any(k.startswith("container/") for k in kept) and any(
            k.startswith("namespace/") for k in kept
        ), kept
    finally:
        remove_learner_resources(learner_of(student), timeout=60)


@integration
def test_python_m_helpers_grade_exit_code_and_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `make grade` runs (``python -m helpers grade``): a line per submission, the table,
    and exit code 3 while a submission needs the instructor, 0 when the filter leaves only
    graded ones."""
    from helpers.__main__ import main

    root = tmp_path / "course"
    (root / "solutions" / OTHER).mkdir(parents=True)
    nbformat.write(other_notebook(), root / "solutions" / OTHER / f"{OTHER}.ipynb")
    prefix = f"c{int(time.time()) % 100000}-"
    good = root / "submitted" / f"{prefix}good" / OTHER
    good.mkdir(parents=True)
    nbformat.write(other_notebook(), good / f"{OTHER}.ipynb")
    broken = root / "submitted" / f"{prefix}broken" / OTHER
    broken.mkdir(parents=True)
    (broken / f"{OTHER}.ipynb").write_text('{"cells": [')
    command = ["grade", "--root", str(root), "--jobs", "2"]
    assert main(command) == 3
    printed = capsys.readouterr().out
    assert "[2/2]" in printed and "invalid notebook" in printed, printed
    assert f"{prefix}good/{OTHER}  1/1" in printed, printed
    assert main([*command, "--student", f"{prefix}good"]) == 0, capsys.readouterr().out
    assert not (root / "exercises").exists(), "grading must not release into exercises/"


@integration
def test_sigterm_stops_the_run_and_kills_the_running_submissions(tmp_path: Path) -> None:
    """A run stopped by SIGTERM (or Ctrl+C) kills what is running, with everything it started,
    keeps what finished, and exits 130; the stopped submission is graded next time."""
    root = tmp_path / "course"
    (root / "solutions" / OTHER).mkdir(parents=True)
    nbformat.write(other_notebook(), root / "solutions" / OTHER / f"{OTHER}.ipynb")
    prefix = f"s{int(time.time()) % 100000}-"
    marker = f"sleep {MARK + 100}"
    for name, answer in (("quick", "answer = 42"), ("stuck", f"import os\nos.system('{marker}')")):
        folder = root / "submitted" / f"{prefix}{name}" / OTHER
        folder.mkdir(parents=True)
        nbformat.write(_with(other_notebook(), answer_other=answer), folder / f"{OTHER}.ipynb")
    state_file = root / "grading" / "state.json"

    def terminate_when_quick_is_done_and_stuck_runs() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if state_file.exists() and _processes_of(marker):
                break
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)  # to this process: grade() runs in its main thread

    before = signal.getsignal(signal.SIGTERM)
    sender = threading.Thread(target=terminate_when_quick_is_done_and_stuck_runs, daemon=True)
    sender.start()
    run = _grading.grade(root, jobs=2)
    sender.join()
    assert run.interrupted and run.exit_code == 130, run
    assert not _processes_of(marker), "a stopped submission's process outlived the run"
    assert signal.getsignal(signal.SIGTERM) is before, "the run must restore SIGTERM's handler"
    state = json.loads((root / "grading" / "state.json").read_text())["submissions"]
    assert list(state) == [f"{prefix}quick/{OTHER}"], state


def test_containment_kills_a_double_fork_that_left_the_session() -> None:
    """The containment this machine uses, and the session fallback a laptop would use, each kill
    a process that double-forked into a new session."""
    import multiprocessing

    kinds = {containment.best_kind(), "session"}
    for kind in sorted(kinds):
        box = containment.Containment.create(f"test-{os.getpid()}-{kind}", kind)
        marker = f"sleep {MARK + 10 + len(kind)}"
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(target=_escape, args=(box, marker))
        child.start()
        deadline = time.monotonic() + 10
        while not _processes_of(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_of(marker), f"{kind}: the escaping process did not start"
        killed = box.kill_all(leader=child.pid)
        child.join(timeout=5)
        box.remove()
        time.sleep(0.2)
        assert killed >= 1 and not _processes_of(marker), (kind, _processes_of(marker))


def _escape(box: containment.Containment, marker: str) -> None:
    box.join()
    subprocess.Popen(["setsid", "sh", "-c", f"{marker} &"])
    time.sleep(60)


# --- fast tests of the parts (no kernel, no engine, no cluster) --------------------------------


def _source(tmp_path: Path, name: str, notebook: Any) -> Any:
    from helpers._grading import course

    folder = tmp_path / "solutions" / name
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{name}.ipynb")
    return course.source(tmp_path, name)


def _handed_in(tmp_path: Path, name: str, content: Any, file: str | None = None) -> Any:
    from helpers._grading import intake

    folder = tmp_path / "submitted" / name / ASSIGNMENT
    folder.mkdir(parents=True)
    path = folder / (file or f"{ASSIGNMENT}.ipynb")
    if isinstance(content, str):
        path.write_text(content)
    else:
        nbformat.write(content, path)
    (folder / ".DS_Store").write_bytes(b"\0")
    return next(s for s in intake.find(tmp_path / "submitted") if s.student == name)


def test_checks_without_a_kernel_name_the_problem(tmp_path: Path) -> None:
    from helpers._grading import intake

    solution = assignment_notebook()
    source = _source(tmp_path, ASSIGNMENT, solution)
    other = _source(tmp_path, OTHER, other_notebook())
    sources = [source, other]
    edited_points = _edited(solution, "test_total", points=10)  # nbgrader restores points
    cases = {
        "ok": (solution, None, None),
        "points": (edited_points, None, None),
        "answered": (_with(solution, answer_total="total = 4"), None, None),
        "empty": ("", "invalid notebook", "empty"),
        "json": (nbformat.writes(solution)[:100], "invalid notebook", "not valid JSON"),
        "nocells": (new_notebook(), "invalid notebook", "no cells"),
        "notnb": ('{"a": 1}', "invalid notebook", "not a Jupyter notebook"),
        "other": (other_notebook(), "wrong assignment", f"holds {OTHER}'s cells"),
        "lesson": (new_notebook(cells=[new_code_cell("1")]), "wrong assignment", "none of"),
        "renamed": (
            _edited(solution, "answer_total", grade_id="x"),
            "checksum mismatch",
            "renamed",
        ),
        "flag": (_edited(solution, "test_total", grade=False), "checksum mismatch", "grade: false"),
    }
    missing = copy.deepcopy(solution)
    del missing.cells[3].metadata["nbgrader"]
    cases["nometa"] = (missing, "checksum mismatch", "'test_total' is missing")
    for name, (content, status, reason) in cases.items():
        found = intake.check(_handed_in(tmp_path, name, content), source, sources)
        if status is None:
            assert found is None, (name, found)
        else:
            assert found is not None and found.status == status, (name, found)
            assert reason in found.reason and "\n" not in found.reason, (name, found.reason)
    named = intake.check(
        _handed_in(tmp_path, "named", other_notebook(), f"{OTHER}.ipynb"), source, sources
    )
    assert named is not None and f"that is {OTHER}'s notebook" in named.reason


def test_stray_files_are_not_submissions_and_do_not_change_the_digest(tmp_path: Path) -> None:
    from helpers._grading import intake

    submitted = tmp_path / "submitted"
    folder = submitted / "alice" / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(assignment_notebook(), folder / f"{ASSIGNMENT}.ipynb")
    before = intake.find(submitted)[0].digest
    (submitted / ".DS_Store").write_bytes(b"\0")
    (submitted / "__MACOSX").mkdir()
    (submitted / "alice" / ".DS_Store").write_bytes(b"\0")
    (folder / ".DS_Store").write_bytes(b"\0")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text("{}")
    found = intake.find(submitted)
    assert [(s.student, s.assignment) for s in found] == [("alice", ASSIGNMENT)]
    assert found[0].digest == before
    (folder / "notes.txt").write_text("a file the student added")
    assert intake.find(submitted)[0].digest != before, "a real change must change the digest"


def _message(kind: str, **content: Any) -> dict[str, Any]:
    return {
        "msg_type": kind,
        "header": {"msg_type": kind},
        "parent_header": {"msg_id": "m"},
        "content": content,
    }


def test_the_output_cap_cuts_with_a_note_and_keeps_what_decides_the_grade() -> None:
    """Over its budget a cell keeps its first stderr, its errors and its results (nbgrader grades
    by them), so a capped test cell scores what it would have scored uncapped."""

    from helpers._grading.execute import CUT_MARK, CappedExecute

    client = CappedExecute(cell_output_limit=1000, notebook_output_limit=1500)
    client.reset_execution_trackers()
    client.clear_before_next_output = False  # set as each cell starts
    outs: list[Any] = []
    for _ in range(50):
        client.output(outs, _message("stream", name="stdout", text="x" * 100), None, 0)
    text = "".join(o.get("text", "") for o in outs if o.output_type == "stream")
    assert len(text.encode()) < 1000 + 500 and CUT_MARK in text
    client.output(outs, _message("stream", name="stderr", text="e" * 5000), None, 0)
    client.output(outs, _message("stream", name="stderr", text="more"), None, 0)
    client.output(
        outs,
        _message("error", ename="CheckFailed", evalue="v" * 10**6, traceback=["t"] * 500),
        None,
        0,
    )
    kinds = [(o.output_type, o.get("name")) for o in outs]
    assert kinds.count(("stream", "stderr")) == 1, kinds
    assert ("error", None) in kinds
    error = next(o for o in outs if o.output_type == "error")
    assert len(error.evalue) <= 2048 and len(error.traceback) <= 11
    # A later cell, with the notebook's budget spent: its result is kept, shortened.
    later: list[Any] = []
    client._kept_before = 1500
    client.output(
        later,
        _message("execute_result", data={"text/plain": "0.5"}, metadata={}, execution_count=1),
        None,
        1,
    )
    result = next(o for o in later if o.output_type == "execute_result")
    assert result["data"]["text/plain"] == "0.5", later


def test_grades_csv_without_a_gradebook_lists_status_and_missing(tmp_path: Path) -> None:
    from helpers._grading import gradebook
    from helpers._grading.outcome import Outcome

    state = gradebook.State(tmp_path)
    state.put(Outcome("bob", ASSIGNMENT, "kernel died", "the kernel died in cell 2"), "d1", "s1")
    state.put(Outcome("eve", "homework", "wrong assignment", "no assignment named"), "d2", "")
    state.save()
    rows = _grading.read_csv(_grading.export_csv(tmp_path))
    by_key = {(r["student_id"], r["assignment"]): r for r in rows}
    assert by_key[("bob", ASSIGNMENT)]["status"] == "kernel died"
    assert by_key[("bob", ASSIGNMENT)]["raw_score"] == ""
    assert by_key[("eve", ASSIGNMENT)]["status"] == "missing"
    assert by_key[("eve", "homework")]["status"] == "wrong assignment"
    assert ("bob", "homework") not in by_key, "a folder named after no assignment is no assignment"
