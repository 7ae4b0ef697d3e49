"""The objects of a classroom (``_classroom.py`` applies them): what every student shares, what
each student gets (an account, namespaces with a quota and limits, an admission policy), and the
kubeconfig that holds a student's token."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from ._classroom_policy import ACCOUNTS, LABEL, OWN, admission_policy
from ._identity import Chapter, learner_label

STUDENTS_GROUP = f"system:serviceaccounts:{ACCOUNTS}"
# limits.memory: what one student's pods may use at once, so no student's pods take the node
QUOTA = {
    "pods": "30",
    "persistentvolumeclaims": "10",
    "requests.storage": "20Gi",
    "limits.memory": "8Gi",
}
# What a pod in a student's namespace may not do: privileged, host folders, host network.
POD_SECURITY = {
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/warn": "baseline",
}


def shared_objects() -> list[dict[str, Any]]:
    """What every student shares: their accounts' namespace, read access to the cluster's
    nodes, storage and kube-system."""
    labels = {LABEL: "shared"}
    group = [{"kind": "Group", "name": STUDENTS_GROUP, "apiGroup": "rbac.authorization.k8s.io"}]
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ACCOUNTS, "labels": labels},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "course-student", "labels": labels},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["nodes", "persistentvolumes"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["storage.k8s.io"],
                    "resources": ["storageclasses"],
                    "verbs": ["get", "list", "watch"],
                },
                {"apiGroups": ["metrics.k8s.io"], "resources": ["nodes"], "verbs": ["get", "list"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "course-student-quotas", "labels": labels},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["resourcequotas"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "course-student", "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "course-student",
            },
            "subjects": group,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {
                "name": "course-students-view",
                "namespace": "kube-system",
                "labels": labels,
            },
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "view",
            },
            "subjects": group,
        },
    ]


def student_objects(
    student: str, chapters: Iterable[str], pods: int, role: str = "student"
) -> list[dict[str, Any]]:
    """A student's account and namespaces; ``role`` labels them: ``student`` (make classroom)
    or ``grading`` (an account made for one grading, removed after it)."""
    label = learner_label(student)
    account = [{"kind": "ServiceAccount", "name": label, "namespace": ACCOUNTS}]
    namespaces = [Chapter(name, label).namespace for name in chapters]
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": label, "namespace": ACCOUNTS, "labels": {LABEL: role}},
        },
        *admission_policy(label, namespaces, role),  # before the rights it holds to their own
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"course-student-{label}", "labels": {LABEL: role}},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["namespaces"],
                    "resourceNames": namespaces,
                    "verbs": ["get"],
                },
                {  # which volumes are theirs: the admission policy says
                    "apiGroups": [""],
                    "resources": ["persistentvolumes"],
                    "verbs": ["create", "update", "patch", "delete"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"course-student-{label}", "labels": {LABEL: role}},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"course-student-{label}",
            },
            "subjects": account,
        },
    ]
    for chapter_name in chapters:
        chapter = Chapter(chapter_name, label)
        ns = chapter.namespace
        objects += [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "labels": {**chapter.labels, LABEL: role, **POD_SECURITY},
                },
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "student-quotas", "namespace": ns},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "course-student-quotas",
                },
                "subjects": account,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "student", "namespace": ns},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "edit",
                },
                "subjects": account,
            },
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": OWN, "namespace": ns},
                "spec": {"hard": {**QUOTA, "pods": str(pods)}},
            },
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": {"name": OWN, "namespace": ns},
                "spec": {
                    "limits": [
                        {
                            "type": "Container",
                            "defaultRequest": {"cpu": "20m", "memory": "32Mi"},
                            # No CPU limit: CPU is shared, not lost, and a limit would refuse
                            # a request sized to the node (chapter 04). Memory is bounded.
                            "default": {"memory": "256Mi"},
                            "max": {"memory": "2Gi"},
                        }
                    ]
                },
            },
        ]
    return objects


def kubeconfig_text(student: str, server: str, ca: str, token: str, namespace: str) -> str:
    name = f"course-{learner_label(student)}"
    cluster: dict[str, Any] = {"server": server}
    if ca:
        cluster["certificate-authority-data"] = ca
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "course", "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": "course", "user": name, "namespace": namespace}}
        ],
        "current-context": name,
    }
    return yaml.safe_dump(config, sort_keys=False)
