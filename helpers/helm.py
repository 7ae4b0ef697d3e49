"""Helm for the Helm chapter: each function runs one ``helm`` command, prints it as you would
type it, and returns what Helm answered as plain data.

>>> from helpers import helm
>>> helm.install("web", "charts/web", set={"replicas": 2})   # doctest: +SKIP
$ helm install web charts/web --namespace alice-07-helm --set replicas=2 --wait --timeout 120s
>>> helm.history("web")                                      # doctest: +SKIP

**Namespaces.** Releases live in a namespace, like the objects they make: leave ``ns`` out and
it is your namespace for this chapter (``k8s.namespace()``).

**Values.** ``set={"image.tag": "v2"}`` is ``--set image.tag=v2``; ``values="prod.yaml"`` (or a
dict, written to a file for you) is ``--values prod.yaml``. Later ones win, as in Helm.

**State.** Helm keeps each revision of a release in a Secret of type ``helm.sh/release.v1`` in
the release's namespace; ``history``, ``status`` and ``get_values`` read it through Helm's
``-o json``.

**Registry.** ``REGISTRY`` (``localhost:5001``) is the course's OCI registry, started by
``make cluster``; ``push`` stores a packaged chart under your own path in it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._cluster import cache_dir, kubeconfig_path
from ._errors import CommandFailed, CourseError
from ._identity import chapter
from ._output import Table

REGISTRY = "localhost:5001"
REGISTRY_ENDPOINT = ("127.0.0.1", 5001)  # what a sandboxed notebook's relay lets through
VERSION = "v4.3.2"
# Where the sandbox shows helm; cluster/tools.sh leaves it in cache_dir()/helm-VERSION/bin.
SANDBOX_BINARY = Path("/run/course/bin/helm")
WAIT_SECONDS = 120

Values = Mapping[str, Any]


@dataclass(frozen=True)
class Release:
    """One revision of a release, as ``helm status -o json`` tells it."""

    name: str
    namespace: str
    revision: int
    status: str
    chart: str
    app_version: str
    description: str
    values: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"release {self.name} revision {self.revision}: {self.status}, chart {self.chart}"
            f" ({self.description})"
        )


def binary() -> str:
    """The helm program: the one on PATH, else the one ``make cluster`` built."""
    cached = cache_dir() / f"helm-{VERSION}" / "bin" / "helm"
    for candidate in (shutil.which("helm"), SANDBOX_BINARY, cached):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise CommandFailed(
        "helm is not installed.",
        hint=f"`make cluster` builds Helm {VERSION} (cluster/tools.sh helm); `make doctor` checks it.",
    )


def run(*args: str, ns: str | None = None, show: bool = True, timeout: float = 300) -> str:
    """Run ``helm ARGS`` (in ``ns`` for commands about releases) and return what it printed.
    Every other function here goes through it; use it for what they do not cover.

    >>> helm.run("version", "--short")   # doctest: +SKIP
    """
    command = [binary(), *args]
    if ns is not None:
        command += ["--namespace", ns]
    shown = shlex.join(["helm", *command[1:]])
    if show:
        print(f"$ {shown}", flush=True)
    environment = dict(os.environ)
    kubeconfig = kubeconfig_path()
    if kubeconfig:
        environment["KUBECONFIG"] = kubeconfig
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=environment, check=False
        )
    except subprocess.TimeoutExpired:
        raise CommandFailed(
            f"helm did not finish in {timeout:.0f} s.",
            command=shown,
            hint="Look at the release's pods: k8s.pods(), and k8s.events().",
        ) from None
    if done.returncode != 0:
        raise CommandFailed(
            f"helm {args[0]} failed (exit {done.returncode}).",
            command=shown,
            output=done.stderr or done.stdout,
            hint=_hint(done.stderr),
        )
    return done.stdout


def _hint(stderr: str) -> str | None:
    """The next step for the errors learners meet most."""
    known = {
        "cannot reuse a name that is still in use": "The release exists: use helm.upgrade(...), "
        "or helm.uninstall(...) first.",
        "has no deployed releases": "The release never installed cleanly: helm.uninstall(...) it, "
        "then install again.",
        "release: not found": "No release of that name here: helm.releases() lists them.",
        "context deadline exceeded": "Its pods did not become ready in time: look at k8s.pods() "
        "and k8s.events() (an image that does not exist? a failing probe?).",
        "parse error": "A template does not parse: helm.template(...) shows where; check its "
        "{{ }} and its indentation.",
        "connection refused": f"Nothing answers there. Is the registry ({REGISTRY}) or the "
        "cluster up? Run `make cluster`.",
        "invalid ownership metadata": "An object of that name exists and Helm did not make it: "
        "delete it, or install with --take-ownership.",
        "conflict occurred while applying": "A field was changed outside Helm (kubectl scale, "
        "edit, apply), so that manager owns it now. Give the value to Helm (--set, a values "
        "file) and let Helm take it back: helm.run('upgrade', ..., '--force-conflicts').",
    }
    for needle, hint in known.items():
        if needle in stderr:
            return hint
    return None


def _namespace(ns: str | None) -> str:
    return ns or chapter().namespace


def _value_flags(values: str | Path | Values | None, set: Values | None) -> list[str]:
    flags: list[str] = []
    if values is not None:
        if isinstance(values, Mapping):
            handle, path = tempfile.mkstemp(prefix="values-", suffix=".yaml")
            with os.fdopen(handle, "w") as file:
                yaml.safe_dump(dict(values), file, sort_keys=False)
            values = path
        flags += ["--values", str(values)]
    for key, value in (set or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        flags += ["--set", f"{key}={text}"]
    return flags


def _wait(wait: bool) -> list[str]:
    return ["--wait", "--timeout", f"{WAIT_SECONDS}s"] if wait else []


def template(
    chart: str | Path,
    *,
    values: str | Path | Values | None = None,
    set: Values | None = None,
    release: str = "web",
    version: str | None = None,
    ns: str | None = None,
) -> list[dict[str, Any]]:
    """The objects the chart (a folder, a .tgz or an ``oci://`` reference) makes with these
    values, rendered here; nothing is sent to the cluster.

    CLI: ``helm template web charts/web --namespace NS --set replicas=2``
    """
    flags = [*_value_flags(values, set), *_chart_flags(chart, version)]
    text = run("template", release, str(chart), *flags, ns=_namespace(ns))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def lint(chart: str | Path, *, values: str | Path | Values | None = None) -> str:
    """Helm's checks of a chart: well-formed Chart.yaml, templates that render, and advice.

    CLI: ``helm lint charts/web``
    """
    return run("lint", str(chart), *_value_flags(values, None))


def install(
    release: str,
    chart: str | Path,
    *,
    values: str | Path | Values | None = None,
    set: Values | None = None,
    version: str | None = None,
    ns: str | None = None,
    wait: bool = True,
) -> Release:
    """Install a chart (a folder, a .tgz or an ``oci://`` reference) as a new release, and wait
    for its pods to be ready.

    CLI: ``helm install web charts/web --namespace NS --set replicas=2 --wait --timeout 120s``
    """
    flags = [*_value_flags(values, set), *_chart_flags(chart, version), *_wait(wait)]
    run("install", release, str(chart), *flags, ns=_namespace(ns))
    return status(release, ns=ns)


def upgrade(
    release: str,
    chart: str | Path,
    *,
    values: str | Path | Values | None = None,
    set: Values | None = None,
    reuse_values: bool = False,
    version: str | None = None,
    ns: str | None = None,
    wait: bool = True,
) -> Release:
    """Upgrade a release to this chart and these values: a new revision. Values not given are
    the chart's defaults again, unless ``reuse_values=True`` keeps the last revision's.

    CLI: ``helm upgrade web charts/web --namespace NS --set image.tag=v2 --wait --timeout 120s``
    """
    flags = [*_value_flags(values, set), *_chart_flags(chart, version), *_wait(wait)]
    if reuse_values:
        flags.append("--reuse-values")
    run("upgrade", release, str(chart), *flags, ns=_namespace(ns))
    return status(release, ns=ns)


def rollback(release: str, revision: int, *, ns: str | None = None, wait: bool = True) -> Release:
    """Roll back to an earlier revision. Helm writes the old revision's chart and values as a
    new revision: history only grows.

    CLI: ``helm rollback web 1 --namespace NS --wait --timeout 120s``
    """
    run("rollback", release, str(revision), *_wait(wait), ns=_namespace(ns))
    return status(release, ns=ns)


def uninstall(release: str, *, ns: str | None = None, keep_history: bool = False) -> None:
    """Delete the release's objects and (unless ``keep_history``) its history.

    CLI: ``helm uninstall web --namespace NS --wait``
    """
    flags = ["--keep-history"] if keep_history else []
    print(run("uninstall", release, "--wait", *flags, ns=_namespace(ns)).strip())


def status(release: str, *, ns: str | None = None) -> Release:
    """The release's current revision.

    CLI: ``helm status web --namespace NS -o json`` (the chart: ``helm history web``)
    """
    raw = json.loads(run("status", release, "-o", "json", ns=_namespace(ns), show=False))
    info = raw.get("info", {})
    latest = history(release, ns=ns)[-1]  # status's JSON leaves out the chart
    return Release(
        name=raw["name"],
        namespace=raw.get("namespace", _namespace(ns)),
        revision=int(raw["version"]),
        status=str(info.get("status", "")),
        chart=str(latest["chart"]),
        app_version=str(latest["app_version"]),
        description=str(info.get("description", "")),
        values=dict(raw.get("config") or {}),
    )


def history(release: str, *, ns: str | None = None) -> Table:
    """Every revision Helm kept, oldest first: revision, status, chart, app_version,
    description (rows iterate as dicts).

    CLI: ``helm history web --namespace NS -o json``
    """
    rows = json.loads(run("history", release, "-o", "json", ns=_namespace(ns), show=False))
    columns = ("revision", "status", "chart", "app_version", "description")
    return Table(columns, [[row.get(column, "") for column in columns] for row in rows])


def get_values(
    release: str, *, revision: int | None = None, all: bool = False, ns: str | None = None
) -> dict[str, Any]:
    """The values a revision was given (``all=True``: merged with the chart's defaults).

    CLI: ``helm get values web --namespace NS -o json [--revision 2] [--all]``
    """
    flags = ["-o", "json"] + (["--revision", str(revision)] if revision else [])
    flags += ["--all"] if all else []
    found = json.loads(run("get", "values", release, *flags, ns=_namespace(ns), show=False))
    return dict(found or {})


def releases(*, ns: str | None = None) -> Table:
    """The releases in a namespace that are deployed, or failed: name, revision, status, chart.

    CLI: ``helm list --namespace NS -o json``
    """
    rows = json.loads(run("list", "-o", "json", ns=_namespace(ns), show=False))
    columns = ("name", "revision", "status", "chart", "updated")
    return Table(columns, [[row.get(column, "") for column in columns] for row in rows])


def test(release: str, *, ns: str | None = None) -> str:
    """Run the release's test hooks (pods annotated ``helm.sh/hook: test``); fails if one does.

    CLI: ``helm test web --namespace NS``
    """
    return run("test", release, "--timeout", f"{WAIT_SECONDS}s", ns=_namespace(ns))


def package(chart: str | Path, *, destination: str | Path = ".") -> Path:
    """Pack a chart folder into ``NAME-VERSION.tgz`` in ``destination``.

    CLI: ``helm package charts/web --destination .``
    """
    said = run("package", str(chart), "--destination", str(destination))
    # "Successfully packaged chart and saved it to: /path/web-0.1.0.tgz"
    return Path(said.strip().rsplit(": ", 1)[-1])


def repository(learner: str | None = None) -> str:
    """Your own place for charts in the course's registry: ``oci://localhost:5001/alice/charts``."""
    return f"oci://{REGISTRY}/{learner or chapter().learner}/charts"


def push(package: str | Path, to: str | None = None) -> str:
    """Push a packaged chart to an OCI registry (your place in the course's, by default) and
    return the reference to install it from.

    CLI: ``helm push web-0.1.0.tgz oci://localhost:5001/alice/charts --plain-http``
    """
    target = to or repository()
    said = run("push", str(package), target, *_oci_flags(target))
    print(said.strip())
    name = Path(package).name.removesuffix(".tgz").rsplit("-", 1)[0]
    return f"{target}/{name}"


def _oci_flags(reference: str | Path) -> list[str]:
    # The course's registry speaks plain HTTP on 127.0.0.1, as a local one usually does.
    return ["--plain-http"] if str(reference).startswith(f"oci://{REGISTRY}") else []


def _chart_flags(chart: str | Path, version: str | None) -> list[str]:
    return _oci_flags(chart) + (["--version", version] if version else [])


def create(name: str, *, folder: str | Path = ".") -> Path:
    """Helm's starter chart: a Deployment, a Service, an Ingress, an autoscaler, a test hook,
    helpers and a values.yaml with a knob for each.

    CLI: ``helm create web``
    """
    path = Path(folder) / name
    if path.exists():
        raise CourseError(
            f"{path} exists already.", hint=f"Pick another name, or remove it: rm -r {path}"
        )
    run("create", str(path))
    return path


def objects(release: str, *, ns: str | None = None) -> list[dict[str, Any]]:
    """The objects of the release's current revision, as Helm recorded them (its manifest).

    CLI: ``helm get manifest web --namespace NS``
    """
    text = run("get", "manifest", release, ns=_namespace(ns), show=False)
    return [doc for doc in yaml.safe_load_all(text) if doc]


__all__ = [
    "REGISTRY",
    "Release",
    "binary",
    "create",
    "get_values",
    "history",
    "install",
    "lint",
    "objects",
    "package",
    "push",
    "releases",
    "repository",
    "rollback",
    "run",
    "status",
    "template",
    "test",
    "uninstall",
    "upgrade",
]
