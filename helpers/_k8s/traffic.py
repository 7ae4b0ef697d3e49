"""Traffic to a Service from inside the cluster, and the endpoints behind it.

``traffic`` starts a small client pod in your namespace that requests a Service by its DNS name
at a steady rate and prints one line per answer (or ``FAIL``). The probe reads that pod's log
(with the kubelet's timestamps) and counts the answers: by version, by pod, and the failures.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from .._live import Live, show
from .._output import Table
from .client import request
from .discovery import resolve
from .objects import apply, delete, get, list_objects, namespace_for
from .waiting import wait

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PROBE_LABEL = "course.role"
FAIL = "FAIL"


def endpoints(service: str, ns: str | None = None) -> Table:
    """The endpoints of a Service, from its EndpointSlices: which pods it sends traffic to, and
    whether each is ready (only ready ones get new connections).

    CLI: ``kubectl get endpointslices -n NS -l kubernetes.io/service-name=web -o wide``
    """
    name = service.split("/", 1)[-1]
    rows = []
    for piece in list_objects("endpointslices", ns, selector=f"kubernetes.io/service-name={name}"):
        for endpoint in piece.raw.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            rows.append(
                [
                    (endpoint.get("targetRef") or {}).get("name", ""),
                    ", ".join(endpoint.get("addresses") or []),
                    bool(conditions.get("ready")),
                    bool(conditions.get("terminating")),
                ]
            )
    return Table(["pod", "ip", "ready", "terminating"], sorted(rows))


def _probe_pod(name: str, service: str, port: int, path: str, pause: float) -> dict[str, Any]:
    url = f"http://{service}:{port}/{path.lstrip('/')}"
    loop = (
        "exec 2>/dev/null; trap 'exit 0' TERM; while true; do "
        f"a=$(timeout 2 wget -q -O - {url} 2>/dev/null) || a={FAIL}; "
        'echo "${a:-EMPTY}"; '
        f"sleep {pause}; done"
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {PROBE_LABEL: "traffic-probe"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "probe", "image": "course/web:v1", "command": ["sh", "-c", loop]}
            ],
        },
    }


class TrafficProbe(Live):
    """Answers per second by what they said (a version, a pod name) and failures, over time."""

    figure_size = (9.0, 3.4)

    def __init__(
        self, service: str, ns: str | None, *, path: str, port: int, per_second: float
    ) -> None:
        self.service = service.split("/", 1)[-1]
        self.ns = str(namespace_for(resolve("pods"), ns))
        self.pod = f"traffic-{self.service}"[:63]
        super().__init__(title=f"requests to service/{self.service} {path}", interval=1.0)
        get(f"service/{self.service}", self.ns)  # no such service: say so now
        delete(f"pod/{self.pod}", self.ns)  # a probe left from an earlier run
        apply(_probe_pod(self.pod, self.service, port, path, round(1 / per_second, 2)), self.ns)
        wait(f"pod/{self.pod}", "Running", self.ns, timeout=60)
        self.answers: list[tuple[str, str]] = []  # (kubelet timestamp, answer)
        self._seen: set[str] = set()

    def update(self) -> None:
        since = self.answers[-1][0][:19] + "Z" if self.answers else None
        text = request(
            "GET",
            f"/api/v1/namespaces/{self.ns}/pods/{self.pod}/log",
            query={"timestamps": "true", "sinceTime": since},
            what=f"reading the traffic probe's log (pod/{self.pod})",
        )
        for line in str(text).splitlines():
            stamp, _, answer = line.partition(" ")
            if stamp and stamp not in self._seen:
                self._seen.add(stamp)
                with self.lock:
                    self.answers.append((stamp, answer.strip()))

    def counts(self) -> dict[str, int]:
        """How many requests got each answer so far (``FAIL``: no answer)."""
        self.update()
        with self.lock:
            return dict(Counter(answer for _, answer in self.answers))

    @property
    def failures(self) -> int:
        """Requests that got no answer so far."""
        return self.counts().get(FAIL, 0)

    def _per_second(self) -> tuple[list[int], dict[str, list[int]]]:
        if not self.answers:
            return [], {}
        seconds = [_epoch(stamp) for stamp, _ in self.answers]
        start = int(seconds[0])
        buckets = list(range(int(seconds[-1]) - start + 1))
        lines: dict[str, list[int]] = {}
        for second, (_, answer) in zip(seconds, self.answers, strict=True):
            lines.setdefault(answer, [0] * len(buckets))[int(second) - start] += 1
        return buckets, lines

    def draw(self, figure: Figure) -> None:
        over_time, totals = figure.subplots(1, 2, width_ratios=[3, 1])
        buckets, lines = self._per_second()
        for answer in sorted(lines, key=lambda a: (a == FAIL, a)):
            style = {"color": "#d62728", "linewidth": 2} if answer == FAIL else {}
            over_time.plot(buckets, lines[answer], label=answer, **style)
        over_time.set(xlabel="seconds", ylabel="answers per second", ylim=(0, None))
        if lines:
            over_time.legend(loc="upper left", fontsize="small")
        names = sorted(lines, key=lambda a: (a == FAIL, a))
        counted = [sum(lines[a]) for a in names]
        colours = ["#d62728" if a == FAIL else f"C{i}" for i, a in enumerate(names)]
        totals.barh(names, counted, color=colours)
        totals.set(xlabel="requests in all")
        for index, value in enumerate(counted):
            totals.text(value, index, f" {value}", va="center", fontsize=8)

    def close(self) -> None:
        delete(f"pod/{self.pod}", self.ns, wait_until_gone=False)


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()


def traffic(
    service: str,
    ns: str | None = None,
    *,
    path: str = "/version",
    port: int = 80,
    per_second: float = 10,
) -> TrafficProbe:
    """Send requests to a Service by its DNS name from a pod inside the cluster, about
    ``per_second`` a second, and draw the answers live (by what they said, and failures).
    ``.counts()`` gives the totals; ``.stop()`` ends the probe, removes its pod and leaves a still
    picture.

    CLI: ``kubectl run traffic --image=course/web:v1 -n NS -- sh -c 'while true; do wget -q -O -
    http://web/version || echo FAIL; sleep 0.1; done'``, then ``kubectl logs -f traffic -n NS``
    """
    probe = TrafficProbe(service, ns, path=path, port=port, per_second=per_second)
    show(probe)
    return probe
