"""The grading sandbox's parts, on hostile inputs: the launcher (what a kernel sees, runs as,
inherits), the kubeconfig a notebook gets, the copy of a submission, the cgroup limits, and the
network relay (with real network namespaces, as root). The class run (tests/test_class_grading.py)
tries them all together with real notebooks."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers._errors import CommandFailed, CourseError
from helpers._grading import containment, credentials, enter_sandbox, intake, network, sandbox

ROOT = os.geteuid() == 0
PLAN: dict[str, Any] = {
    "mounts": ["--ro-bind", "/usr", "/usr", "--clearenv", "--setenv", "HOME", "/tmp/home"],
    "kernel": ["python3", "-m", "ipykernel_launcher"],
    "user": [65534, 65534],
    "passed": list(sandbox.PASSED),
    "namespaces": {},
}


def connection_file(folder: Path, transport: str = "ipc") -> Path:
    sockets = folder / "sockets"
    sockets.mkdir(exist_ok=True)
    path = folder / "kernel-1.json"
    path.write_text(json.dumps({"transport": transport, "ip": str(sockets / "k"), "key": "s"}))
    return path


# --- the launcher ------------------------------------------------------------------------------


@pytest.mark.parametrize(("failures", "expected"), [(0, True), (2, True), (3, False)])
def test_one_failed_probe_does_not_grade_a_class_without_the_sandbox(
    monkeypatch: pytest.MonkeyPatch, failures: int, expected: bool
) -> None:
    """bwrap's probe is asked again before a run goes without the sandbox (a probe that failed
    once, on a busy machine, graded a whole run unsandboxed)."""
    answers = iter([1] * failures + [0] * 3)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(
        subprocess, "run", lambda *args, **kwargs: subprocess.CompletedProcess(args, next(answers))
    )
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    assert sandbox.available() is expected


def test_a_kernel_gets_its_own_folders_on_top_of_the_shared_plan(tmp_path: Path) -> None:
    connection = connection_file(tmp_path)
    args = enter_sandbox.command(PLAN, str(connection), "/work/ann", {}, "/copies/k1/work")
    line = " ".join(args)
    assert args[0] == "bwrap" and "--ro-bind /usr /usr" in line
    assert f"--ro-bind {connection} {connection}" in line  # read-only: its key, not a way out
    # the kernel works in a copy, shown where nbgrader's folder is
    assert "--bind /copies/k1/work /work/ann --chdir /work/ann" in line
    assert f"--bind {tmp_path / 'sockets'} {tmp_path / 'sockets'}" in line
    assert args[-4:] == ["-m", "ipykernel_launcher", "-f", str(connection)]
    tcp = connection_file(tmp_path, "tcp")
    assert "sockets" not in " ".join(enter_sandbox.command(PLAN, str(tcp), "/w", {}))


@pytest.mark.parametrize(
    ("name", "passed"),
    [
        ("COURSE_LEARNER", True),  # whose work: the grader sets it
        ("NBGRADER_EXECUTION", True),
        ("KUBECONFIG", False),  # the grader's own credentials: the plan sets the student's
        ("DOCKER_HOST", False),  # the engine itself: the plan sets the guard's socket
        ("AWS_SECRET_ACCESS_KEY", False),
        ("SSH_AUTH_SOCK", False),  # the instructor's keys
        ("PYTHONPATH", False),  # would put the grader's code in the kernel's imports
        ("LD_PRELOAD", False),
        ("JUPYTER_PATH", False),
        ("COURSE_DOCKER_GUARD", False),
        ("HOME", False),  # the plan's own, not /root
    ],
)
def test_the_kernel_inherits_only_named_variables(tmp_path: Path, name: str, passed: bool) -> None:
    args = enter_sandbox.command(PLAN, str(connection_file(tmp_path)), "/w", {name: "VALUE"})
    pairs = {(args[i + 1], args[i + 2]) for i, a in enumerate(args) if a == "--setenv"}
    assert ((name, "VALUE") in pairs) is passed
    assert "--clearenv" in args, "nothing else of the grader's environment reaches the kernel"


def test_as_root_the_kernel_drops_to_the_sandbox_user_with_no_way_back(tmp_path: Path) -> None:
    args = enter_sandbox.command(PLAN, str(connection_file(tmp_path)), "/w", {})
    kernel = args[args.index("--") + 1 :]
    assert kernel[0] == "setpriv" and "--reuid=65534" in kernel and "--regid=65534" in kernel
    for option in ("--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"):
        assert option in kernel
    assert kernel[kernel.index("--") + 1] == "python3"
    unprivileged = {**PLAN, "user": None}
    kernel = enter_sandbox.command(unprivileged, str(connection_file(tmp_path)), "/w", {})
    assert "setpriv" not in kernel, "not root: the kernel is the instructor's own user already"


def test_a_kernel_without_its_network_namespace_is_refused(tmp_path: Path) -> None:
    plan = {**PLAN, "user": None, "namespaces": {"student": "/run/netns/x"}}
    with pytest.raises(SystemExit, match="no network namespace for a 'grader' kernel"):
        enter_sandbox.prepare(plan, str(connection_file(tmp_path)), str(tmp_path), "grader")


@pytest.mark.skipif(not ROOT, reason="handing files over needs root")
def test_handing_over_a_folder_never_follows_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "instructors-file"
    victim.write_text("secret")
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "answer.txt").write_text("42")
    (work / "link").symlink_to(victim)
    (work / "sub" / "dirlink").symlink_to(tmp_path)
    enter_sandbox.hand_over(str(work), [65534, 65534])
    assert (work / "answer.txt").stat().st_uid == 65534
    assert (work / "sub").stat().st_uid == 65534
    assert (work / "link").lstat().st_uid == 65534, "the link itself is theirs"
    assert victim.stat().st_uid == 0, "what it points at stays the instructor's"
    assert tmp_path.stat().st_uid == 0


def test_the_kernels_copy_keeps_links_as_links(tmp_path: Path) -> None:
    work = tmp_path / "autograded" / "ann" / "01"
    work.mkdir(parents=True)
    (work / "01.ipynb").write_text("{}")
    (work / "passwd").symlink_to("/etc/passwd")
    copy = enter_sandbox.working_copy({"copies": str(tmp_path / "copies")}, str(work))
    assert (Path(copy) / "01.ipynb").read_text() == "{}"
    assert (Path(copy) / "passwd").is_symlink(), "copied as a link, resolved only inside"
    assert Path(copy).parent.parent == tmp_path / "copies"


def test_the_plan_clears_the_environment_and_shows_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COURSE_GRADER_SECRET", "do-not-leak")
    kubeconfig, guard = tmp_path / "kubeconfig", tmp_path / "docker.sock"
    args = sandbox.mounts(kubeconfig, guard, (65534, 65534))
    line = " ".join(args)
    assert "do-not-leak" not in line
    assert args.index("--clearenv") < args.index("--setenv")
    assert f"--ro-bind {kubeconfig} {sandbox.KUBECONFIG}" in line
    assert f"--ro-bind {guard} {sandbox.DOCKER_SOCKET}" in line
    assert "--setenv KUBECONFIG /run/course/kubeconfig" in line
    assert "--cap-add CAP_SETUID" in line, "only for setpriv, which drops it at once"
    for masked in sandbox.MASKED:
        if Path(masked).exists():
            assert masked in line
    assert "/var/run/docker.sock /var/run/docker.sock" not in line, "never the engine itself"
    bare = " ".join(sandbox.mounts(None, None, None))
    assert "KUBECONFIG" not in bare and "DOCKER_HOST" not in bare and "CAP_SETUID" not in bare


def test_helm_is_shown_read_only_on_the_kernels_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chapter 07's kernels find helm (the host's, read-only) on their PATH; without one on the
    host, nothing is bound."""
    from helpers import helm

    fake = tmp_path / "bin" / "helm"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(helm, "binary", lambda: str(fake))
    line = " ".join(sandbox.mounts(None, None, (65534, 65534)))
    assert f"--ro-bind {fake} {sandbox.TOOLS}/helm" in line
    assert f"--perms 0755 --dir {sandbox.TOOLS}" in line, "a folder the kernel's user can pass"
    assert f"--setenv PATH {Path(sys.executable).parent}:{sandbox.TOOLS}:" in line

    def missing() -> str:
        raise CommandFailed("helm is not installed.")

    monkeypatch.setattr(helm, "binary", missing)
    assert "/helm" not in " ".join(sandbox.mounts(None, None, (65534, 65534)))


# --- the kubeconfig a notebook gets ------------------------------------------------------------


def kubeconfig(tmp_path: Path, **user: Any) -> Path:
    (tmp_path / "ca.crt").write_bytes(b"CA")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "mine",
        "clusters": [
            {"name": "other", "cluster": {"server": "https://10.9.9.9:6443"}},
            {"name": "here", "cluster": {"server": "https://127.0.0.1:6443", "certificate-authority": "ca.crt"}},
        ],
        "users": [{"name": "admin", "user": {"token": "ADMIN"}}, {"name": "me", "user": user}],
        "contexts": [
            {"name": "admin", "context": {"cluster": "other", "user": "admin"}},
            {"name": "mine", "context": {"cluster": "here", "user": "me", "namespace": "ann-03"}},
        ],
    }  # fmt: skip
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_notebook_gets_its_current_context_only_with_its_files_inlined(tmp_path: Path) -> None:
    (tmp_path / "me.key").write_bytes(b"KEY")
    flat = credentials.flatten(kubeconfig(tmp_path, **{"client-key": str(tmp_path / "me.key")}))
    text = yaml.safe_dump(flat)
    assert "ADMIN" not in text and "10.9.9.9" not in text, "no other context's credentials"
    cluster, user = flat["clusters"][0]["cluster"], flat["users"][0]["user"]
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"CA"
    assert base64.b64decode(user["client-key-data"]) == b"KEY"
    assert "client-key" not in user and "certificate-authority" not in cluster, "no file names"
    assert flat["contexts"][0]["context"]["namespace"] == "ann-03"
    token = tmp_path / "token"
    token.write_text("TOKEN\n")
    flat = credentials.flatten(kubeconfig(tmp_path, tokenFile="token"))
    assert flat["users"][0]["user"] == {"token": "TOKEN"}
    assert credentials.api_server(flat) == ("127.0.0.1", 6443, ["127.0.0.1"])


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("not: [yaml", "Cannot read the kubeconfig"),
        ("apiVersion: v1\nkind: Config\n", "has no current context"),
        ("current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]", "no cluster"),
    ],
)
def test_a_broken_kubeconfig_says_what_is_wrong(tmp_path: Path, broken: str, message: str) -> None:
    path = tmp_path / "config"
    path.write_text(broken)
    with pytest.raises(CourseError, match=message):
        credentials.flatten(path)


def test_a_file_the_kubeconfig_names_must_be_readable(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, **{"client-certificate": "/nonexistent/cert"})
    with pytest.raises(CourseError, match="/nonexistent/cert"):
        credentials.flatten(path)


def test_the_private_kubeconfig_is_its_owners_alone(tmp_path: Path) -> None:
    owner = (65534, 65534) if ROOT else None
    written = credentials.write_private({"a": 1}, tmp_path / "k" / "config", owner)
    assert written.stat().st_mode & 0o777 == 0o400
    if ROOT:
        assert written.stat().st_uid == 65534


# --- what a submission may bring ---------------------------------------------------------------


def test_links_in_a_submission_are_never_copied(tmp_path: Path) -> None:
    incoming = tmp_path / "collected" / "ann" / "01"
    incoming.mkdir(parents=True)
    (incoming / "01.ipynb").write_text("{}")
    (incoming / "shadow").symlink_to("/etc/shadow")
    (incoming / "home").symlink_to(Path.home())
    (tmp_path / "collected" / "bob").symlink_to(Path.home())  # a whole "student" that is a link
    submitted = tmp_path / "submitted"
    intake.copy_in(tmp_path / "collected", submitted)
    assert sorted(p.name for p in (submitted / "ann" / "01").iterdir()) == ["01.ipynb"]
    assert not (submitted / "bob").exists()
    (submitted / "ann" / "02").symlink_to(tmp_path)
    assert [s.assignment for s in intake.find(submitted)] == ["01"]


# --- limits ------------------------------------------------------------------------------------


def fake_v1(root: Path, controllers: tuple[str, ...]) -> None:
    for controller in controllers:
        (root / controller).mkdir(parents=True)
        (root / controller / "cgroup.procs").write_text("")


def test_a_submission_gets_process_memory_and_cpu_limits(tmp_path: Path) -> None:
    fake_v1(tmp_path, containment.V1_CONTROLLERS)
    box = containment.Containment.create("ann-1", "cgroup-v1", memory=123, pids=45, root=tmp_path)

    def group(controller: str) -> Path:  # below the grader's own cgroup in that hierarchy
        own = containment._own_v1_path(controller)
        return tmp_path / controller / own / containment.GROUP / "ann-1"

    assert (group("pids") / "pids.max").read_text() == "45"
    assert (group("memory") / "memory.limit_in_bytes").read_text() == "123"
    assert group("cpu").is_dir(), "a scheduling group of its own: a fair share"
    assert box.paths[0] == str(group("freezer")), "the freezer lists the members"
    assert box.missing() == []


def test_a_missing_controller_is_said_not_ignored(tmp_path: Path) -> None:
    fake_v1(tmp_path, ("freezer", "pids"))
    box = containment.Containment.create("ann-1", "cgroup-v1", root=tmp_path)
    said = " ".join(box.missing())
    assert "no memory limit" in said and "no cpu limit" in said
    assert "no memory controller mounted" in said
    assert "processes" in box.limits


def test_the_oom_killer_is_counted_on_v1_and_v2(tmp_path: Path) -> None:
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    v1.mkdir()
    v2.mkdir()
    (v1 / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (v2 / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n")
    assert containment.Containment("x", "cgroup-v1", (str(v1),)).oom_kills() == 2
    assert containment.Containment("x", "cgroup-v2", (str(v2),)).oom_kills() == 1
    assert containment.Containment("x", "session").oom_kills() == 0


def test_on_cgroup_v2_the_grader_hands_the_controllers_down_from_a_leaf(tmp_path: Path) -> None:
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    mine = next((line[3:] for line in lines if line.startswith("0::")), "/grader.scope")
    (tmp_path / "cgroup.controllers").write_text("")  # a cgroup v2 file system, in a folder
    own = tmp_path / mine.lstrip("/")
    own.mkdir(parents=True, exist_ok=True)
    (own / "cgroup.controllers").write_text("cpu memory pids io\n")
    (own / "cgroup.subtree_control").write_text("")
    (own / "cgroup.procs").write_text("")  # a fake: writing a pid here moves nothing
    assert containment._delegate_v2(own) == {"cpu", "memory", "pids"}
    assert (own / containment.V2_LEAF).is_dir(), "the grader's processes go to a leaf first"
    written = set((own / "cgroup.subtree_control").read_text().split())
    assert written == {"+cpu", "+memory", "+pids"}, "io stays: only what the limits need"
    (own / "cgroup.controllers").write_text("io\n")  # nothing delegated to the grader
    (own / "cgroup.subtree_control").write_text("")
    assert containment._delegate_v2(own) == set()
    box = containment.Containment.create("ann-1", "cgroup-v2", root=tmp_path)
    assert "not delegated" in " ".join(box.missing())


# --- the network relay (real namespaces) -------------------------------------------------------


@pytest.fixture
def namespaces() -> Any:
    if network.unavailable():
        pytest.skip(f"no network namespaces here: {network.unavailable()}")
    made = [network.Namespace.create(f"test-{os.getpid()}-{role}") for role in ("s", "g")]
    yield made
    for namespace in made:
        namespace.delete()
    assert not any(n.path.exists() for n in made)


def in_namespace(namespace: network.Namespace, port: int) -> str:
    """Connect from inside ``namespace`` to 127.0.0.1:port; what answers, or why nothing did."""
    probe = (
        "import socket\ntry:\n"
        f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
        "    s.sendall(b'hi')\n    print(s.recv(100).decode() or 'closed')\n"
        "except OSError as e:\n    print(type(e).__name__)"
    )
    done = subprocess.run(
        ["ip", "netns", "exec", namespace.name, "python3", "-c", probe],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    return done.stdout.strip() or done.stderr.strip()


def host_server() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer() -> None:
        while True:
            try:
                peer, _ = server.accept()
            except OSError:
                return
            peer.sendall(b"from the host: " + peer.recv(100))
            peer.close()

    threading.Thread(target=answer, daemon=True).start()
    return server, server.getsockname()[1]


def test_a_namespace_reaches_nothing_of_the_host_but_what_the_relay_allows(
    namespaces: list[network.Namespace],
) -> None:
    allowed_server, allowed = host_server()
    other_server, other = host_server()  # etcd, a kubelet, another student's port: not theirs
    permitted = {("127.0.0.1", allowed)}
    relay = network.Relay([n.path for n in namespaces], allowed=lambda e: e in permitted)
    try:
        assert in_namespace(namespaces[0], other) == "ConnectionRefusedError", "not relayed"
        relay.open(("127.0.0.1", allowed))
        for namespace in namespaces:
            assert in_namespace(namespace, allowed) == "from the host: hi"
        relay.open(("127.0.0.1", other))  # listening, but no longer the student's
        assert in_namespace(namespaces[1], other) in ("closed", "ConnectionResetError")
        assert f"127.0.0.1:{other}" in relay.refused
    finally:
        relay.close()
        allowed_server.close()
        other_server.close()


def test_a_port_the_student_took_first_in_theirs_stays_the_relays_in_the_graders(
    namespaces: list[network.Namespace],
) -> None:
    server, port = host_server()
    squatter = subprocess.Popen(
        ["ip", "netns", "exec", namespaces[0].name, "python3", "-c",
         f"import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',{port}))\ns.listen()\n"
         "print('ready', flush=True)\ntime.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    relay = network.Relay([n.path for n in namespaces], allowed=lambda _e: True)
    try:
        assert squatter.stdout is not None and squatter.stdout.readline().strip() == "ready"
        taken = relay.open(("127.0.0.1", port))
        assert len(taken) == 1 and namespaces[0].name in taken[0]
        assert in_namespace(namespaces[1], port) == "from the host: hi"
    finally:
        squatter.kill()
        relay.close()
        server.close()


@pytest.mark.skipif(containment.best_kind() != "cgroup-v1", reason="cgroup v1 as root")
def test_a_memory_hog_is_ended_at_its_limit_and_counted(tmp_path: Path) -> None:
    box = containment.Containment.create(f"test-hog-{os.getpid()}", memory=128 * 2**20)
    hog = "chunks = []\nwhile True:\n    chunks.append(b'x' * 2**24)  # touched, not just reserved"
    try:
        done = subprocess.run(
            ["python3", "-c", hog], preexec_fn=box.join, capture_output=True, timeout=60
        )
        assert done.returncode == -9, "the OOM killer ended it at 128 MiB"
        assert box.oom_kills() >= 1
    finally:
        box.kill_all()
        assert box.remove() == []


@pytest.mark.skipif(containment.best_kind() != "cgroup-v1", reason="cgroup v1 as root")
def test_a_fork_bomb_stops_at_the_process_limit(tmp_path: Path) -> None:
    box = containment.Containment.create(f"test-bomb-{os.getpid()}", pids=40)
    bomb = (
        "import os, time\nmade = 0\nfor _ in range(200):\n    try:\n        if os.fork() == 0:\n"
        "            os.close(1)\n            os.close(2)\n            time.sleep(30)\n"
        "            os._exit(0)\n        made += 1\n"
        "    except BlockingIOError:\n        break\nprint(made, flush=True)\nos._exit(0)"
    )
    try:
        done = subprocess.run(
            ["python3", "-c", bomb], preexec_fn=box.join, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert int(done.stdout) < 40, "no more than the limit at once"
        assert box.kill_all() >= 1, "the children it left are in the containment, and killed"
    finally:
        box.kill_all()
        assert box.remove() == []


def test_make_grade_says_in_one_line_each_protection_this_machine_lacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from helpers._grading import safeguards, settings

    options = settings.ClassGrading()
    said = io.StringIO()
    monkeypatch.setattr(network, "unavailable", lambda: "not root")
    monkeypatch.setattr(containment, "best_kind", lambda: "session")
    assert safeguards.say_what_is_missing(True, options, said) is False
    lines = said.getvalue().splitlines()
    assert any("no network isolation (not root)" in line for line in lines), lines
    assert any("no processes limit" in line and "no memory limit" in line for line in lines)
    assert all(line.startswith(" ! ") for line in lines), "one line each, marked"
    monkeypatch.setattr(network, "unavailable", lambda: None)
    monkeypatch.setattr(containment, "best_kind", lambda: "cgroup-v1")
    monkeypatch.setattr(
        containment.Containment,
        "create",
        classmethod(
            lambda cls, name, kind=None, **_: cls(name, "cgroup-v1", (), containment.LIMITS)
        ),
    )
    monkeypatch.setattr(containment.Containment, "remove", lambda self: [])
    quiet = io.StringIO()
    assert safeguards.say_what_is_missing(True, options, quiet) is True
    assert [
        line for line in quiet.getvalue().splitlines() if "network" in line or "limit" in line
    ] == []


@pytest.mark.parametrize(
    ("one", "other", "together"),
    [
        ("alice", "bob", True),
        ("alice", "alice", False),  # one learner: the same names
        ("alice", "alice-bob", False),  # alice's prefix begins alice-bob's names
        ("alice-bob", "alice", False),
        ("alice", "alicebob", True),  # alice- does not begin alicebob-
        ("ann-06", "ann-0", True),
    ],
)
def test_learners_whose_names_can_collide_are_never_graded_at_once(
    one: str, other: str, together: bool
) -> None:
    from helpers._grading.safeguards import overlap

    assert overlap(one, other) is not together
