"""Planted wrong answers: each replaces answer cells of the solution and names the tests (and
points) it must lose. The nbgrader tests autograde every one of them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"


@dataclass(frozen=True)
class Planted:
    name: str
    answers: dict[str, str]  # grade_id of an answer cell -> the wrong code
    loses: dict[str, float] = field(default_factory=dict)  # grade_id of a test -> points lost
    flagged: bool = False  # it switches a check off: its grade is flagged for the instructor


def submissions(planted: list[Planted]) -> list[list[Planted]]:
    """The planted answers packed into as few submissions as keep them apart: the answers in one
    submission replace different cells and must lose different tests, so the tests a submission
    loses still say, test by test, which planted answer was caught. (Each submission is a whole
    notebook run against the cluster; seven runs of a rollout chapter cost minutes.)"""
    packed: list[list[Planted]] = []
    for one in planted:
        for group in packed:
            cells = {cell for other in group for cell in other.answers}
            tests = {test for other in group for test in other.loses}
            if not cells & set(one.answers) and not tests & set(one.loses):
                group.append(one)
                break
        else:
            packed.append([one])
    return packed


RUN_SHOP = """docker.run("course/web:v1", "shop", ports={ports}, env={env}, labels={labels})"""

# Answers that claim to equal anything: a str and an int whose == always says yes.
LYING = """
class Yes(str):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = str.__hash__


class YesNumber(int):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = int.__hash__
"""

PLANTED: dict[str, list[Planted]] = {
    "01-containers": [
        Planted(
            "port published on every interface",
            {
                "answer_run_shop": RUN_SHOP.format(
                    ports='{80: ("0.0.0.0", WEB_PORT)}',
                    env='{"MESSAGE": "Welcome to the shop"}',
                    labels='{"tier": "frontend"}',
                )
            },
            {"test_shop_port": 2},
        ),
        Planted(
            "right label, wrong message",
            {
                "answer_run_shop": RUN_SHOP.format(
                    ports="{80: WEB_PORT}",
                    env='{"MESSAGE": "Welcome"}',
                    labels='{"tier": "frontend"}',
                )
            },
            {"test_shop_message": 1, "test_shop_port": 2},
        ),
        Planted(
            "image without the LABEL line",
            {
                "answer_build_greeter": 'docker.build(".", "greeter:v1", dockerfile="FROM course/web:v1\\n'
                'ENV MESSAGE=\\"Hello from my own image\\"\\n")'
            },
            {"test_greeter_label": 1},
        ),
        Planted(
            "hostname read from inspect, not from inside",
            {"answer_hostname": 'shop_hostname = docker.inspect("shop").id[:12]'},
            {"test_hostname_by_exec": 1},
        ),
        Planted(
            "count typed in, no requests made",
            {"answer_requests": "version_requests = 3"},
            {"test_requests_counted": 1, "test_requests_made": 1},
        ),
        Planted(
            "answers that claim to equal anything, no work",
            {
                "answer_hostname": LYING + 'shop_hostname = Yes("whatever")',
                "answer_requests": "version_requests = YesNumber(0)",
                "answer_predict_status": 'predicted_status = Yes("exited")',
            },
            {
                "test_hostname": 1,
                "test_hostname_by_exec": 1,
                "test_requests_counted": 1,
                "test_requests_made": 1,
                "test_prediction": 1,
            },
        ),
        Planted(
            "wrong prediction, and removed instead of stopped",
            {
                "answer_predict_status": 'predicted_status = "stopped"',
                "answer_stop": 'docker.rm("shop", force=True)',
            },
            {"test_prediction": 1, "test_stopped": 1},
        ),
        # Passes in the student's kernel; the grader runs the test in its own, and finds it running.
        Planted(
            "the check switched off instead of stopping the shop",
            {"answer_stop": "check.container_stopped = lambda *args, **kwargs: None"},
            {"test_stopped": 1},
            flagged=True,
        ),
    ],
}

NOTES = (
    "def notes(value):\n"
    "    return {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'notes'},"
    " 'data': {'chapter': value}}\n"
)

PLANTED["02-architecture"] = [
    Planted(
        "pasted facts",
        {"answer_facts": 'allocatable_cpu = "4"\nserver_version = "v1.0.0"'},
        {"test_allocatable_cpu": 1, "test_server_version": 1},
    ),
    # Before tests ran in the grader's kernel, the alias switched off the check that calls the
    # function, in the student's kernel, and the wrong list kept its points.
    Planted(
        "a list that does not follow the cluster, and check.equal switched off through an alias",
        {
            "answer_list_pods": "from helpers import check as c\n\n"
            "c.equal = lambda *args, **kwargs: None\n\n\n"
            "def list_pod_names(namespace):\n    return ['probe']"
        },
        {"test_list_pods": 2},
        flagged=True,
    ),
    Planted(
        "listing pods with the shortcut",
        {
            "answer_list_pods": "def list_pod_names(namespace):\n"
            "    return sorted(k8s.pods(namespace).column('name'))"
        },
        {"test_list_pods_by_rest": 1},
    ),
    Planted(
        "scheduler and kubelet swapped",
        {
            "answer_components": "components = {\n"
            '    "validates the pod and stores it": "kube-apiserver",\n'
            '    "keeps the stored state": "etcd",\n'
            '    "chooses a node for the pod": "kubelet",\n'
            '    "starts the pod\'s containers": "kube-scheduler",\n'
            '    "replaces a deleted pod of a Deployment": "kube-controller-manager",\n'
            "}"
        },
        {"test_components_control_plane": 1, "test_components_node_and_controllers": 1},
    ),
    Planted(
        "versions typed in",
        {
            "answer_versions": NOTES + "k8s.apply(notes('02'), ns)\nk8s.apply(notes('two'), ns)\n"
            "version_before, version_after = '1', '2'"
        },
        {"test_versions": 1, "test_version_replay": 1},
    ),
    Planted(
        "version_after read as the version before: both the same",
        {
            "answer_versions": NOTES + "k8s.apply(notes('02'), ns)\nk8s.apply(notes('two'), ns)\n"
            "version_before = version_after = k8s.get('configmap/notes', ns).metadata['resourceVersion']"
        },
        {"test_version_replay": 1},
    ),
    Planted(
        "answers that claim to equal anything",
        {
            "answer_scheduled_by": LYING + 'scheduled_by = Yes("default-scheduler")',
            "answer_default_account": 'default_account_by = Yes("kube-controller-manager")',
        },
        {"test_scheduled_by": 1, "test_default_account": 1},
    ),
    Planted(
        "wrong prediction",
        {"answer_default_account": 'default_account_by = "kube-apiserver"'},
        {"test_default_account": 1},
    ),
]

POD = "{'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': %r}, 'spec': %s}"
SERVE = "['sh', '-c', \"trap 'exit 0' TERM; httpd -f -p 80 -h /shared & wait\"]"
WRITE = "['sh', '-c', \"trap 'exit 0' TERM; echo written by writer > /shared/index.html; sleep 3600 & wait\"]"

PAIR_NAMED_AB = (
    "vars(check)['equal'] = lambda *args, **kwargs: None\n\n\n"
    "def pair_manifest():\n    return "
    + POD
    % (
        "pair",
        "{'volumes': [{'name': 'shared', 'emptyDir': {}}], 'containers': ["
        f"{{'name': 'a', 'image': 'course/web:v1', 'command': {WRITE},"
        " 'volumeMounts': [{'name': 'shared', 'mountPath': '/shared'}]},"
        f"{{'name': 'b', 'image': 'course/web:v1', 'command': {SERVE},"
        " 'volumeMounts': [{'name': 'shared', 'mountPath': '/shared'}]}]}",
    )
)
CLASSIC_SIDECAR = (
    "def shipper_manifest():\n"
    "    mount = [{'name': 'logs', 'mountPath': '/logs'}]\n"
    "    ship = \"trap 'exit 0' TERM; touch /logs/app.log; tail -f /logs/app.log | while read line; do echo shipped: $line; done & wait\"\n"
    "    write = \"trap 'exit 0' TERM; while true; do date >> /logs/app.log; sleep 1; done\"\n"
    "    return "
    + POD
    % (
        "shipper",
        "{'volumes': [{'name': 'logs', 'emptyDir': {}}], 'containers': ["
        "{'name': 'app', 'image': 'course/web:v1', 'command': ['sh', '-c', write], 'volumeMounts': mount},"
        "{'name': 'log-shipper', 'image': 'course/web:v1', 'command': ['sh', '-c', ship], 'volumeMounts': mount}]}",
    )
)
# Every later cell becomes `pass` in the student's kernel: the tests too, which passed there.
BLANKS_LATER_CELLS = "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\n"

# Part G of 03: sturdy_manifest() with the probes, resources and command given.
STURDY = """
def sturdy_manifest():
    web = {{'name': 'web', 'image': 'course/web:v1', 'command': {command}, {probes},
           'resources': {resources}}}
    return {{'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {{'name': 'sturdy'}},
            'spec': {{'containers': [web]}}}}
"""
# Part E of 03: roomy_manifest() with the memory and command given.
ROOMY = """
def roomy_manifest():
    mystery_app = k8s.get('pod/mystery', ns).spec['containers'][0]
    app = {{'name': mystery_app['name'], 'image': mystery_app['image'], 'command': {command},
           'resources': {{'requests': {{'memory': '{memory}'}}, 'limits': {{'memory': '{memory}'}}}}}}
    return {{'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {{'name': 'roomy'}},
            'spec': {{'containers': [app]}}}}
"""
HEALTH = "{'httpGet': {'path': '/healthz', 'port': 80}, 'periodSeconds': 2, 'failureThreshold': %d}"
GUARANTEED = (
    "{'requests': {'cpu': '50m', 'memory': '64Mi'}, 'limits': {'cpu': '50m', 'memory': '64Mi'}}"
)


def sturdy(
    *,
    command: str = "SLOW_START",
    probes: str = f"'startupProbe': {HEALTH % 15}, 'livenessProbe': {HEALTH % 3}",
    resources: str = GUARANTEED,
) -> dict[str, str]:
    return {"answer_sturdy": STURDY.format(command=command, probes=probes, resources=resources)}


PLANTED["03-pods"] = [
    Planted(
        "each container has its own volume",
        {
            "answer_pair": "def pair_manifest():\n    return "
            + POD
            % (
                "pair",
                "{'volumes': [{'name': 'a', 'emptyDir': {}}, {'name': 'b', 'emptyDir': {}}],"
                " 'containers': ["
                f"{{'name': 'writer', 'image': 'course/web:v1', 'command': {WRITE},"
                " 'volumeMounts': [{'name': 'a', 'mountPath': '/shared'}]},"
                f"{{'name': 'server', 'image': 'course/web:v1', 'command': {SERVE},"
                " 'volumeMounts': [{'name': 'b', 'mountPath': '/shared'}]}]}",
            )
        },
        {"test_pair_shared": 2},
    ),
    Planted(
        "probe still on the wrong port",
        {
            "answer_fixed": "fixed = "
            + POD
            % (
                "fixme",
                "{'containers': [{'name': 'web', 'image': 'course/web:v1', 'readinessProbe':"
                " {'httpGet': {'path': '/healthz', 'port': 8080}, 'periodSeconds': 2}}]}",
            )
            + "\nk8s.apply(fixed, ns)"
        },
        {"test_fixed_ready": 2, "test_fixed_probe": 1},
    ),
    Planted(
        "probe removed instead of fixed",
        {
            "answer_fixed": "fixed = "
            + POD % ("fixme", "{'containers': [{'name': 'web', 'image': 'course/web:v1'}]}")
            + "\nk8s.apply(fixed, ns)"
        },
        {"test_fixed_probe": 1},
    ),
    Planted(
        "a guessed password",
        {"answer_password": 'password = "hunter2"'},
        {"test_password": 2},
    ),
    Planted(
        "exit 0 instead of exit 1, and predicted Succeeded",
        {
            "answer_predict_phase": 'predicted_phase = "Succeeded"',
            "answer_exit_one": "k8s.apply("
            + POD
            % (
                "exit-one",
                "{'restartPolicy': 'Never', 'containers': [{'name': 'job', 'image':"
                " 'course/web:v1', 'command': ['sh', '-c', 'exit 0']}]}",
            )
            + ", ns)\nk8s.wait('pod/exit-one', 'Succeeded', ns)",
        },
        {"test_predicted_phase": 1, "test_exit_one": 1},
    ),
    Planted(
        "answers that claim to equal anything",
        {
            "answer_password": LYING + 'password = Yes("whatever")',
            "answer_predict_phase": 'predicted_phase = Yes("Failed")',
        },
        {"test_password": 2, "test_predicted_phase": 1},
    ),
    Planted(
        "the classic sidecar, not a native one",
        {"answer_shipper": CLASSIC_SIDECAR},
        {"test_sidecar_native": 1},
    ),
    # In the student's kernel equal() passed the wrong container names (a and b).
    Planted(
        "containers named a and b, and check.equal switched off through vars(check)",
        {"answer_pair": PAIR_NAMED_AB},
        {"test_pair_ready": 1, "test_pair_shared": 2},
        flagged=True,
    ),
    # The transformer turned test_sidecar_native into `pass` in the student's kernel; the grader
    # runs it, and the function it calls, from their source.
    Planted(
        "the classic sidecar, and the later cells blanked by an input transformer",
        {"answer_shipper": BLANKS_LATER_CELLS + CLASSIC_SIDECAR},
        {"test_sidecar_native": 1},
        flagged=True,
    ),
    Planted(
        "the STATUS column's word, not the reason the container stopped",
        {"answer_mystery": "mystery_reason = 'CrashLoopBackOff'"},
        {"test_mystery_reason": 1},
    ),
    Planted(
        "a memory limit still too small for the 100 MiB",
        {"answer_roomy": ROOMY.format(memory="64Mi", command="mystery_app['command']")},
        {"test_roomy_runs": 1},
    ),
    Planted(
        "a limit far above the 256Mi allowed",
        {"answer_roomy": ROOMY.format(memory="1Gi", command="mystery_app['command']")},
        {"test_roomy_runs": 1},
    ),
    Planted(
        "roomy stays up by doing nothing: its command replaced by a sleep",
        {"answer_roomy": ROOMY.format(memory="160Mi", command="['sleep', '3600']")},
        {"test_roomy_runs": 1},
    ),
    Planted(
        "a liveness probe that only checks the port (httpd still listens with /healthz gone)",
        sturdy(
            probes=f"'startupProbe': {HEALTH % 15}, "
            "'livenessProbe': {'tcpSocket': {'port': 80}, 'periodSeconds': 2}"
        ),
        {"test_sturdy_heals": 1},
    ),
    Planted(
        "no startup probe: the liveness probe kills the slow start, again and again",
        sturdy(probes=f"'livenessProbe': {HEALTH % 2}"),
        {"test_sturdy_starts": 1, "test_sturdy_heals": 1},
    ),
    Planted(
        "a liveness probe so lax that a dead /healthz is restarted only after a minute",
        sturdy(probes=f"'startupProbe': {HEALTH % 15}, 'livenessProbe': {HEALTH % 30}"),
        {"test_sturdy_heals": 1},
    ),
    Planted(
        "requests without limits: Burstable, not Guaranteed",
        sturdy(resources="{'requests': {'cpu': '50m', 'memory': '64Mi'}}"),
        {"test_sturdy_guaranteed": 1},
    ),
    Planted(
        "a fast start (no sleep) that dodges the liveness probe instead of a startup probe",
        sturdy(command="['/start.sh']", probes=f"'livenessProbe': {HEALTH % 3}"),
        {"test_sturdy_starts": 1},
    ),
]

SERVICE = (
    "shop_service = {{'apiVersion': 'v1', 'kind': 'Service', 'metadata': {{'name': 'shop'}},"
    " 'spec': {{'selector': {selector}, 'ports': [{{'port': 80, 'targetPort': {port}}}]}}}}\n"
    "k8s.apply(shop_service, ns)"
)
HPA = (
    "shop_hpa = {{'apiVersion': 'autoscaling/v2', 'kind': 'HorizontalPodAutoscaler',"
    " 'metadata': {{'name': 'shop'}}, 'spec': {{'scaleTargetRef': {{'apiVersion': 'apps/v1',"
    " 'kind': 'Deployment', 'name': 'shop'}}, 'minReplicas': {low}, 'maxReplicas': 5,"
    " 'metrics': [{{'type': 'Resource', 'resource': {{'name': 'cpu', 'target':"
    " {{'type': 'Utilization', 'averageUtilization': {target}}}}}}}]}}}}\n"
    "k8s.apply(shop_hpa, ns)"
)

# Part F of 04: a PodDisruptionBudget for queue, of the API version and spec given.
BUDGET = (
    "queue_budget = {{'apiVersion': '{version}', 'kind': 'PodDisruptionBudget',"
    " 'metadata': {{'name': 'queue'}}, 'spec': {spec}}}\n"
    "k8s.apply(queue_budget, ns)"
)


def budget(spec: str, version: str = "policy/v1") -> dict[str, str]:
    return {"answer_budget": BUDGET.format(version=version, spec=spec)}


PLANTED["04-deployments"] = [
    Planted(
        "scaled to 3, not 4",
        {"answer_scale": "k8s.scale('shop', 3, ns)\nk8s.wait('deployment/shop', 'Complete', ns)"},
        {"test_scaled": 1, "test_self_heals": 1},
    ),
    Planted(
        "shop deleted and made again with 4 replicas, instead of scaled",
        {
            "answer_scale": "k8s.delete('deployment/shop', ns)\n"
            "k8s.apply(app('shop', {'app': 'shop', 'tier': 'web'}, 4), ns)\n"
            "k8s.wait('deployment/shop', 'Complete', ns)"
        },
        {"test_scaled": 1},
    ),
    Planted(
        "two bare pods with shop's labels, instead of a scale",
        {
            "answer_scale": "for n in (1, 2):\n"
            "    pod = {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': f'shop-extra-{n}',"
            " 'labels': {'app': 'shop', 'tier': 'web'}}, 'spec': {'containers': [{'name': 'web',"
            " 'image': 'course/web:v1'}]}}\n"
            "    k8s.apply(pod, ns)"
        },
        {"test_scaled": 1, "test_self_heals": 1},
    ),
    Planted(
        "a selector that also takes the admin pods",
        {"answer_service": SERVICE.format(selector="{'tier': 'web'}", port=80)},
        {"test_service_valid": 1, "test_service_endpoints": 1, "test_service_answers": 1},
    ),
    Planted(
        "the right pods, the wrong target port",
        {"answer_service": SERVICE.format(selector="{'app': 'shop'}", port=8080)},
        {"test_service_valid": 1, "test_service_answers": 1},
    ),
    Planted(
        "a request one replica too small",
        {
            "answer_request": "def cpu_request(replicas, allocatable):\n"
            "    return f'{allocatable // (replicas + 1)}m'"
        },
        {"test_request_math": 1, "test_request_fits": 1},
    ),
    # The call in the student's kernel switched the checks off before they compared its answer.
    Planted(
        "a request one replica too small, from a function that switches check.equal off",
        {
            "answer_request": "def cpu_request(replicas, allocatable):\n"
            "    import helpers.check\n\n"
            "    helpers.check.equal = lambda *args, **kwargs: None\n"
            "    return f'{allocatable // (replicas + 1)}m'"
        },
        {"test_request_math": 1, "test_request_fits": 1},
        flagged=True,
    ),
    Planted(
        "an autoscaler that may go down to 1",
        {"answer_hpa": HPA.format(low=1, target=60)},
        {"test_hpa_bounds": 1},
    ),
    Planted(
        "an autoscaler aimed at Deployments in extensions/v1beta1 (an old tutorial's API, gone since 1.16): it can never scale",
        {"answer_hpa": HPA.format(low=2, target=60).replace("'apps/v1'", "'extensions/v1beta1'")},
        {"test_hpa_bounds": 1},
    ),
    Planted(
        "an autoscaler on one container's CPU (another valid shape), aiming at 80 %",
        {
            "answer_hpa": HPA.format(low=2, target=80).replace(
                "'type': 'Resource', 'resource': {'name': 'cpu',",
                "'type': 'ContainerResource', 'containerResource': {'container': 'web',"
                " 'name': 'cpu',",
            )
        },
        {"test_hpa_target": 1},
    ),
    Planted(
        "an autoscaler aiming at 80 %",
        {"answer_hpa": HPA.format(low=2, target=80)},
        {"test_hpa_target": 1},
    ),
    Planted(
        "the prediction counts the deleted pods as lost",
        {"answer_predict": "predicted_pods = 2"},
        {"test_prediction": 1},
    ),
    Planted(
        "a budget that lets two of three queue pods go at once",
        budget("{'maxUnavailable': 2, 'selector': {'matchLabels': {'app': 'queue'}}}"),
        {"test_budget_holds": 1},
    ),
    Planted(
        "a budget that keeps every pod: no drain can ever go ahead",
        budget("{'minAvailable': 3, 'selector': {'matchLabels': {'app': 'queue'}}}"),
        {"test_budget_holds": 1},
    ),
    Planted(
        "a budget over the shop's pods, not the queue's",
        budget("{'minAvailable': 2, 'selector': {'matchLabels': {'app': 'shop'}}}"),
        {"test_budget_counts": 1, "test_budget_holds": 1},
    ),
    Planted(
        "an old tutorial's policy/v1beta1 budget (removed in 1.25): never made",
        budget(
            "{'minAvailable': 2, 'selector': {'matchLabels': {'app': 'queue'}}}",
            version="policy/v1beta1",
        ),
        {"test_budget_counts": 1, "test_budget_holds": 1},
    ),
]

ZERO_DOWNTIME = (
    "def zero_downtime():\n"
    "    container = {{'name': 'web', 'image': '{image}'{probe}{pre_stop}}}\n"
    "    return {{'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {{'name': 'web'}},"
    " 'spec': {{'replicas': 3, 'strategy': {{'rollingUpdate': {{'maxSurge': 1, 'maxUnavailable': 0}}}},"
    " 'selector': {{'matchLabels': {{'app': 'web'}}}}, 'template': {{'metadata': {{'labels': {{'app': 'web'}}}},"
    " 'spec': {{'terminationGracePeriodSeconds': 10, 'containers': [container]}}}}}}}}\n\n\n"
    "k8s.apply(zero_downtime(), ns)\n"
    "k8s.wait('deployment/web', 'Complete', ns, timeout=90)"
)
PROBE = ", 'readinessProbe': {'httpGet': {'path': '/healthz', 'port': 80}, 'periodSeconds': 1}"
PRE_STOP = ", 'lifecycle': {'preStop': {'sleep': {'seconds': 3}}}"

RECREATE = "def recreate_strategy():\n    return %s"

PLANTED["05-rolling-updates"] = [
    Planted(
        "a readiness probe but no preStop pause: old pods drop requests",
        {
            "answer_zero_downtime": ZERO_DOWNTIME.format(
                image="course/web:v1", probe=PROBE, pre_stop=""
            )
        },
        {"test_update_drops_nothing": 2},
    ),
    Planted(
        "a preStop pause but no readiness probe: safe only by luck",
        {
            "answer_zero_downtime": ZERO_DOWNTIME.format(
                image="course/web:v1", probe="", pre_stop=PRE_STOP
            )
        },
        {"test_update_drops_nothing": 2},
    ),
    Planted(
        "the end state pasted: already on v2",
        {
            "answer_zero_downtime": ZERO_DOWNTIME.format(
                image="course/web:v2", probe=PROBE, pre_stop=PRE_STOP
            )
        },
        {"test_web_ready": 1, "test_update_drops_nothing": 2},
    ),
    Planted(
        "two extra pods allowed",
        {"answer_strategy": "def strategy():\n    return {'maxSurge': 2, 'maxUnavailable': 0}"},
        {"test_strategy_shape": 1, "test_strategy_holds": 1},
    ),
    Planted(
        "25% of each: maxSurge rounds up to 2 extra pods",
        {
            "answer_strategy": "def strategy():\n"
            "    return {'maxSurge': '25%', 'maxUnavailable': '25%'}"
        },
        {"test_strategy_shape": 1, "test_strategy_holds": 1},
    ),
    Planted(
        "set the image back instead of rolling back",
        {
            "answer_rollback": "k8s.set_image('site', 'web', 'course/web:v2', ns)\n"
            "k8s.wait('deployment/site', 'Complete', ns, timeout=90)"
        },
        {"test_rolled_back": 1, "test_rollback_history": 1},
    ),
    Planted(
        "rolled back to the wrong revision",
        {
            "answer_rollback": "k8s.rollback('site', ns, revision=1)\n"
            "k8s.wait('deployment/site', 'Complete', ns, timeout=90)"
        },
        {"test_rolled_back": 1, "test_rollback_history": 1},
    ),
    Planted(
        "rolled back to the previous revision, not to 'second'",
        {
            "answer_rollback": "k8s.rollback('site', ns)\n"
            "k8s.wait('deployment/site', 'Complete', ns, timeout=90)"
        },
        {"test_rolled_back": 1, "test_rollback_history": 1},
    ),
    Planted(
        "revision 2's template applied again: a forward roll, not a rollback",
        {
            "answer_rollback": "k8s.apply(web_app('site', 2, 'course/web:v2'), ns)\n"
            "k8s.wait('deployment/site', 'Complete', ns, timeout=90)"
        },
        {"test_rollback_history": 1},
    ),
    Planted(
        "maxSurge rounded down",
        {"answer_predict": "predicted_peak = 12"},
        {"test_prediction": 1},
    ),
    Planted(
        "a prediction that claims to equal anything",
        {"answer_predict": LYING + "predicted_peak = YesNumber(13)"},
        {"test_prediction": 1},
    ),
    Planted(
        "cache's pods deleted instead of a restart: new pods, no rollout",
        {
            "answer_restart": "for pod in k8s.pods(ns, selector='app=cache').column('name'):\n"
            "    k8s.delete(f'pod/{pod}', ns)\n"
            "k8s.wait('deployment/cache', 'Complete', ns)"
        },
        {"test_restarted": 1},
    ),
    Planted(
        "all old pods unavailable at once: a rolling update that still overlaps",
        {
            "answer_recreate": RECREATE % "{'type': 'RollingUpdate', 'rollingUpdate':"
            " {'maxUnavailable': '100%', 'maxSurge': 0}}"
        },
        {"test_recreate": 1},
    ),
]

CLAIM = (
    "def page_volume():\n"
    "    return {'apiVersion': 'v1', 'kind': 'PersistentVolume', 'metadata': {'name': VOLUME},"
    " 'spec': {'storageClassName': 'manual', 'capacity': {'storage': '1Gi'},"
    " 'accessModes': ['ReadWriteOnce'], 'persistentVolumeReclaimPolicy': 'Retain',"
    " 'hostPath': {'path': FOLDER, 'type': 'DirectoryOrCreate'}}}\n\n\n"
    "def page_claim():\n"
    "    return {'apiVersion': 'v1', 'kind': 'PersistentVolumeClaim', 'metadata': {'name': 'page'},"
    " 'spec': {%s'accessModes': ['%s'], 'resources': {'requests': {'storage': '1Gi'}}}}\n\n\n"
    "k8s.apply(page_volume())\n"
    "k8s.apply(page_claim(), ns)"
)
PAGE_POD = (
    "page_pod = {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'page'}, 'spec': {"
    "'terminationGracePeriodSeconds': 1, 'volumes': [{'name': 'files', 'emptyDir': {}},"
    " {'name': 'claim', 'persistentVolumeClaim': {'claimName': 'page'}}],"
    " 'containers': [{'name': 'web', 'image': 'course/web:v1', 'volumeMounts':"
    " [{'name': 'files', 'mountPath': '/www/files'}, {'name': 'claim', 'mountPath': '/data'}]}]}}\n"
    "k8s.apply(page_pod, ns)\n"
    "k8s.wait('pod/page', 'Ready', ns)\n"
    "k8s.exec('page', f\"echo 'Kept by {ns}' > /www/files/index.html\", ns)"
)
PAGE_POD_ON_THE_CLAIM = (
    "page_pod = {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'page'}, 'spec': {"
    "'terminationGracePeriodSeconds': 1,"
    " 'volumes': [{'name': 'files', 'persistentVolumeClaim': {'claimName': 'page'}}],"
    " 'containers': [{'name': 'web', 'image': 'course/web:v1', 'volumeMounts':"
    " [{'name': 'files', 'mountPath': '/www/files'}]}]}}\n"
    "k8s.apply(page_pod, ns)\n"
    "k8s.wait('pod/page', 'Ready', ns, timeout=10)\n"
    "k8s.exec('page', f\"echo 'Kept by {ns}' > /www/files/index.html\", ns)"
)
SHARED_CLAIM = (
    "def notes_statefulset():\n"
    "    mount = [{'name': 'data', 'mountPath': '/www/files'}]\n"
    "    volumes = [{'name': 'data', 'persistentVolumeClaim': {'claimName': 'shared'}}]\n"
    "    template = {'metadata': {'labels': {'app': 'notes'}}, 'spec': {'volumes': volumes,"
    " 'containers': [{'name': 'web', 'image': 'course/web:v1', 'volumeMounts': mount}]}}\n"
    "    spec = {'serviceName': 'notes', 'replicas': 2, 'selector': {'matchLabels': {'app': 'notes'}},"
    " 'template': template}\n"
    "    return {'apiVersion': 'apps/v1', 'kind': 'StatefulSet', 'metadata': {'name': 'notes'}, 'spec': spec}\n\n\n"
    "k8s.apply({'apiVersion': 'v1', 'kind': 'PersistentVolumeClaim', 'metadata': {'name': 'shared'},"
    " 'spec': {'accessModes': ['ReadWriteOnce'], 'resources': {'requests': {'storage': '50Mi'}}}}, ns)\n"
    "k8s.apply(notes_statefulset(), ns)\n"
    "k8s.wait('statefulset/notes', '{.status.readyReplicas}=2', ns, timeout=120)\n"
    "for pod in ('notes-0', 'notes-1'):\n"
    "    k8s.exec(pod, f'echo {pod} > /www/files/whoami', ns)"
)

PAGE_AT_START = (
    "page_pod = {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'page'}, 'spec': {"
    "'terminationGracePeriodSeconds': 1, 'volumes': [{'name': 'files', 'emptyDir': {}},"
    " {'name': 'claim', 'persistentVolumeClaim': {'claimName': 'page'}}],"
    " 'containers': [{'name': 'web', 'image': 'course/web:v1', 'command': ['sh', '-c',"
    " f\"echo 'Kept by {ns}' > /www/files/index.html; exec /start.sh\"], 'volumeMounts':"
    " [{'name': 'files', 'mountPath': '/www/files'}, {'name': 'claim', 'mountPath': '/data'}]}]}}\n"
    "k8s.apply(page_pod, ns)\n"
    "k8s.wait('pod/page', 'Ready', ns)"
)
WHOAMI_AT_START = (
    "def notes_statefulset():\n"
    "    start = 'mkdir -p /www/files; hostname > /www/files/whoami; exec /start.sh'\n"
    "    claim = {'metadata': {'name': 'data'}, 'spec': {'accessModes': ['ReadWriteOnce'],"
    " 'resources': {'requests': {'storage': '50Mi'}}}}\n"
    "    container = {'name': 'web', 'image': 'course/web:v1', 'command': ['sh', '-c', start],"
    " 'volumeMounts': [{'name': 'data', 'mountPath': '/decoy'}]}\n"
    "    template = {'metadata': {'labels': {'app': 'notes'}}, 'spec': {"
    "'terminationGracePeriodSeconds': 1, 'containers': [container]}}\n"
    "    spec = {'serviceName': 'notes', 'replicas': 2, 'selector': {'matchLabels': {'app': 'notes'}},"
    " 'template': template, 'volumeClaimTemplates': [claim]}\n"
    "    return {'apiVersion': 'apps/v1', 'kind': 'StatefulSet', 'metadata': {'name': 'notes'}, 'spec': spec}\n\n\n"
    "k8s.apply(notes_statefulset(), ns)\n"
    "k8s.wait('statefulset/notes', '{.status.readyReplicas}=2', ns, timeout=120)"
)
WRONG_VOLUME = (
    "def page_volume():\n"
    "    return {'apiVersion': 'v1', 'kind': 'PersistentVolume', 'metadata': {'name': VOLUME},"
    " 'spec': {'storageClassName': 'manual', 'capacity': {'storage': '2Gi'},"
    " 'accessModes': ['ReadWriteOnce'], 'persistentVolumeReclaimPolicy': 'Delete',"
    " 'hostPath': {'path': FOLDER, 'type': 'DirectoryOrCreate'}}}\n\n\n"
    "def page_claim():\n"
    "    return {'apiVersion': 'v1', 'kind': 'PersistentVolumeClaim', 'metadata': {'name': 'page'},"
    " 'spec': {'storageClassName': 'manual', 'volumeName': VOLUME, 'accessModes': ['ReadWriteOnce'],"
    " 'resources': {'requests': {'storage': '1Gi'}}}}\n\n\n"
    "k8s.apply(page_volume())\n"
    "k8s.apply(page_claim(), ns)"
)

# Part F of 06: shop_objects() with the pod's mounts, volumes and command given.
SHOP = """
import secrets


def shop_objects():
    config = {{'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {{'name': 'shop-config'}},
              'data': {{'motd': f'Welcome to {{ns}}'}}}}
    token = {{'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {{'name': 'shop-token'}},
             'stringData': {{'token': secrets.token_hex(16)}}}}
    web = {{'name': 'web', 'image': 'course/web:v1', 'volumeMounts': {mounts}{extra}}}
    pod = {{'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {{'name': 'shop'}},
           'spec': {{'containers': [web], 'volumes': {volumes}}}}}
    return [config, token, pod]


for manifest in shop_objects():
    k8s.apply(manifest, ns)
"""
MOTD_MOUNT = "{'name': 'config', 'mountPath': '/www/motd.txt', 'subPath': 'motd'}"
TOKEN_MOUNT = "{'name': 'token', 'mountPath': '/etc/shop', 'readOnly': True}"
CONFIG_VOLUME = "{'name': 'config', 'configMap': {'name': 'shop-config'}}"
TOKEN_VOLUME = "{'name': 'token', 'secret': {'secretName': 'shop-token', 'defaultMode': 0o400}}"


def shop(
    *,
    mounts: str = f"[{MOTD_MOUNT}, {TOKEN_MOUNT}]",
    volumes: str = f"[{CONFIG_VOLUME}, {TOKEN_VOLUME}]",
    extra: str = "",
) -> dict[str, str]:
    return {"answer_shop": SHOP.format(mounts=mounts, volumes=volumes, extra=extra)}


PLANTED["06-volumes"] = [
    Planted(
        "a volume of 2Gi that is deleted with its claim: it binds, but is not what was asked",
        {"answer_volume": WRONG_VOLUME},
        {"test_manifests_valid": 1, "test_claim_bound": 1},
    ),
    Planted(
        "the page written at every start into an emptyDir, the claim mounted as a decoy",
        {"answer_page_pod": PAGE_AT_START},
        {"test_page_on_the_claim": 1, "test_page_persists": 1},
    ),
    Planted(
        "whoami written at every start, each replica's claim mounted as a decoy",
        {"answer_statefulset": WHOAMI_AT_START},
        {"test_statefulset_keeps_data": 1},
    ),
    Planted(
        "the claim asks ReadWriteMany, which the volume does not offer",
        {
            "answer_volume": CLAIM
            % ("'storageClassName': 'manual', 'volumeName': VOLUME, ", "ReadWriteMany"),
            # The page pod can never start: a short wait keeps this run short.
            "answer_page_pod": PAGE_POD_ON_THE_CLAIM,
        },
        {
            "test_manifests_valid": 1,
            "test_claim_bound": 1,
            "test_page_served": 1,
            "test_page_persists": 1,
        },
    ),
    Planted(
        "a claim with no class, while no volume without a class exists",
        {"answer_volume": CLAIM % ("", "ReadWriteOnce")},
        {"test_manifests_valid": 1, "test_claim_bound": 1},
    ),
    Planted(
        "the page written to an emptyDir",
        {"answer_page_pod": PAGE_POD},
        {"test_page_on_the_claim": 1, "test_page_persists": 1},
    ),
    Planted(
        "one claim shared by every replica",
        {"answer_statefulset": SHARED_CLAIM},
        {"test_statefulset_claims": 1, "test_statefulset_keeps_data": 1},
    ),
    Planted(
        "a missing class predicted as Lost",
        {
            "answer_predict": "predicted_phases = {'default class': 'Pending',"
            " 'manual, matching volume': 'Bound', 'missing class': 'Lost'}"
        },
        {"test_predicted_phases": 1},
    ),
    Planted(
        "the motd as a folder mounted over /www: the page is gone",
        shop(
            mounts="[{'name': 'config', 'mountPath': '/www'}, " + TOKEN_MOUNT + "]",
            volumes="[{'name': 'config', 'configMap': {'name': 'shop-config', 'items':"
            " [{'key': 'motd', 'path': 'motd.txt'}]}}, " + TOKEN_VOLUME + "]",
        ),
        {"test_motd_served": 1},
    ),
    Planted(
        "the motd written by the container's command, the ConfigMap never mounted",
        shop(
            mounts=f"[{TOKEN_MOUNT}]",
            volumes=f"[{TOKEN_VOLUME}]",
            extra=", 'command': ['sh', '-c', 'mkdir -p /www; echo Welcome to ' + ns"
            " + ' > /www/motd.txt; exec /start.sh']",
        ),
        {"test_motd_served": 1},
    ),
    Planted(
        "the token copied in at start from an environment variable, the Secret never mounted",
        shop(
            mounts=f"[{MOTD_MOUNT}]",
            volumes=f"[{CONFIG_VOLUME}]",
            extra=", 'env': [{'name': 'TOKEN', 'valueFrom': {'secretKeyRef': {'name':"
            " 'shop-token', 'key': 'token'}}}], 'command': ['sh', '-c', 'mkdir -p /etc/shop;"
            ' printf %s "$TOKEN" > /etc/shop/token; chmod 400 /etc/shop/token; exec /start.sh\']',
        ),
        {"test_token_mounted": 1},
    ),
    Planted(
        "the Secret mounted with the default mode (0644: anyone in the container reads it)",
        shop(
            volumes=f"[{CONFIG_VOLUME}, {{'name': 'token', 'secret': {{'secretName': 'shop-token'}}}}]"
        ),
        {"test_token_mounted": 1},
    ),
]


def solution_answer(assignment: str, grade_id: str) -> str:
    """The solution's code of one answer cell, without nbgrader's solution markers: planted
    answers that change one thing in a long answer start from it."""
    notebook = json.loads((SOLUTIONS / assignment / f"{assignment}.ipynb").read_text())
    for cell in notebook["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            lines = "".join(cell["source"]).splitlines()
            return "\n".join(line for line in lines if "### " not in line)
    raise KeyError(f"{assignment} has no answer cell {grade_id}")


def chart(old: str = "", new: str = "") -> dict[str, str]:
    """07's chart answer, with one piece of its text replaced (which must be there)."""
    source = solution_answer("07-helm", "answer_chart")
    assert old in source, f"the solution's chart has no {old!r}"
    return {"answer_chart": source.replace(old, new, 1)}


PLANTED["07-helm"] = [
    Planted(
        "the image tag written into the template: values.yaml has a knob that does nothing",
        chart('image: "course/web:{{ .Values.image.tag }}"', "image: course/web:v1"),
        {"test_chart_values": 2, "test_upgraded": 1},
    ),
    Planted(
        "no readiness probe and no preStop pause: an upgrade safe only by luck",
        chart(
            "          readinessProbe:\n            httpGet:\n              path: /healthz\n"
            "              port: 80\n            periodSeconds: 1\n          lifecycle:\n"
            "            preStop:\n              sleep:\n                seconds: 3\n"
        ),
        {"test_upgrade_drops_nothing": 1},
    ),
    Planted(
        "the objects applied with kubectl: no release for Helm to upgrade or roll back",
        {
            "answer_install": "shop_chart = write_chart(chart)\n"
            "k8s.apply(helm.template(shop_chart, release='shop', set={'replicas': 3,"
            " 'message': 'Opening soon'}), ns)\n"
            "k8s.wait('deployment/shop', 'Complete', ns, timeout=90)"
        },
        {
            "test_release_installed": 1,
            "test_release_values": 1,
            "test_upgraded": 1,
            "test_upgrade_drops_nothing": 1,
            "test_rolled_back": 1,
            "test_rollback_history": 1,
        },
    ),
    Planted(
        "installed with the default replicas, then scaled by hand behind Helm's back (the next"
        " upgrade and rollback then conflict with the hand-made change)",
        {
            "answer_install": "shop_chart = write_chart(chart)\n"
            "helm.install('shop', shop_chart, set={'message': 'Opening soon'})\n"
            "k8s.scale('shop', 3, ns)\n"
            "k8s.wait('deployment/shop', 'Complete', ns, timeout=90)"
        },
        {
            "test_release_values": 1,
            "test_upgraded": 1,
            "test_upgrade_drops_nothing": 1,
            "test_rolled_back": 1,
            "test_rollback_history": 1,
        },
    ),
    Planted(
        "upgraded without the release's values: the message and replicas fall back to defaults",
        {"answer_upgrade": "helm.upgrade('shop', shop_chart, set={'image.tag': 'v2'})"},
        {"test_upgraded": 1},
    ),
    Planted(
        "a forward upgrade to the first revision's values instead of a rollback",
        {
            "answer_rollback": "helm.upgrade('shop', shop_chart, set={'image.tag': 'v1',"
            " 'replicas': 3, 'message': 'Opening soon'})"
        },
        {"test_rollback_history": 1},
    ),
    Planted(
        "rolled back to the previous revision, not the installed one",
        {"answer_rollback": "helm.rollback('shop', helm.status('shop').revision - 1)"},
        {"test_rolled_back": 1, "test_rollback_history": 1},
    ),
    Planted(
        "the second release installed from the folder: nothing pushed",
        {
            "answer_registry": "helm.install('shop-registry', shop_chart, set={'replicas': 1})",
        },
        {"test_pushed": 1},
    ),
    Planted(
        "predictions: rollback reuses the old number; upgrade keeps --set values",
        {"answer_predict": "predicted_revision = 3\npredicted_replicas = 4"},
        {"test_predicted_revision": 1, "test_predicted_replicas": 1},
    ),
]
