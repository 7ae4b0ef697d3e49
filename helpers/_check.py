"""Checks that grade what really happened on the engine and the cluster.

They return nothing (except port_published): nbgrader reads a test cell's last value as partial
credit, so a check used as the last line of a test cell must not produce one.

Each check prints a ✓ line when it passes and raises CheckFailed (an AssertionError) when it does
not: what was expected, what was found, and where to look.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._deadline import Deadline
from ._docker.containers import Container, exec_commands
from ._docker.containers import inspect as inspect_container
from ._docker.images import image as inspect_image
from ._errors import CheckFailed, CourseError
from ._http import fetch
from ._k8s.objects import Object, get
from ._k8s.waiting import wait

_PLAIN_SCALARS = (str, int, float, bool, type(None))


def _passed(text: str) -> None:
    print(f"✓ {text}")


def _describe(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "a whole number",
        float: "a number",
        bool: "True or False",
        list: "a list",
        dict: "a dict",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def plain(value: Any, *, what: str) -> Any:
    """``value`` must be plain data: a string, number, bool, None, or lists and dicts of them
    (exactly those types, so an answer cannot be an object that claims to equal anything)."""
    if type(value) in _PLAIN_SCALARS:
        return value
    if type(value) is list:
        for item in value:
            plain(item, what=what)
        return value
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise CheckFailed(f"{what}: dict keys must be strings, found {type(key).__name__}.")
            plain(item, what=what)
        return value
    raise CheckFailed(
        f"{what}: expected plain data (a string, a number, a list or a dict), found a "
        f"{type(value).__module__}.{type(value).__qualname__}.",
        hint="store the value itself, e.g. .stdout.strip() or int(...), not the object",
    )


def equal(found: Any, expected: Any, *, what: str, look_at: str | None = None) -> None:
    """``found`` (your value, plain data) must equal ``expected``."""
    plain(found, what=what)
    if found != expected or (type(found) is bool) != (type(expected) is bool):
        raise CheckFailed(f"{what}: expected {expected!r}, found {found!r}.", hint=look_at)
    _passed(f"{what}: {found!r}")


def answered(
    value: Any,
    *,
    what: str,
    kind: type | tuple[type, ...] | None = None,
    choices: Sequence[Any] | None = None,
) -> None:
    """You replaced the placeholder with an answer of the right shape: plain data, of ``kind``
    (``str``, ``int``, ...), and one of ``choices`` when the answer must be one of them.
    It does not say whether the answer is right; the graded tests do."""
    if value is None or value is Ellipsis:
        raise CheckFailed(f"{what}: no answer yet.", hint="the cell where the answer is asked for")
    plain(value, what=what)
    if (kind is not None and not isinstance(value, kind)) or (kind is int and type(value) is bool):
        raise CheckFailed(f"{what}: expected {_describe(kind or object)}, found {value!r}.")
    if choices is not None and value not in choices:
        raise CheckFailed(
            f"{what}: expected one of {', '.join(repr(c) for c in choices)}; found {value!r}."
        )
    _passed(f"{what} is answered ({_describe(type(value))})")


# --- Docker ---------------------------------------------------------------------------------


def _container(name: str) -> Container:
    try:
        return inspect_container(name)
    except CourseError as error:
        raise CheckFailed(f"container {name!r}: {error.message}", hint=error.hint) from None


def container_running(name: str, *, image: str | None = None) -> None:
    """Your container ``name`` exists, is running, and (if given) runs ``image``."""
    container = _container(name)
    if not container.running:
        raise CheckFailed(
            f"container {name!r}: expected it to be running, found it {container.status}"
            + (f" (exit code {container.exit_code})" if container.exit_code else "")
            + ".",
            hint=f'docker.logs("{name}") says why it stopped.',
        )
    if image is not None and container.image != image:
        raise CheckFailed(
            f"container {name!r}: expected image {image}, found {container.image}.",
            hint=f'docker.inspect("{name}").image',
        )
    _passed(f"container {name!r} is running ({container.image})")


def container_stopped(name: str) -> None:
    """Your container ``name`` exists and is no longer running (stopped, not removed)."""
    container = _container(name)
    if container.running:
        raise CheckFailed(
            f"container {name!r}: expected it stopped, found it still running.",
            hint=f'docker.stop("{name}")',
        )
    _passed(f"container {name!r} exists and is not running")


def exec_ran(name: str, command: str) -> None:
    """``docker exec`` really ran ``command`` in container ``name`` (as given, or through sh -c)."""
    ran = exec_commands(_container(name).short_name)
    if not any(line.strip() in (command, f"sh -c {command}") for line in ran):
        shown = "; ".join(ran[-5:]) or "no docker exec at all"
        raise CheckFailed(
            f"container {name!r}: expected a docker exec of {command!r}, found: {shown}.",
            hint=f'docker.exec("{name}", "{command}")',
        )
    _passed(f"docker exec ran {command!r} in {name!r}")


def _has_items(
    kind: str, name: str, found: Mapping[str, str], expected: Mapping[str, str], look_at: str
) -> None:
    for key, value in expected.items():
        if key not in found:
            raise CheckFailed(
                f"container {name!r}: expected {kind} {key}={value}, found no {kind} {key!r}.",
                hint=look_at,
            )
        if found[key] != value:
            raise CheckFailed(
                f"container {name!r}: expected {kind} {key}={value}, found {key}={found[key]}.",
                hint=look_at,
            )


def container_labels(name: str, expected: Mapping[str, str]) -> None:
    """The container carries every label in ``expected``."""
    _has_items("label", name, _container(name).labels, expected, f'docker.inspect("{name}").labels')
    _passed(f"container {name!r} has labels {dict(expected)}")


def container_env(name: str, expected: Mapping[str, str]) -> None:
    """The container's environment holds every variable in ``expected``."""
    _has_items("variable", name, _container(name).env, expected, f'docker.inspect("{name}").env')
    _passed(f"container {name!r} has environment {dict(expected)}")


def port_published(name: str, container_port: int, *, host_ip: str = "127.0.0.1") -> int:
    """The container publishes ``container_port`` on ``host_ip``. Returns the host port."""
    container = _container(name)
    if container_port not in container.ports:
        raise CheckFailed(
            f"container {name!r}: expected port {container_port} to be published, "
            f"found {container.ports_text}.",
            hint="the ports= argument of docker.run (CLI: -p 127.0.0.1:HOST:CONTAINER)",
        )
    ip, host_port = container.ports[container_port]
    if ip != host_ip:
        raise CheckFailed(
            f"container {name!r}: expected port {container_port} on {host_ip}, found it "
            f"on {ip or '0.0.0.0'} (every network interface).",
            hint=f"publish it as ports={{{container_port}: HOST_PORT}}, which binds {host_ip} only",
        )
    _passed(f"container {name!r} publishes {container_port} on {ip}:{host_port}")
    return host_port


def page_contains(url: str, text: str) -> None:
    """The page at ``url`` (on 127.0.0.1) answers and contains ``text``."""
    try:
        page = fetch(url, timeout=10)
    except CourseError as error:
        raise CheckFailed(f"{url}: {error.message}", hint=error.hint) from None
    if text not in page:
        raise CheckFailed(
            f"{url}: expected the page to contain {text!r}; it did not.",
            output="The page was:\n" + page[:400],
            hint=f'helpers.fetch("{url}")',
        )
    _passed(f"{url} answers and contains {text!r}")


def image_has(
    tag: str,
    *,
    labels: Mapping[str, str] | None = None,
    exposed_ports: Sequence[int] | None = None,
    env: Mapping[str, str] | None = None,
    command: Sequence[str] | None = None,
    based_on: str | None = None,
) -> None:
    """A built image exists and has the given labels, exposed ports, environment and command."""
    try:
        image = inspect_image(tag)
    except CourseError as error:
        raise CheckFailed(
            f"image {tag!r}: {error.message}", hint="docker.build(...) in your answer"
        ) from None
    look = f'docker.image("{tag}")'
    for key, value in (labels or {}).items():
        if image.labels.get(key) != value:
            raise CheckFailed(
                f"image {tag!r}: expected LABEL {key}={value}, found "
                f"{key}={image.labels.get(key, '(none)')}.",
                hint=look + ".labels",
            )
    for port in exposed_ports or []:
        if port not in image.exposed_ports:
            raise CheckFailed(
                f"image {tag!r}: expected EXPOSE {port}, found {image.exposed_ports}.",
                hint=look + ".exposed_ports",
            )
    for key, value in (env or {}).items():
        if image.env.get(key) != value:
            raise CheckFailed(
                f"image {tag!r}: expected ENV {key}={value}, found "
                f"{key}={image.env.get(key, '(none)')}.",
                hint=look + ".env",
            )
    if command is not None and image.command != list(command):
        raise CheckFailed(
            f"image {tag!r}: expected CMD {list(command)}, found {image.command}.",
            hint=look + ".command",
        )
    if based_on is not None and not image.based_on(based_on):
        raise CheckFailed(
            f"image {tag!r}: expected it to be built FROM {based_on}; it is not.",
            hint="the FROM line of your Dockerfile",
        )
    _passed(f"image {image.tag} has the expected properties")


# --- Kubernetes -----------------------------------------------------------------------------


def _object(target: str, ns: str) -> Object:
    try:
        return get(target, ns)
    except CourseError as error:
        raise CheckFailed(
            f"{target}: {error.message}", hint=f"k8s.pods({ns!r}) lists what exists"
        ) from None


def pod_ready(name: str, ns: str, *, containers: int | None = None, timeout: float = 30) -> None:
    """The pod becomes Ready within ``timeout`` s, with ``containers`` ready containers."""
    _object(f"pod/{name}", ns)  # a pod that does not exist fails now, not after the timeout
    try:
        wait(f"pod/{name}", "Ready", ns, timeout=timeout)
    except CourseError:
        pod = _object(f"pod/{name}", ns)
        problems = []
        for status in pod.status.get("containerStatuses") or []:
            if not status.get("ready"):
                state = status.get("state") or {}
                detail = state.get("waiting") or state.get("terminated") or {}
                code = f" (exit code {detail['exitCode']})" if "exitCode" in detail else ""
                problems.append(
                    f'container "{status["name"]}" is {detail.get("reason", "not ready")}{code}'
                )
        raise CheckFailed(
            f"pod/{name}: expected it Ready, found {status.pod_status(pod.raw)}.",
            output="\n".join(problems),
            hint=f"k8s.events({ns!r}, about='pod/{name}') and k8s.logs({name!r}, {ns!r}, "
            "container=..., previous=True)",
        ) from None
    pod = _object(f"pod/{name}", ns)
    ready = sum(1 for c in pod.status.get("containerStatuses") or [] if c.get("ready"))
    if containers is not None and ready != containers:
        raise CheckFailed(
            f"pod/{name}: expected {containers} ready containers, found {ready}.",
            hint=f"k8s.get('pod/{name}', {ns!r}).spec['containers']",
        )
    _passed(f"pod/{name} is Ready with {ready} container(s)")


def deployment_ready(name: str, ns: str, *, replicas: int, timeout: float = 60) -> None:
    """deployment/``name`` wants ``replicas`` pods, and that many are ready and up to date."""
    try:
        deployment = wait(f"deployment/{name}", "Complete", ns, timeout=timeout)
    except CourseError as error:
        raise CheckFailed(
            f"deployment/{name}: expected a finished rollout, found: {error.message}",
            hint=f"k8s.get('deployment/{name}', ns) and k8s.pods(ns)",
        ) from None
    wanted = deployment.spec.get("replicas")
    if wanted != replicas:
        raise CheckFailed(
            f"deployment/{name}: expected {replicas} replicas, found {wanted}.",
            hint=f"k8s.scale('{name}', {replicas}, ns)",
        )
    _passed(f"deployment/{name} has {replicas} ready replicas")


def endpoints_are(service: str, ns: str, pods: Sequence[str], *, timeout: float = 20) -> None:
    """service/``service``'s ready endpoints are exactly the pods named in ``pods``.

    The EndpointSlice controller follows pods a moment after they turn ready or go, so the check
    gives it up to ``timeout`` seconds to agree."""
    from ._k8s.traffic import endpoints

    wanted = sorted(pods)
    deadline = Deadline(timeout)
    while True:
        ready = sorted(row["pod"] for row in endpoints(service, ns) if row["ready"])
        if ready == wanted or deadline.expired:
            break
        deadline.sleep(0.5)
    if ready != wanted:
        raise CheckFailed(
            f"service/{service}: expected its ready endpoints to be {wanted}, found {ready} "
            f"(still, after {timeout:g} s).",
            hint=f"k8s.endpoints('{service}', ns): does its selector match those pods' labels, "
            "and only theirs?",
        )
    _passed(f"service/{service} sends traffic to exactly {len(ready)} ready pod(s)")
