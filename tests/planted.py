"""Planted wrong answers: each replaces answer cells of the solution and names the tests (and
points) it must lose. The nbgrader tests autograde every one of them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Planted:
    name: str
    answers: dict[str, str]  # grade_id of an answer cell -> the wrong code
    loses: dict[str, float] = field(default_factory=dict)  # grade_id of a test -> points lost


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
    Planted(
        "a list that does not follow the cluster",
        {"answer_list_pods": "def list_pod_names(namespace):\n    return ['probe']"},
        {"test_list_pods": 2},
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
        {
            "answer_shipper": "def shipper_manifest():\n"
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
        },
        {"test_sidecar_native": 1},
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

PLANTED["04-deployments"] = [
    Planted(
        "scaled to 3, not 4",
        {"answer_scale": "k8s.scale('shop', 3, ns)\nk8s.wait('deployment/shop', 'Complete', ns)"},
        {"test_scaled": 1, "test_self_heals": 1},
    ),
    Planted(
        "a selector that also takes the admin pods",
        {"answer_service": SERVICE.format(selector="{'tier': 'web'}", port=80)},
        {"test_service_endpoints": 1, "test_service_answers": 1},
    ),
    Planted(
        "the right pods, the wrong target port",
        {"answer_service": SERVICE.format(selector="{'app': 'shop'}", port=8080)},
        {"test_service_answers": 1},
    ),
    Planted(
        "a request one replica too small",
        {
            "answer_request": "def cpu_request(replicas, allocatable):\n"
            "    return f'{allocatable // (replicas + 1)}m'"
        },
        {"test_request_math": 1, "test_request_fits": 1},
    ),
    Planted(
        "an autoscaler that may go down to 1",
        {"answer_hpa": HPA.format(low=1, target=60)},
        {"test_hpa_bounds": 1},
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
]
