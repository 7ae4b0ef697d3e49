"""The engine guard's policy and HTTP parsing, without an engine: every hostile input refused
with its reason, and the course's own calls (as docker-py and the docker CLI send them) let
through with the body the engine must get.

Each case says what it tries. ``refused`` cases assert the status and a piece of the message
(the message is what a student reads, so it names what was refused)."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import docker
import pytest

from helpers._grading.engine_guard import (
    EngineGuard,
    UnsupportedEngine,
    published_ports,
    upstream_from_environment,
)
from helpers._grading.engine_http import (
    Malformed,
    Reader,
    read_body,
    read_request_head,
    request_framing,
)
from helpers._grading.engine_policy import LABEL, Policy
from helpers._grading.engine_routes import Forward
from helpers._grading.engine_schema import Refused

ME, OTHER = "gd-me", "gd-other"
MINE_ID, OTHERS_ID = "a" * 64, "b" * 64
CONTAINERS = {
    "gd-me-01-web": {"Id": MINE_ID, "Config": {"Labels": {LABEL: ME}}},
    "gd-other-01-web": {"Id": OTHERS_ID, "Config": {"Labels": {LABEL: OTHER}}},
    "unlabelled": {"Id": "c" * 64, "Config": {"Labels": None}},
}
IMAGES = {
    "course/web:v1": {"Id": "sha256:1", "Config": {"Labels": None}},
    "gd-me-01-img:v1": {"Id": "sha256:2", "Config": {"Labels": {LABEL: ME}}},
    "gd-other-01-img:v1": {"Id": "sha256:3", "Config": {"Labels": {LABEL: OTHER}}},
}
EXECS = {
    "mine": {"ID": "e" * 64, "ContainerID": MINE_ID},
    "theirs": {"ID": "f" * 64, "ContainerID": OTHERS_ID},
}


def lookup(path: str) -> dict[str, Any] | None:
    """The fake engine's inspect: containers by name or id, images by name, execs by id."""
    kind, _, rest = path.strip("/").partition("/")
    name = rest.removesuffix("/json")
    if kind == "containers":
        by_id = {c["Id"]: c for c in CONTAINERS.values()}
        return CONTAINERS.get(name) or by_id.get(name)
    if kind == "images":
        return IMAGES.get(name)
    return EXECS.get(name)


POLICY = Policy(ME, memory_limit=512 << 20, pids_limit=256)


def check(method: str, target: str, body: Any = b"") -> Forward:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return POLICY.check(method, target, raw, lookup)


def create(spec: Any, name: str = "gd-me-01-web") -> Forward:
    return check("POST", f"/v1.41/containers/create?name={name}", spec)


def base(**fields: Any) -> dict[str, Any]:
    """A container the course would create, plus ``fields``."""
    return {"Image": "course/web:v1", "Labels": {LABEL: ME}, **fields}


def host(**fields: Any) -> dict[str, Any]:
    return base(HostConfig=fields)


def sent(forward: Forward) -> Any:
    return json.loads(forward.body)


# --- container create: what reaches the host --------------------------------------------------

CREATE_REFUSED = [
    # (what it tries, body, a piece of the refusal)
    ("privileged", host(Privileged=True), "HostConfig.Privileged"),
    (
        "privileged, key in lower case",
        base(hostconfig={"privileged": True}),
        "HostConfig.Privileged",
    ),
    (
        "privileged, key in upper case",
        base(HOSTCONFIG={"PRIVILEGED": True}),
        "HostConfig.Privileged",
    ),
    ("privileged as a string", host(Privileged="true"), "HostConfig.Privileged"),
    ("privileged as 1", host(Privileged=1), "HostConfig.Privileged"),
    ("bind of / (Binds)", host(Binds=["/:/host"]), "HostConfig.Binds"),
    ("bind, key in odd case", base(HostConfig={"bInDs": ["/:/host"]}), "HostConfig.Binds"),
    ("bind mount", host(Mounts=[{"Type": "bind", "Source": "/", "Target": "/h"}]), "Mounts"),
    ("volume mount", host(Mounts=[{"Type": "volume", "Source": "v", "Target": "/v"}]), "Mounts"),
    ("tmpfs mount", host(Mounts=[{"Type": "tmpfs", "Target": "/t"}]), "Mounts"),
    ("Mounts as an object, not a list", host(Mounts={"Type": "bind"}), "Mounts"),
    ("Mounts as a string", host(Mounts="/:/host"), "Mounts"),
    ("Mounts with a null item", host(Mounts=[None]), "Mounts"),
    ("VolumesFrom another container", host(VolumesFrom=["gd-other-01-web"]), "VolumesFrom"),
    ("a volume driver", host(VolumeDriver="local"), "VolumeDriver"),
    ("tmpfs", host(Tmpfs={"/run": ""}), "Tmpfs"),
    ("anonymous volume", base(Volumes={"/data": {}}), "Volumes"),
    ("added capability", host(CapAdd=["SYS_ADMIN"]), "CapAdd"),
    ("device", host(Devices=[{"PathOnHost": "/dev/sda"}]), "Devices"),
    ("device cgroup rule", host(DeviceCgroupRules=["b 8:* rwm"]), "DeviceCgroupRules"),
    ("device request (GPUs)", host(DeviceRequests=[{"Count": -1}]), "DeviceRequests"),
    ("seccomp off", host(SecurityOpt=["seccomp=unconfined"]), "SecurityOpt"),
    ("apparmor off", host(SecurityOpt=["apparmor=unconfined"]), "SecurityOpt"),
    ("sysctl", host(Sysctls={"kernel.shmmax": "1"}), "Sysctls"),
    ("unmask /proc (MaskedPaths [])", host(MaskedPaths=[]), "MaskedPaths"),
    ("writable /proc/sys (ReadonlyPaths [])", host(ReadonlyPaths=[]), "ReadonlyPaths"),
    ("a cgroup parent of the host's", host(CgroupParent="/system.slice"), "CgroupParent"),
    ("another runtime", host(Runtime="io.containerd.runsc.v1"), "Runtime"),
    ("host network", host(NetworkMode="host"), "NetworkMode"),
    ("another container's network", host(NetworkMode="container:gd-other-01-web"), "NetworkMode"),
    ("host network, value in capitals", host(NetworkMode="HOST"), "NetworkMode"),
    ("a user-defined network", host(NetworkMode="kind"), "NetworkMode"),
    ("host PID namespace", host(PidMode="host"), "PidMode"),
    ("another container's PIDs", host(PidMode="container:x"), "PidMode"),
    ("host IPC", host(IpcMode="host"), "IpcMode"),
    ("host UTS", host(UTSMode="host"), "UTSMode"),
    ("host user namespace", host(UsernsMode="host"), "UsernsMode"),
    ("host cgroup namespace", host(CgroupnsMode="host"), "CgroupnsMode"),
    ("another container's cgroup", host(Cgroup="container:x"), "Cgroup"),
    ("extra hosts (host-gateway)", host(ExtraHosts=["h:host-gateway"]), "ExtraHosts"),
    ("links", host(Links=["gd-other-01-web:x"]), "Links"),
    ("unkillable", host(OomKillDisable=True), "OomKillDisable"),
    ("OOM immune", host(OomScoreAdj=-1000), "OomScoreAdj"),
    ("real-time CPU", host(CpuRealtimeRuntime=950000), "CpuRealtimeRuntime"),
    ("ulimits", host(Ulimits=[{"Name": "nofile", "Soft": 1, "Hard": 1}]), "Ulimits"),
    ("a restart policy that outlives grading", host(RestartPolicy={"Name": "always"}), "Name"),
    ("log driver that sends elsewhere", host(LogConfig={"Type": "syslog"}), "LogConfig.Type"),
    ("privileged port 22 on the host", host(PortBindings={"22/tcp": [{"HostPort": "22"}]}), "1024"),
    ("host port 80", host(PortBindings={"80/tcp": [{"HostPort": "80"}]}), "HostPort"),
    ("host port as a number", host(PortBindings={"80/tcp": [{"HostPort": 8080}]}), "HostPort"),
    ("host port range", host(PortBindings={"80/tcp": [{"HostPort": "8000-8100"}]}), "HostPort"),
    (
        "publish on a public address",
        host(PortBindings={"80/tcp": [{"HostIp": "10.1.2.3"}]}),
        "HostIp",
    ),
    ("not a port key", host(PortBindings={"eighty": []}), "port"),
    (
        "a network endpoint on host",
        base(NetworkingConfig={"EndpointsConfig": {"host": {}}}),
        "EndpointsConfig",
    ),
    (
        "an endpoint with an address",
        base(NetworkingConfig={"EndpointsConfig": {"default": {"IPAddress": "1.2.3.4"}}}),
        "IPAddress",
    ),
    # Docker reads HostConfig's fields at the top level when HostConfig is absent.
    ("Privileged at the top level", base(Privileged=True), "not a field the guard allows"),
    ("Binds at the top level", base(Binds=["/:/host"]), "not a field the guard allows"),
    ("Runtime at the top level (docker-py's place)", base(Runtime="runsc"), "not a field"),
    ("deprecated Cpuset at the top level", base(Cpuset="0"), "not a field"),
    ("an unknown field in HostConfig", host(Annotations={"a": "b"}), "not a field"),
    ("an unknown field at the top", base(Whatever=1), "not a field"),
    (
        "ſ (long s) folds onto s in Go: Hoſtconfig",
        base(**{"Ho\u017ftconfig": {"Privileged": True}}),
        "ASCII",
    ),
    ("K (Kelvin sign) folds onto k: MasKedPaths", host(**{"Mas\u212aedPaths": []}), "ASCII"),
    ("non-ASCII key at the top: Labelſ", {"Image": "x", "Label\u017f": {LABEL: ME}}, "ASCII"),
    ("memory as a string", host(Memory="1000000000000"), "HostConfig.Memory"),
    ("memory as a float", host(Memory=1e9), "HostConfig.Memory"),
    ("memory above the cap", host(Memory=2 << 30), "at most"),
    ("unlimited swap", host(Memory=64 << 20, MemorySwap=-1), "swap"),
    ("pids above the cap", host(PidsLimit=100000), "PidsLimit"),
    ("pids as a string", host(PidsLimit="10"), "PidsLimit"),
    ("a number past int64", host(CpuQuota=2**64), "CpuQuota"),
    ("no course.learner label", {"Image": "course/web:v1"}, "course.learner"),
    ("another student's label", base(Labels={LABEL: OTHER}), "course.learner"),
    ("the label set to null", base(Labels={LABEL: None}), "course.learner"),
    ("no image", {"Labels": {LABEL: ME}}, "Image"),
    ("HostConfig as a list", base(HostConfig=[]), "HostConfig"),
    ("the body a list", [base()], "JSON object"),
    ("MacAddress spoofing", base(MacAddress="02:42:ac:11:00:02"), "MacAddress"),
]


@pytest.mark.parametrize(
    ("what", "spec", "reason"), CREATE_REFUSED, ids=[c[0] for c in CREATE_REFUSED]
)
def test_a_create_that_reaches_the_host_or_escapes_the_caps_is_refused(
    what: str, spec: Any, reason: str
) -> None:
    with pytest.raises(Refused) as refused:
        create(spec)
    assert refused.value.status == 403
    assert reason in str(refused.value), (what, str(refused.value))


MALFORMED_BODIES = [
    (
        "duplicate key, Go takes the last",
        b'{"Image":"x","Labels":{"course.learner":"gd-me"},"HostConfig":{},"HostConfig":{"Privileged":true}}',
        "twice",
    ),
    (
        "duplicate key in another case",
        b'{"Image":"x","HostConfig":{"Privileged":false,"privileged":true}}',
        "twice",
    ),
    (
        "duplicate label, last one another student's",
        b'{"Image":"x","Labels":{"course.learner":"gd-me","course.learner":"gd-other"}}',
        "twice",
    ),
    (
        "duplicate key, long s folds onto s",
        b'{"Image":"x","HostConfig":{},"Ho\xc5\xbftConfig":{}}',
        "twice",
    ),
    ("NaN", b'{"Image":"x","HostConfig":{"Memory":NaN}}', "NaN"),
    ("Infinity", b'{"Image":"x","HostConfig":{"Memory":Infinity}}', "Infinity"),
    ("not UTF-8", b'{"Image":"\xff"}', "UTF-8"),
    (
        "trailing JSON (Go reads the first value only)",
        b'{"Image":"x"}{"HostConfig":{"Privileged":true}}',
        "not JSON",
    ),
    ("nested too deep", b"[" * 100000 + b"]" * 100000, "JSON"),
    ("not JSON at all", b"Image=x&Privileged=1", "not JSON"),
]


@pytest.mark.parametrize(
    ("what", "body", "reason"), MALFORMED_BODIES, ids=[c[0] for c in MALFORMED_BODIES]
)
def test_a_body_two_parsers_could_read_differently_is_refused(
    what: str, body: bytes, reason: str
) -> None:
    with pytest.raises(Malformed) as refused:
        create(body)
    assert refused.value.status in (400, 413)
    assert reason in str(refused.value), (what, str(refused.value))


def test_a_json_body_above_a_mebibyte_is_refused() -> None:
    body = json.dumps(base(Env=["X=" + "y" * (1 << 20)])).encode()
    with pytest.raises(Malformed) as refused:
        create(body)
    assert refused.value.status == 413


# --- the course's own calls go through, as the engine must get them ----------------------------


class Sent(Exception):
    """Stops docker-py once it has built a request body."""


def docker_py_create(**kwargs: Any) -> dict[str, Any]:
    """The body docker-py sends for containers.create(**kwargs): its own code builds it."""
    client = docker.DockerClient(base_url="unix:///nowhere", version="1.41")
    captured: dict[str, Any] = {}

    def post_json(url: str, data: dict[str, Any], **options: Any) -> None:
        captured.update(data)
        raise Sent

    client.api._post_json = post_json  # type: ignore[method-assign]
    with pytest.raises(Sent):
        client.containers.create("course/web:v1", **kwargs)
    return {k: v for k, v in captured.items() if v is not None}  # as its _post_json does


def test_the_courses_run_goes_through_with_its_values_and_the_caps_added() -> None:
    spec = docker_py_create(
        name="gd-me-01-web",
        detach=True,
        command=["sh", "-c", "sleep 1"],
        environment={"A": "1"},
        labels={LABEL: ME, "course.chapter": "01-containers"},
        ports={"80/tcp": ("127.0.0.1", None), "81/tcp": ("127.0.0.1", 8081)},
        nano_cpus=500_000_000,
        mem_limit="64m",
    )
    forward = create(spec)
    assert forward.target == "/v1.41/containers/create?name=gd-me-01-web"
    assert forward.content_type == "application/json"
    body = sent(forward)
    assert body["Env"] == ["A=1"] and body["Cmd"] == ["sh", "-c", "sleep 1"]
    assert body["Labels"] == {LABEL: ME, "course.chapter": "01-containers"}
    assert body["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "127.0.0.1"}],
        "81/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8081"}],
    }
    assert body["HostConfig"]["NanoCpus"] == 500_000_000
    assert body["HostConfig"]["Memory"] == 64 << 20, "a lower memory limit is kept"
    assert body["HostConfig"]["PidsLimit"] == 256, "the pids cap is set"


def test_the_docker_clis_create_with_all_its_zero_values_goes_through() -> None:
    # What `docker run -d --name gd-me-01-web -p 127.0.0.1:8080:80 -e A=1 -l course.learner=gd-me
    # --cpus 0.5 -m 64m course/web:v1 sh -c true` sends (CLI 28.2, API 1.41), recorded.
    cli = Path(__file__).with_name("engine_guard_cli_create.json").read_bytes()
    body = sent(create(cli))
    host_config = body["HostConfig"]
    assert host_config["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
    assert (host_config["Memory"], host_config["PidsLimit"]) == (64 << 20, 256)
    assert "NetworkingConfig" not in body, "only the default network: left to the engine"
    for zero in ("Binds", "CapAdd", "Devices", "MaskedPaths", "Privileged", "Ulimits"):
        assert zero not in host_config, zero


@pytest.mark.parametrize(
    ("given", "memory", "pids"),
    [
        ({}, 512 << 20, 256),
        ({"Memory": 0, "PidsLimit": 0}, 512 << 20, 256),
        ({"PidsLimit": -1}, 512 << 20, 256),
        ({"PidsLimit": None, "Memory": None}, 512 << 20, 256),
        ({"Memory": 100 << 20, "PidsLimit": 10}, 100 << 20, 10),
        ({"Memory": 512 << 20, "PidsLimit": 256}, 512 << 20, 256),
    ],
)
def test_the_caps_are_set_where_absent_or_unlimited(
    given: dict[str, Any], memory: int, pids: int
) -> None:
    host_config = sent(create(base(HostConfig=given)))["HostConfig"]
    assert (host_config["Memory"], host_config["PidsLimit"]) == (memory, pids)


def test_caps_are_set_when_hostconfig_is_absent_or_null() -> None:
    for spec in (base(), base(HostConfig=None)):
        assert sent(create(spec))["HostConfig"] == {"Memory": 512 << 20, "PidsLimit": 256}


def test_case_variant_keys_are_forwarded_under_dockers_own_names() -> None:
    body = sent(
        create({"image": "course/web:v1", "LABELS": {LABEL: ME}, "hostconfig": {"memory": 1 << 20}})
    )
    assert body == {
        "Image": "course/web:v1",
        "Labels": {LABEL: ME},
        "HostConfig": {"Memory": 1 << 20, "PidsLimit": 256},
    }


@pytest.mark.parametrize(
    ("what", "name", "reason"),
    [
        ("no name (the engine would pick one)", None, "name"),
        ("another student's name", "gd-other-01-web", "start with gd-me-"),
        ("a name that only contains the prefix", "x-gd-me-01", "start with gd-me-"),
        ("a name with a slash inside", "gd-me-01%2F..", "letters, digits"),
        ("the name given twice", "gd-me-01-a&name=gd-other-01-b", "twice"),
    ],
)
def test_a_container_name_without_the_prefix_is_refused(
    what: str, name: str | None, reason: str
) -> None:
    target = "/v1.41/containers/create" + (f"?name={name}" if name is not None else "")
    with pytest.raises((Refused, Malformed)) as refused:
        check("POST", target, base())
    assert reason in str(refused.value), (what, str(refused.value))


def test_a_leading_slash_in_the_name_is_dropped_as_docker_does() -> None:
    assert create(base(), name="/gd-me-01-web").target.endswith("?name=gd-me-01-web")


# --- actions on containers, execs and images -----------------------------------------------------

OTHERS = "gd-other-01-web"
ACTIONS_REFUSED = [
    ("stop another's container", "POST", f"/v1.41/containers/{OTHERS}/stop", 403, "not yours"),
    ("kill another's", "POST", f"/containers/{OTHERS}/kill?signal=KILL", 403, "not yours"),
    ("remove another's", "DELETE", f"/v1.41/containers/{OTHERS}?force=1", 403, "not yours"),
    ("another's by its id", "DELETE", f"/v1.41/containers/{OTHERS_ID}", 403, "not yours"),
    ("logs of another's", "GET", f"/v1.41/containers/{OTHERS}/logs?stdout=1", 403, "not yours"),
    (
        "attach to another's",
        "POST",
        f"/v1.41/containers/{OTHERS}/attach?stream=1",
        403,
        "not yours",
    ),
    ("exec in another's", "POST", f"/v1.41/containers/{OTHERS}/exec", 403, "not yours"),
    (
        "copy out of another's",
        "GET",
        f"/v1.41/containers/{OTHERS}/archive?path=/",
        403,
        "not yours",
    ),
    ("an unlabelled container", "POST", "/v1.41/containers/unlabelled/start", 403, "not yours"),
    (
        "rename another's",
        "POST",
        f"/v1.41/containers/{OTHERS}/rename?name=gd-me-01-x",
        403,
        "not yours",
    ),
    (
        "rename mine onto another's name",
        "POST",
        "/v1.41/containers/gd-me-01-web/rename?name=gd-other-01-web",
        403,
        "start with gd-me-",
    ),
    ("rename mine to no name", "POST", "/v1.41/containers/gd-me-01-web/rename", 403, "name"),
    ("start another's exec", "POST", "/v1.41/exec/theirs/start", 403, "not yours"),
    ("inspect another's exec", "GET", "/v1.41/exec/theirs/json", 403, "not yours"),
    (
        "a missing container: 404, as the engine says",
        "POST",
        "/v1.41/containers/nope/start",
        404,
        "No such container",
    ),
    (
        "start with a checkpoint directory (a host path)",
        "POST",
        "/v1.41/containers/gd-me-01-web/start?checkpoint-dir=/etc",
        403,
        "checkpoint",
    ),
    (
        "start through API 1.23, which took a HostConfig body",
        "POST",
        "/v1.23/containers/gd-me-01-web/start",
        403,
        "v1.24",
    ),
    (
        "remove a link into another container",
        "DELETE",
        "/v1.41/containers/gd-me-01-web?link=1",
        403,
        "link",
    ),
    (
        "ps with arbitrary arguments (ps runs on the host)",
        "GET",
        "/v1.41/containers/gd-me-01-web/top?ps_args=-o%20pid,cmd%20e",
        403,
        "ps runs on the host",
    ),
    (
        "update the resources of mine (past the caps)",
        "POST",
        "/v1.41/containers/gd-me-01-web/update",
        403,
        "not part",
    ),
    ("export a container", "GET", "/v1.41/containers/gd-me-01-web/export", 403, "not part"),
    (
        "copy into a container",
        "PUT",
        "/v1.41/containers/gd-me-01-web/archive?path=/",
        403,
        "method",
    ),
    (
        "attach over a websocket",
        "GET",
        "/v1.41/containers/gd-me-01-web/attach/ws",
        403,
        "not part of what the course does",
    ),
    (
        "a query parameter in another case",
        "POST",
        "/v1.41/containers/gd-me-01-web/stop?T=1",
        403,
        "'T'",
    ),
    (
        "tag course/web:v1 over with mine",
        "POST",
        "/v1.41/images/gd-me-01-img:v1/tag?repo=course/web&tag=v1",
        403,
        "start with gd-me-",
    ),
    (
        "tag onto another student's name",
        "POST",
        "/v1.41/images/gd-me-01-img:v1/tag?repo=gd-other-01-img&tag=v1",
        403,
        "start with gd-me-",
    ),
    (
        "tag with a registry in front",
        "POST",
        "/v1.41/images/gd-me-01-img:v1/tag?repo=localhost:5000/gd-me-x",
        403,
        "repository",
    ),
    (
        "tag the course's image under my name",
        "POST",
        "/v1.41/images/course/web:v1/tag?repo=gd-me-01-web&tag=v1",
        403,
        "not yours",
    ),
    (
        "remove the course's image",
        "DELETE",
        "/v1.41/images/course/web:v1?force=1",
        403,
        "not yours",
    ),
    ("remove another's image", "DELETE", "/v1.41/images/gd-other-01-img:v1", 403, "not yours"),
    ("create an exec with no container", "POST", "/v1.41/exec/create", 403, "not part"),
]


@pytest.mark.parametrize(
    ("what", "method", "target", "status", "reason"),
    ACTIONS_REFUSED,
    ids=[c[0] for c in ACTIONS_REFUSED],
)
def test_an_action_on_what_is_not_the_students_is_refused(
    what: str, method: str, target: str, status: int, reason: str
) -> None:
    with pytest.raises(Refused) as refused:
        check(method, target)
    assert refused.value.status == status
    assert reason in str(refused.value), (what, str(refused.value))


def test_exec_create_privileged_is_refused_in_any_spelling() -> None:
    for body in (
        {"Cmd": ["sh"], "Privileged": True},
        {"Cmd": ["sh"], "privileged": True},
        {"cmd": ["sh"], "PRIVILEGED": "yes"},
    ):
        with pytest.raises(Refused, match="Privileged"):
            check("POST", "/v1.41/containers/gd-me-01-web/exec", body)


def test_actions_on_the_students_own_act_on_the_id_that_was_checked() -> None:
    # The name is looked up once; the engine gets the full id, so a rename in between cannot
    # point the action at another container.
    assert (
        check("POST", "/v1.41/containers/gd-me-01-web/stop?t=1").target
        == f"/v1.41/containers/{MINE_ID}/stop?t=1"
    )
    start = check("POST", "/v1.41/containers/gd-me-01-web/start")
    assert (start.target, start.started) == (f"/v1.41/containers/{MINE_ID}/start", MINE_ID)
    exec_start = check("POST", "/v1.41/exec/mine/start", {"Detach": False, "Tty": False})
    assert exec_start.target == f"/v1.41/exec/{'e' * 64}/start" and exec_start.hijack
    assert sent(exec_start) == {"Detach": False, "Tty": False}
    made = check(
        "POST",
        "/v1.41/containers/gd-me-01-web/exec",
        {"Container": "x", "Cmd": ["hostname"], "AttachStdout": True, "Privileged": False},
    )
    assert sent(made) == {"Cmd": ["hostname"], "AttachStdout": True}
    renamed = check("POST", "/v1.41/containers/gd-me-01-web/rename?name=gd-me-01-new")
    assert renamed.target == f"/v1.41/containers/{MINE_ID}/rename?name=gd-me-01-new"
    assert check(
        "POST", "/v1.41/images/gd-me-01-img:v1/tag?repo=docker.io/library/gd-me-01-img&tag=v2"
    ).target == ("/v1.41/images/gd-me-01-img:v1/tag?repo=gd-me-01-img&tag=v2")
    assert check("DELETE", "/v1.41/images/gd-me-01-img:v1").method == "DELETE"
    assert (
        check("GET", "/v1.41/images/course/web:v1/json").target
        == "/v1.41/images/course/web:v1/json"
    )


def test_listings_and_events_are_narrowed_to_the_students_label_whatever_the_client_asks() -> None:
    for target in (
        "/v1.41/containers/json?all=1",
        '/v1.41/containers/json?filters={"label":["x=y"]}',
        '/v1.41/containers/json?filters={"label":{"course.learner=gd-other":true}}',
        "/v1.41/events?since=1&until=2",
    ):
        forwarded = check("GET", target.replace('"', "%22").replace("{", "%7B").replace("}", "%7D"))
        query = dict(__import__("urllib.parse").parse.parse_qsl(forwarded.target.split("?")[1]))
        assert f"{LABEL}={ME}" in json.loads(query["filters"])["label"], target


# --- builds --------------------------------------------------------------------------------------

MINE_BUILD = "t=gd-me-01-img:v1&labels=%7B%22course.learner%22:%22gd-me%22%7D"
BUILDS_REFUSED = [
    ("no tag", "labels=%7B%22course.learner%22:%22gd-me%22%7D", "needs a tag"),
    (
        "another student's tag",
        "t=gd-other-01-img:v1&labels=%7B%22course.learner%22:%22gd-me%22%7D",
        "start with gd-me-",
    ),
    ("overwrite course/web:v1", f"{MINE_BUILD}&t=course/web:v1", "start with gd-me-"),
    ("no label", "t=gd-me-01-img:v1", "course.learner"),
    (
        "another student's label",
        "t=gd-me-01-img:v1&labels=%7B%22course.learner%22:%22gd-other%22%7D",
        "course.learner",
    ),
    (
        "label given twice (Go keeps the last)",
        't=gd-me-01-img:v1&labels={"course.learner":"gd-me","course.learner":"gd-other"}',
        "twice",
    ),
    ("host network", f"{MINE_BUILD}&networkmode=host", "networkmode"),
    (
        "another container's network",
        f"{MINE_BUILD}&networkmode=container:gd-other-01-web",
        "networkmode",
    ),
    ("a remote context", f"{MINE_BUILD}&remote=https://example.com/x.git", "remote"),
    ("a cgroup parent", f"{MINE_BUILD}&cgroupparent=/", "cgroup"),
    ("extra hosts", f"{MINE_BUILD}&extrahosts=h:host-gateway", "extrahosts"),
    ("BuildKit", f"{MINE_BUILD}&version=2", "BuildKit"),
    ("a BuildKit session", f"{MINE_BUILD}&session=abc", "session"),
    ("outputs to the host", f"{MINE_BUILD}&outputs=type=local,dest=/", "outputs"),
    ("isolation", f"{MINE_BUILD}&isolation=hyperv", "isolation"),
    ("ulimits", f"{MINE_BUILD}&ulimits=[]", "ulimits"),
    ("a pull from a registry", f"{MINE_BUILD}&pull=1", "pull"),
    ("memory above the cap", f"{MINE_BUILD}&memory=4294967296", "at most"),
    ("unlimited swap", f"{MINE_BUILD}&memswap=-1", "swap"),
    ("a Dockerfile outside the context", f"{MINE_BUILD}&dockerfile=../../etc/passwd", "dockerfile"),
    (
        "an uppercase (invalid) tag",
        "t=gd-me-01-IMG&labels=%7B%22course.learner%22:%22gd-me%22%7D",
        "image name",
    ),
]


@pytest.mark.parametrize(
    ("what", "query", "reason"), BUILDS_REFUSED, ids=[c[0] for c in BUILDS_REFUSED]
)
def test_a_build_that_squats_or_reaches_the_host_is_refused(
    what: str, query: str, reason: str
) -> None:
    with pytest.raises((Refused, Malformed)) as refused:
        check("POST", f"/v1.41/build?{query}", b"tar")
    assert reason in str(refused.value), (what, str(refused.value))


def test_the_courses_build_goes_through_with_the_label_and_the_memory_cap() -> None:
    # What helpers.docker.build sends through docker-py.
    query = (
        "t=gd-me-01-img%3Av1&q=False&nocache=False&rm=True&forcerm=True&pull=False"
        "&labels=%7B%22course.learner%22%3A+%22gd-me%22%2C+%22course.chapter%22%3A+%2201%22%7D"
    )
    forward = check("POST", f"/v1.41/build?{query}", b"a tar")
    assert forward.body == b"a tar" and forward.content_type == "application/x-tar"
    sent_query = dict(__import__("urllib.parse").parse.parse_qsl(forward.target.split("?")[1]))
    assert json.loads(sent_query["labels"]) == {LABEL: ME, "course.chapter": "01"}
    assert sent_query["memory"] == str(512 << 20) and sent_query["pull"] == "0"
    assert sent_query["t"] == "gd-me-01-img:v1"


# --- calls the course never makes ----------------------------------------------------------------

NEVER = [
    ("GET", "/v1.41/volumes"),
    ("POST", "/v1.41/volumes/create"),
    ("GET", "/v1.41/networks"),
    ("POST", "/v1.41/networks/create"),
    ("POST", "/v1.41/containers/prune"),
    ("POST", "/v1.41/images/prune"),
    ("GET", "/v1.41/system/df"),
    ("POST", "/v1.41/commit?container=gd-me-01-web"),
    ("POST", "/v1.41/images/create?fromImage=alpine"),
    ("POST", "/v1.41/images/load"),
    ("GET", "/v1.41/images/get?names=course/web:v1"),
    ("POST", "/v1.41/images/course/web:v1/push"),
    ("POST", "/v1.41/auth"),
    ("POST", "/v1.41/session"),
    ("POST", "/grpc"),
    ("GET", "/v1.41/swarm"),
    ("GET", "/v1.41/plugins"),
    ("GET", "/v1.41/distribution/alpine/json"),
    ("POST", "/v1.41/containers/gd-me-01-web/checkpoints"),
]


@pytest.mark.parametrize(("method", "target"), NEVER, ids=[f"{m} {t}" for m, t in NEVER])
def test_calls_the_course_never_makes_are_refused(method: str, target: str) -> None:
    with pytest.raises(Refused) as refused:
        check(method, target)
    assert refused.value.status == 403 and "allowed" in str(refused.value)


# --- paths and targets ---------------------------------------------------------------------------

PATHS = [
    ("a dot-dot segment", "/v1.41/containers/gd-me-01-web/../../images/prune", ". or .."),
    ("an encoded dot-dot", "/v1.41/containers/%2e%2e/json", ". or .."),
    ("an encoded slash", "/v1.41/containers/gd-other-01-web%2Fstop", "encoded slash"),
    ("an encoded slash, lower case", "/v1.41/containers/x%2fstop", "encoded slash"),
    ("an encoded NUL", "/v1.41/containers/x%00/json", "NUL"),
    ("an empty segment", "/v1.41//containers/json", "empty segment"),
    ("a trailing slash", "/v1.41/containers/json/", "empty segment"),
    ("a bad percent-escape", "/v1.41/containers/%zz/json", "percent"),
    ("a fragment", "/v1.41/containers/json#x", "fragment"),
    ("non-UTF-8 escapes", "/v1.41/containers/%ff/json", "UTF-8"),
    ("a backslash", "/v1.41/containers/a\\b/json", "characters"),
]


@pytest.mark.parametrize(("what", "target", "reason"), PATHS, ids=[c[0] for c in PATHS])
def test_a_path_two_routers_could_read_differently_is_refused(
    what: str, target: str, reason: str
) -> None:
    with pytest.raises(Malformed) as refused:
        check("GET", target)
    assert refused.value.status == 400 and reason in str(refused.value), (what, str(refused.value))


# --- the wire: request heads and bodies ----------------------------------------------------------


def read(raw: bytes, limit: int = 1 << 20) -> tuple[str, bytes]:
    chunks = [raw[i : i + 7] for i in range(0, len(raw), 7)]  # in pieces, as a socket gives them
    reader = Reader(lambda size: chunks.pop(0) if chunks else b"")
    head = read_request_head(reader)
    assert head is not None
    return head.start[1], read_body(reader, request_framing(head), limit, "the body")


WIRE = [
    (
        "Content-Length with Transfer-Encoding",
        b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        "both",
    ),
    (
        "two Content-Lengths",
        b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        400,
        "several Content-Length",
    ),
    (
        "a Content-Length list",
        b"POST /x HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc",
        400,
        "plain number",
    ),
    (
        "a signed Content-Length",
        b"POST /x HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
        400,
        "plain number",
    ),
    (
        "a negative Content-Length",
        b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        400,
        "plain number",
    ),
    (
        "Transfer-Encoding gzip",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
        "only chunked",
    ),
    (
        "Transfer-Encoding chunked, identity",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        501,
        "only chunked",
    ),
    (
        "two Transfer-Encodings",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        "several",
    ),
    (
        "Transfer-Encoding with a space before the colon",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
        400,
        "malformed header",
    ),
    (
        "obsolete line folding",
        b"GET /x HTTP/1.1\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n",
        400,
        "folded",
    ),
    ("a bare LF", b"GET /x HTTP/1.1\nHost: d\r\n\r\n", 400, "CRLF"),
    (
        "a bare CR in a header",
        b"GET /x HTTP/1.1\r\nX-A: 1\rTransfer-Encoding: chunked\r\n\r\n",
        400,
        "CRLF",
    ),
    ("a NUL in a header", b"GET /x HTTP/1.1\r\nX-A: 1\x00\r\n\r\n", 400, "control"),
    (
        "absolute-form target",
        b"GET http://docker/v1.41/containers/json HTTP/1.1\r\n\r\n",
        400,
        "origin-form",
    ),
    ("authority-form target", b"CONNECT docker:2375 HTTP/1.1\r\n\r\n", 405, "method"),
    ("asterisk target", b"OPTIONS * HTTP/1.1\r\n\r\n", 405, "method"),
    ("a target with a space", b"GET /a b HTTP/1.1\r\n\r\n", 400, "request line"),
    ("HTTP/0.9 style", b"GET /x\r\n\r\n", 400, "request line"),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\n", 505, "HTTP version"),
    ("a line of 9 KiB", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 431, "longer"),
    ("65 headers", b"GET /x HTTP/1.1\r\n" + b"X-A: 1\r\n" * 65 + b"\r\n", 431, "header fields"),
    (
        "a head of 70 KiB",
        b"GET /x HTTP/1.1\r\n"
        + b"X-A: "
        + b"a" * 8000
        + b"\r\n" * 1
        + (b"X-B: " + b"b" * 8000 + b"\r\n") * 8
        + b"\r\n",
        431,
        "head larger",
    ),
    (
        "a body above the limit",
        b"POST /x HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n",
        413,
        "larger",
    ),
    (
        "a chunked body above the limit",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1FFFFF\r\n",
        413,
        "larger",
    ),
    (
        "a chunk size that is not hex",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
        400,
        "chunk size",
    ),
    (
        "a negative chunk size",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n",
        400,
        "chunk size",
    ),
    (
        "a chunk longer than its size",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
        400,
        "CRLF",
    ),
    ("a body cut short", b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 400, "ended"),
]


@pytest.mark.parametrize(("what", "raw", "status", "reason"), WIRE, ids=[c[0] for c in WIRE])
def test_a_request_two_parsers_could_frame_differently_is_refused(
    what: str, raw: bytes, status: int, reason: str
) -> None:
    with pytest.raises(Malformed) as refused:
        read(raw)
    assert (refused.value.status, reason in str(refused.value)) == (status, True), (
        what,
        str(refused.value),
    )


def test_a_chunked_body_is_read_whole_with_extensions_and_trailers_dropped() -> None:
    raw = b"POST /v1.41/build HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n"
    assert read(raw) == ("/v1.41/build", b"abcde")


# --- the wire, end to end against a fake engine that records what it gets -----------------------


class FakeEngine:
    """An HTTP server on a Unix socket (the standard library's parser, not the guard's) that
    answers like Docker for a few paths and records every request it receives."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.got: list[tuple[str, str, dict[str, str], bytes]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def address_string(self) -> str:
                return "fake"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                fake.got.append((self.command, self.path, dict(self.headers), body))
                fake.reply(self)

            do_GET = do_POST = do_HEAD = do_DELETE = _answer

        self.server: socketserver.ThreadingMixIn
        if path is None:  # a plain TCP engine, as DOCKER_HOST=tcp://... names one
            self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
            self.address = f"tcp://127.0.0.1:{self.server.server_address[1]}"
        else:
            self.server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
            self.address = str(path)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def reply(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0]
        if path.endswith("/containers/gd-me-01-web/json") or path.endswith(
            f"/containers/{MINE_ID}/json"
        ):
            self.send(
                handler,
                200,
                {
                    "Id": MINE_ID,
                    "Config": {"Labels": {LABEL: ME}},
                    "NetworkSettings": {
                        "Ports": {
                            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40123"}],
                            "81/tcp": None,
                        }
                    },
                },
            )
        elif path.endswith("/start"):
            handler.send_response(204)
            handler.end_headers()
        elif path.endswith("/events"):
            handler.send_response(200)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for part in (b'{"a":1}\n', b'{"b":2}\n'):
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                handler.wfile.flush()
                time.sleep(0.05)
            handler.wfile.write(b"0\r\n\r\n")
        elif path.endswith("/info"):
            handler.send_response(101)  # an engine that upgrades a call that is not attach/exec
            handler.send_header("Upgrade", "tcp")
            handler.end_headers()
        else:
            self.send(handler, 200 if path.endswith("_ping") else 201, {"Id": "new"})

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, status: int, found: Any) -> None:
        body = json.dumps(found).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[dict[str, Any]]:
    engine = FakeEngine(tmp_path / "engine.sock")
    ports: list[set[int]] = []
    guard = EngineGuard(
        ME, tmp_path / "guard.sock", engine.address, on_ports=ports.append, max_connections=3
    )
    guard.start()
    try:
        yield {"engine": engine, "guard": guard, "ports": ports}
    finally:
        guard.stop()
        engine.stop()


def talk(guard: EngineGuard, raw: bytes, wait: float = 1.0) -> bytes:
    with socket.socket(socket.AF_UNIX) as end:
        end.connect(str(guard.socket_path))
        end.settimeout(wait)
        end.sendall(raw)
        end.shutdown(socket.SHUT_WR)  # no more requests: the guard closes after answering
        got = b""
        try:
            while data := end.recv(65536):
                got += data
        except TimeoutError:
            pass
        return got


PRIVILEGED = json.dumps(host(Privileged=True, Binds=["/:/host"])).encode()


def test_an_upgrade_header_on_ping_does_not_open_a_raw_pipe(wire: dict[str, Any]) -> None:
    # The attack on the old guard: GET /_ping with Upgrade, then a privileged create on the
    # same connection, forwarded unchecked once the guard had switched to raw bytes.
    attack = (
        b"GET /_ping HTTP/1.1\r\nHost: d\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n"
        b"POST /v1.41/containers/create?name=gd-me-01-p HTTP/1.1\r\nHost: d\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(PRIVILEGED), PRIVILEGED)
    )
    answer = talk(wire["guard"], attack)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"403 Forbidden" in answer and b"HostConfig" in answer, answer[-300:]
    got = wire["engine"].got
    assert [(m, p) for m, p, _, _ in got] == [("GET", "/_ping")], "only the ping reached the engine"
    assert "Upgrade" not in got[0][2], "and without its Upgrade header"


def test_an_engine_that_upgrades_a_plain_call_gets_no_raw_pipe(wire: dict[str, Any]) -> None:
    answer = talk(wire["guard"], b"GET /v1.41/info HTTP/1.1\r\nUpgrade: tcp\r\n\r\n")
    assert [p for _, p, _, _ in wire["engine"].got] == ["/v1.41/info"]
    assert answer.startswith(b"HTTP/1.1 502") and b"upgraded" in answer, answer


def test_pipelined_requests_are_each_checked_and_forwarded_as_the_guard_built_them(
    wire: dict[str, Any],
) -> None:
    body = json.dumps(base(hostconfig={"memory": 1 << 20})).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    answer = talk(
        wire["guard"],
        b"GET /_ping HTTP/1.1\r\nX-Registry-Auth: secret\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n"
        b"POST /v1.41/containers/create?name=gd-me-01-a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: text/plain\r\n\r\n" + chunked,
    )
    assert answer.count(b"HTTP/1.1 2") == 2, answer
    (_, _, ping_headers, _), (method, path, headers, sent_body) = wire["engine"].got
    assert "X-Registry-Auth" not in ping_headers and "X-Forwarded-For" not in ping_headers
    assert (method, path) == ("POST", "/v1.41/containers/create?name=gd-me-01-a")
    assert "Transfer-Encoding" not in headers and headers["Content-Length"] == str(len(sent_body))
    assert headers["Content-Type"] == "application/json"
    assert json.loads(sent_body)["HostConfig"] == {"Memory": 1 << 20, "PidsLimit": 256}


def test_a_streamed_answer_is_relayed_as_it_comes(wire: dict[str, Any]) -> None:
    answer = talk(wire["guard"], b"GET /v1.41/events HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in answer
    assert b'{"a":1}' in answer and b'{"b":2}' in answer and answer.endswith(b"0\r\n\r\n")
    assert "course.learner%3Dgd-me" in wire["engine"].got[0][1], "events narrowed"


def test_on_ports_gets_the_published_ports_before_the_client_hears_of_the_start(
    wire: dict[str, Any],
) -> None:
    order: list[str] = []

    def slow_relay(ports: set[int]) -> None:
        time.sleep(0.3)
        order.append(f"ports {sorted(ports)}")

    wire["guard"].on_ports = slow_relay
    answer = talk(
        wire["guard"], b"POST /v1.41/containers/gd-me-01-web/start HTTP/1.1\r\n\r\n", wait=2
    )
    order.append("answer")
    assert answer.startswith(b"HTTP/1.1 204"), answer
    assert order == ["ports [40123]", "answer"]


def test_connections_past_the_bound_are_answered_503(wire: dict[str, Any]) -> None:
    held = [socket.socket(socket.AF_UNIX) for _ in range(3)]
    try:
        for end in held:
            end.connect(str(wire["guard"].socket_path))
        time.sleep(0.2)
        assert talk(wire["guard"], b"GET /_ping HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503")
    finally:
        for end in held:
            end.close()
    time.sleep(0.2)
    assert talk(wire["guard"], b"GET /_ping HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")


def test_idle_connections_are_closed_and_give_their_slots_back(
    wire: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pooled keep-alive connections that send nothing never hold every slot for good."""
    from helpers._grading import engine_guard

    monkeypatch.setattr(engine_guard, "IDLE_SECONDS", 0.3)
    held = [socket.socket(socket.AF_UNIX) for _ in range(3)]
    try:
        for end in held:
            end.connect(str(wire["guard"].socket_path))
            end.settimeout(2)
        time.sleep(0.1)
        assert talk(wire["guard"], b"GET /_ping HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503")
        assert [end.recv(1) for end in held] == [b"", b"", b""], "the guard closes them"
        assert talk(wire["guard"], b"GET /_ping HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")
    finally:
        for end in held:
            end.close()


def test_a_refusal_is_docker_style_json_and_closes_the_connection(wire: dict[str, Any]) -> None:
    answer = talk(wire["guard"], b"GET /v1.41/volumes HTTP/1.1\r\n\r\nGET /_ping HTTP/1.1\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403") and b"Connection: close" in head
    assert json.loads(body)["message"].startswith(
        "refused by the course's engine guard: GET /volumes"
    )
    assert wire["engine"].got == [], "nothing after the refusal was read"


def test_a_refused_build_is_answered_even_while_its_context_is_still_coming(
    wire: dict[str, Any],
) -> None:
    # Refused on its query, before its body is read: the guard reads the rest before closing,
    # so the client (which sends the whole body first) gets the reason, not a reset.
    context = b"x" * (3 << 20)
    answer = talk(
        wire["guard"],
        b"POST /v1.41/build?remote=https://example.com/x.git HTTP/1.1\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(context), context),
        wait=5,
    )
    assert answer.startswith(b"HTTP/1.1 403") and b"remote" in answer, answer[:200]
    assert wire["engine"].got == []


def test_a_failing_on_ports_does_not_lose_the_students_answer(wire: dict[str, Any]) -> None:
    def broken(ports: set[int]) -> None:
        raise RuntimeError("the relay is down")

    wire["guard"].on_ports = broken
    answer = talk(wire["guard"], b"POST /v1.41/containers/gd-me-01-web/start HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 204"), answer


def test_an_engine_that_does_not_answer_is_a_502_that_says_so(tmp_path: Path) -> None:
    guard = EngineGuard(ME, tmp_path / "guard.sock", str(tmp_path / "no-engine.sock")).start()
    try:
        answer = talk(guard, b"GET /_ping HTTP/1.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 502") and b"cannot reach the engine" in answer
    finally:
        guard.stop()


def test_a_plain_tcp_engine_is_fronted_too(tmp_path: Path) -> None:
    engine = FakeEngine()
    guard = EngineGuard(ME, tmp_path / "guard.sock", engine.address).start()
    try:
        answer = talk(guard, b"GET /_ping HTTP/1.1\r\n\r\nGET /v1.41/volumes HTTP/1.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 403" in answer
        assert [(m, p) for m, p, _, _ in engine.got] == [("GET", "/_ping")]
    finally:
        guard.stop()
        engine.stop()


# --- small pure pieces ---------------------------------------------------------------------------


def test_published_ports_are_read_on_any_address() -> None:
    inspected = {
        "NetworkSettings": {
            "Ports": {
                "80/tcp": [
                    {"HostIp": "0.0.0.0", "HostPort": "8080"},
                    {"HostIp": "::", "HostPort": "8080"},
                ],
                "81/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}],
                "82/tcp": None,
            }
        }
    }
    assert published_ports(inspected) == {8080, 9000}
    assert published_ports({"NetworkSettings": {"Ports": None}}) == set()


def test_the_upstream_comes_from_docker_host_and_tls_is_refused_with_a_reason(
    tmp_path: Path,
) -> None:
    sock = tmp_path / "d.sock"
    sock.touch()
    assert upstream_from_environment({"DOCKER_HOST": f"unix://{sock}"}) == str(sock)
    assert upstream_from_environment({"DOCKER_HOST": f"unix://{tmp_path}/none"}) is None
    assert (
        upstream_from_environment({"DOCKER_HOST": "tcp://10.0.0.2:2375"}) == "tcp://10.0.0.2:2375"
    )
    with pytest.raises(UnsupportedEngine, match="DOCKER_TLS_VERIFY"):
        upstream_from_environment({"DOCKER_HOST": "tcp://10.0.0.2:2376", "DOCKER_TLS_VERIFY": "1"})
    with pytest.raises(UnsupportedEngine, match="ssh://"):
        upstream_from_environment({"DOCKER_HOST": "ssh://me@host"})
