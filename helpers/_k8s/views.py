"""Live views of the cluster, fed by watches (not by polling): a pod map, a rollout chart, and a
restart chart. Each shows itself in a notebook and ``.stop()`` leaves a still picture."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._errors import KubernetesError
from .._identity import grading_mode
from .._live import Live, show
from . import status
from .client import request, watch
from .discovery import resolve
from .objects import get, namespace_for

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Raw = dict[str, Any]

# How a pod looks on the map, by what it is doing.
COLOURS = {
    "ready": "#7bc67b",
    "starting": "#f2d16b",
    "failing": "#e4736b",
    "done": "#b9c3cf",
    "terminating": "#d9d9d9",
}


def pod_state(pod: Mapping[str, Any]) -> str:
    """One word for the map's colour: ready, starting, failing, done or terminating."""
    text = status.pod_status(pod)
    if text == "Terminating":
        return "terminating"
    if text in status.HOPELESS_REASONS or text in ("Failed", "Error", "OOMKilled"):
        return "failing"
    if text in ("Succeeded", "Completed"):
        return "done"
    return "ready" if status.condition_true(pod, "Ready") else "starting"


class WatchedView(Live):
    """A live view of one kind of object in a namespace. It lists them once, then each update
    follows the watch for about one interval, so the picture changes as the cluster does."""

    def __init__(
        self,
        kind: str,
        ns: str | None,
        *,
        title: str,
        selector: str | None = None,
        name: str | None = None,
        interval: float = 1.0,
    ) -> None:
        super().__init__(title=title, interval=interval)
        resource = resolve(kind)
        self.path = resource.collection(namespace_for(resource, ns))
        self.selector = selector
        self.field = f"metadata.name={name}" if name else None
        self.objects: dict[str, Raw] = {}
        self.changes: list[tuple[float, str, Raw]] = []  # (seconds, ADDED/MODIFIED/DELETED, object)
        self.version = ""

    def _list(self) -> None:
        query = {"labelSelector": self.selector, "fieldSelector": self.field}
        listing = request("GET", self.path, query=query, what=f"listing {self.path}")
        self.version = listing["metadata"]["resourceVersion"]
        with self.lock:
            self.objects = {item["metadata"]["name"]: item for item in listing.get("items") or []}
            for item in self.objects.values():
                self.changes.append((self.elapsed(), "LISTED", item))

    def update(self) -> None:
        self._follow(until_stopped=True)

    def _follow(self, *, until_stopped: bool) -> None:
        """Take in the changes the watch brings for about one interval (all of them, in order,
        since the last one seen). ``until_stopped``: return early once the view is stopped."""
        if not self.version:
            self._list()
            return
        seconds = max(1, round(self.interval))
        try:
            for event in watch(
                self.path,
                self.version,
                seconds,
                field_selector=self.field,
                label_selector=self.selector,
            ):
                kind, item = event.get("type"), event.get("object") or {}
                if kind == "ERROR":  # the version is too old to watch from: list again
                    self.version = ""
                    return
                self.version = item["metadata"]["resourceVersion"]
                with self.lock:
                    if kind == "DELETED":
                        self.objects.pop(item["metadata"]["name"], None)
                    else:
                        self.objects[item["metadata"]["name"]] = item
                    self.changes.append((self.elapsed(), str(kind), item))
                if until_stopped and self._stop.is_set():
                    return
        except KubernetesError as error:
            if "410" in str(error) or "Expired" in str(error):
                self.version = ""
                return
            raise

    def pause(self) -> float:
        return 0.0  # the watch itself waits for changes

    def catch_up(self) -> None:
        """While grading no thread follows the watch: take in every change so far, so what
        the view reports (a peak, a count) covers the whole run. Those changes are stamped
        with the time they arrive here, not the time they happened."""
        if grading_mode() and not self.running:
            self._follow(until_stopped=False)

    def close(self) -> None:
        # The last changes before the stop belong in the still picture.
        self._follow(until_stopped=False)


class PodMap(WatchedView):
    """Pods grouped by node, coloured by what they are doing."""

    figure_size = (8.0, 4.8)

    def history(self) -> list[tuple[float, dict[str, int]]]:
        """After each change: seconds, and how many pods were ready, starting, failing, ..."""
        self.catch_up()
        pods: dict[str, Raw] = {}
        moments = []
        for seconds, kind, pod in self.changes:
            if kind == "DELETED":
                pods.pop(pod["metadata"]["name"], None)
            else:
                pods[pod["metadata"]["name"]] = pod
            counts = {state: 0 for state in COLOURS}
            for each in pods.values():
                counts[pod_state(each)] += 1
            moments.append((seconds, counts))
        return moments

    def most_pods(self) -> int:
        """The most pods there were at once, those shutting down included."""
        return max((sum(counts.values()) for _, counts in self.history()), default=0)

    def draw(self, figure: Figure) -> None:
        from matplotlib.patches import FancyBboxPatch

        axes, strip = figure.subplots(2, 1, height_ratios=[3, 1])
        self._draw_history(strip)
        axes.axis("off")
        by_node: dict[str, list[Raw]] = {}
        for pod in sorted(self.objects.values(), key=lambda p: p["metadata"]["name"]):
            by_node.setdefault(
                (pod.get("spec") or {}).get("nodeName") or "(no node yet)", []
            ).append(pod)
        columns = max(1, len(by_node))
        axes.set(xlim=(0, columns), ylim=(0, 1))
        for column, (node, pods) in enumerate(sorted(by_node.items())):
            axes.add_patch(
                FancyBboxPatch(
                    (column + 0.03, 0.02),
                    0.94,
                    0.9,
                    boxstyle="round,pad=0.01",
                    facecolor="#f4f6f8",
                    edgecolor="#9aa5b1",
                )
            )
            axes.text(column + 0.5, 0.95, node, ha="center", fontsize=9, weight="bold")
            for slot, pod in enumerate(pods[:24]):
                x = column + 0.08 + (slot % 3) * 0.3
                y = 0.78 - (slot // 3) * 0.1
                state = pod_state(pod)
                axes.add_patch(
                    FancyBboxPatch(
                        (x, y),
                        0.26,
                        0.07,
                        boxstyle="round,pad=0.005",
                        facecolor=COLOURS[state],
                        edgecolor="#555555",
                        linewidth=0.6,
                    )
                )
                label = pod["metadata"]["name"][-20:]
                axes.text(x + 0.13, y + 0.035, label, ha="center", va="center", fontsize=6.5)
        if not by_node:
            axes.text(0.5, 0.5, "no pods", ha="center", color="#777777")
        handles = [
            FancyBboxPatch((0, 0), 1, 1, facecolor=c, edgecolor="#555555") for c in COLOURS.values()
        ]
        axes.legend(
            handles,
            list(COLOURS),
            loc="lower center",
            ncol=5,
            fontsize=7,
            bbox_to_anchor=(0.5, -0.12),
            frameon=False,
        )
        counts = {s: sum(1 for p in self.objects.values() if pod_state(p) == s) for s in COLOURS}
        axes.set_title(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "empty", fontsize=9)

    def _draw_history(self, strip: Any) -> None:
        moments = self.history()
        now = self.elapsed()
        if moments:
            times = [t for t, _ in moments] + [now]
            layers = [[counts[state] for _, counts in moments] for state in COLOURS]
            layers = [[*layer, layer[-1]] for layer in layers]
            strip.stackplot(times, layers, colors=list(COLOURS.values()), step="post")
        strip.set(xlabel="seconds", ylabel="pods", xlim=(0, max(now, 5)))


class RolloutChart(WatchedView):
    """Ready pods of each ReplicaSet of a Deployment over time, labelled with revision and image."""

    def __init__(self, deployment: str, ns: str | None, *, interval: float = 1.0) -> None:
        found = get(f"deployment/{deployment.split('/', 1)[-1]}", ns)
        labels = (found.spec.get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        self.deployment = found.name
        self.wanted = int(found.spec.get("replicas", 1))
        super().__init__(
            "replicasets",
            found.namespace,
            title=f"rollout of deployment/{found.name}",
            selector=selector,
            interval=interval,
        )

    def _mine(self, rs: Mapping[str, Any]) -> bool:
        owners = (rs.get("metadata") or {}).get("ownerReferences") or []
        return any(
            o.get("kind") == "Deployment" and o.get("name") == self.deployment for o in owners
        )

    def _key(self, rs: Mapping[str, Any]) -> str:
        annotations = rs["metadata"].get("annotations") or {}
        images = ", ".join(c["image"] for c in rs["spec"]["template"]["spec"]["containers"])
        return f"rev {annotations.get('deployment.kubernetes.io/revision', '?')}: {images}"

    def timeline(self) -> list[tuple[float, dict[str, tuple[int, int, int]]]]:
        """After each change: seconds, and per ReplicaSet ("rev N: IMAGE") its ready pods, all
        its pods, and the pods it wants."""
        self.catch_up()
        state: dict[str, tuple[int, int, int]] = {}
        moments = []
        for seconds, kind, rs in self.changes:
            if not self._mine(rs):
                continue
            status, spec = rs.get("status") or {}, rs.get("spec") or {}
            counts = (
                int(status.get("readyReplicas", 0)),
                int(status.get("replicas", 0)),
                int(spec.get("replicas", 0)),
            )
            state[self._key(rs)] = (0, 0, 0) if kind == "DELETED" else counts
            moments.append((seconds, dict(state)))
        return moments

    def peak_pods(self) -> int:
        """The most pods the Deployment's ReplicaSets asked for at once, old and new together:
        what ``maxSurge`` bounds (pods already shutting down are not counted)."""
        return max((sum(c[2] for c in state.values()) for _, state in self.timeline()), default=0)

    def fewest_ready(self) -> int:
        """The fewest ready pods the Deployment had at any moment, old and new together."""
        return min((sum(c[0] for c in state.values()) for _, state in self.timeline()), default=0)

    def draw(self, figure: Figure) -> None:
        axes = figure.add_subplot()
        now = self.elapsed()
        moments = self.timeline()
        keys = sorted({key for _, state in moments for key in state})
        times = [t for t, _ in moments] + [now]
        for key in keys:
            ready = [state.get(key, (0, 0, 0))[0] for _, state in moments]
            axes.step(times, [*ready, ready[-1]], where="post", label=key, linewidth=2)
        wanted = [sum(c[2] for c in state.values()) for _, state in moments]
        if wanted:
            axes.step(
                times,
                [*wanted, wanted[-1]],
                where="post",
                linestyle="--",
                color="#888888",
                linewidth=1,
                label="wanted (all ReplicaSets)",
            )
        top = max([*wanted, self.wanted, 1])
        axes.set(
            xlabel="seconds", ylabel="ready pods", ylim=(-0.2, top + 1.5), xlim=(0, max(now, 5))
        )
        axes.legend(loc="upper left", fontsize="small")


class RestartChart(WatchedView):
    """How often one pod's containers have restarted, over time: the back-off made visible."""

    def __init__(self, pod: str, ns: str | None, *, interval: float = 1.0) -> None:
        name = pod.split("/", 1)[-1]
        super().__init__("pods", ns, title=f"restarts of pod/{name}", name=name, interval=interval)

    def points(self) -> list[tuple[float, int, str]]:
        """(seconds, restarts, status) each time the pod changed."""
        self.catch_up()
        return [(t, status.restarts(pod), status.pod_status(pod)) for t, _, pod in self.changes]

    def draw(self, figure: Figure) -> None:
        axes = figure.add_subplot()
        points = self.points()
        now = self.elapsed()
        if points:
            axes.step(
                [t for t, _, _ in points] + [now],
                [r for _, r, _ in points] + [points[-1][1]],
                where="post",
                linewidth=2,
            )
            # Label each restart with the pause before it: the back-off doubles each time.
            restarted_at = [
                (t, r)
                for (t, r, _), (_, before, _) in zip(points[1:], points, strict=False)
                if r > before
            ]
            for (previous, _), (current, count) in itertools.pairwise(restarted_at):
                axes.annotate(
                    f"+{current - previous:.0f} s",
                    (current, count),
                    xytext=(-34, 4),
                    textcoords="offset points",
                    fontsize=8,
                )
            axes.set_title(f"now: {points[-1][2]}", fontsize=9)
        axes.set(xlabel="seconds", ylabel="restarts", ylim=(-0.2, None), xlim=(0, max(now, 5)))


PHASE_COLOURS = {"Pending": "#f2d16b", "Bound": "#7bc67b", "Lost": "#e4736b"}


class ClaimsChart(WatchedView):
    """Each PersistentVolumeClaim of a namespace as a bar over time, coloured by its phase."""

    def spans(self) -> dict[str, list[tuple[float, float, str]]]:
        """Per claim: (from, to, phase) pieces; the last one lasts until now (or its deletion)."""
        self.catch_up()
        now = self.elapsed()
        pieces: dict[str, list[tuple[float, float, str]]] = {}
        for seconds, kind, claim in self.changes:
            name = claim["metadata"]["name"]
            phase = (
                "deleted"
                if kind == "DELETED"
                else (claim.get("status") or {}).get("phase", "Pending")
            )
            own = pieces.setdefault(name, [])
            if own and own[-1][2] == phase:
                continue
            if own:
                start, _, previous = own[-1]
                own[-1] = (start, seconds, previous)
            if phase != "deleted":
                own.append((seconds, now, phase))
        return pieces

    def draw(self, figure: Figure) -> None:
        axes = figure.add_subplot()
        pieces = self.spans()
        names = sorted(pieces)
        for row, name in enumerate(names):
            for start, end, phase in pieces[name]:
                colour = PHASE_COLOURS.get(phase, "#b9c3cf")
                axes.barh(row, max(end - start, 0.2), left=start, color=colour, edgecolor="#555555")
                if end - start > max(self.elapsed(), 5) / 30:  # no label on a sliver
                    axes.text(start + 0.2, row, phase, va="center", fontsize=7)
        axes.set_yticks(range(len(names)), names, fontsize=8)
        axes.set(
            xlabel="seconds",
            xlim=(0, max(self.elapsed(), 5)),
            ylim=(-0.6, max(len(names), 1) - 0.4),
        )
        if not names:
            axes.text(
                0.5, 0.5, "no claims yet", transform=axes.transAxes, ha="center", color="#777777"
            )


def _started(view: WatchedView) -> WatchedView:
    show(view)
    return view


def pod_map(ns: str | None = None, *, selector: str | None = None) -> PodMap:
    """A live map of the pods in a namespace: grouped by node, coloured by ready, starting,
    failing, done or terminating. Fed by a watch; ``.stop()`` leaves a still picture.

    CLI: ``kubectl get pods -n NS -o wide --watch``
    """
    view = PodMap(
        "pods", ns, title=f"pods in {namespace_for(resolve('pods'), ns)}", selector=selector
    )
    _started(view)
    return view


def rollout_chart(deployment: str, ns: str | None = None) -> RolloutChart:
    """A live chart of a Deployment's rollout: ready pods of each ReplicaSet (revision, image)
    over time. Fed by a watch; ``.stop()`` leaves a still picture.

    CLI: ``kubectl get replicasets -n NS -l app=web --watch``
    """
    view = RolloutChart(deployment, ns)
    _started(view)
    return view


def restart_chart(pod: str, ns: str | None = None) -> RestartChart:
    """A live chart of one pod's container restarts over time (CrashLoopBackOff's growing
    pauses). Fed by a watch; ``.stop()`` leaves a still picture.

    CLI: ``kubectl get pod NAME -n NS --watch``
    """
    view = RestartChart(pod, ns)
    _started(view)
    return view


def claims_chart(ns: str | None = None) -> ClaimsChart:
    """A live chart of the PersistentVolumeClaims in a namespace: one bar each, coloured by its
    phase (Pending, Bound, Lost) as time goes on. Fed by a watch; ``.stop()`` leaves a still
    picture.

    CLI: ``kubectl get pvc -n NS --watch``
    """
    where = namespace_for(resolve("persistentvolumeclaims"), ns)
    view = ClaimsChart("persistentvolumeclaims", where, title=f"claims in {where}")
    _started(view)
    return view
