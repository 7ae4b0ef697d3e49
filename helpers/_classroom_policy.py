"""The admission policy that holds a classroom student's account to its own things.

RBAC names objects by exact name only; a student's volumes (chapter 06) are cluster-wide and
named by the student, so which ones are theirs is said here, as a ValidatingAdmissionPolicy the
API server checks on every request of that account (CEL rules, one message each).
"""

from __future__ import annotations

import json
from typing import Any

from ._cluster import NODE_VOLUMES_DIR

ACCOUNTS = "course-classroom"  # the namespace of the students' ServiceAccounts
LABEL = "course.classroom"
OWN = "student"  # the name of the quota and limit range the classroom gives each namespace


def admission_policy(
    label: str, namespaces: list[str], role: str = "student"
) -> list[dict[str, Any]]:
    """ValidatingAdmissionPolicies (and their bindings) for one student's account: what RBAC
    cannot say, because it names objects by exact name only. One policy per kind of object (the
    API server checks each rule against that kind's schema); each rule says what is allowed."""
    volumes = NODE_VOLUMES_DIR
    writes = "request.operation == 'DELETE' || "  # a rule about the new object skips deletes
    by_kind: dict[str, tuple[list[dict[str, Any]], list[tuple[str, str]]]] = {
        "quotas": (
            [{"operations": ["UPDATE", "DELETE"], "resources": ["resourcequotas", "limitranges"]}],
            [
                (
                    f"oldObject.metadata.name != '{OWN}'",
                    f"the quota and limit range named {OWN} are your instructor's: make a quota "
                    "of your own under another name",
                )
            ],
        ),
        "volumes": (
            [
                {
                    "operations": ["CREATE", "UPDATE", "DELETE"],
                    "resources": ["persistentvolumes"],
                }
            ],
            [
                (
                    "request.operation != 'DELETE' || "
                    "variables.mine.exists(n, oldObject.metadata.name.startsWith(n + '-'))",
                    "you can delete only your own volumes: their names start with one of your "
                    "namespaces (<namespace>-...)",
                ),
                (
                    writes + "variables.mine.exists(n, object.metadata.name.startsWith(n + '-'))",
                    "a volume of yours is named after one of your namespaces: <namespace>-<name>",
                ),
                (
                    writes + "(has(object.spec.hostPath) && "
                    "!object.spec.hostPath.path.contains('..') && variables.mine.exists(n, "
                    f"object.spec.hostPath.path.startsWith('{volumes}/' + n + '/')))",
                    f"a volume of yours is a hostPath folder under {volumes}/<namespace>/ (one "
                    "of your namespaces), and nothing else",
                ),
                (
                    writes + "(has(object.spec.storageClassName) && "
                    "object.spec.storageClassName == 'manual')",
                    'a volume of yours is of the class "manual": in another class it could be '
                    "given to another student's claim",
                ),
                (
                    writes + "!has(object.spec.claimRef) || "
                    "object.spec.claimRef.namespace in variables.mine",
                    "a volume of yours can be reserved (claimRef) only for a claim in your "
                    "namespaces",
                ),
            ],
        ),
        "claims": (
            [{"operations": ["CREATE"], "resources": ["persistentvolumeclaims"]}],
            [
                (
                    "has(object.spec.volumeName) && object.spec.volumeName != '' "
                    "? variables.mine.exists(n, object.spec.volumeName.startsWith(n + '-')) "
                    ": !(has(object.spec.storageClassName) && "
                    "object.spec.storageClassName == 'manual')",
                    'a claim of the class "manual" names your volume (spec.volumeName: '
                    "<namespace>-...): without it, it could take another student's volume",
                )
            ],
        ),
    }
    documents: list[dict[str, Any]] = []
    for kind, (resources, rules) in by_kind.items():
        name = f"course-student-{label}-{kind}"
        policy = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name, "labels": {LABEL: role}},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {"apiGroups": [""], "apiVersions": ["v1"], **rule} for rule in resources
                    ]
                },
                "matchConditions": [
                    {
                        "name": "this-student",
                        "expression": "request.userInfo.username == "
                        f"'system:serviceaccount:{ACCOUNTS}:{label}'",
                    }
                ],
                "variables": [{"name": "mine", "expression": json.dumps(sorted(namespaces))}],
                "validations": [
                    {
                        "expression": expression,
                        "message": f"Classroom: {message}.",
                        "reason": "Forbidden",
                    }
                    for expression, message in rules
                ],
            },
        }
        binding = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name, "labels": {LABEL: role}},
            "spec": {"policyName": name, "validationActions": ["Deny"]},
        }
        documents += [policy, binding]
    return documents
