#!/usr/bin/env bash
# kind backend: up | down | status. Thin wrapper so `make cluster CLUSTER=kind` reads like kind.
#
# Two nodes (cluster/kind.yaml): a control plane and a worker, each with cluster/volumes mounted.
# kind brings its own CoreDNS and local-path storage (StorageClass "standard"); `up` adds
# metrics-server from the same manifest as the local cluster (cluster/addons/metrics-server.yaml),
# with an image built from the Go module proxy (cluster/addons/build.sh) and loaded into the nodes.
#
# KIND_NODE_IMAGE=IMAGE replaces the pinned node image of cluster/kind.yaml. A course/kind-node:*
# image is the one built on this machine with no registry (cluster/kind/node-image.sh, used by
# CI): it is built, or brought up to date, first.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=cluster/lib.sh
source "$repo/cluster/lib.sh"
# shellcheck source=cluster/local/versions.sh
source "$repo/cluster/local/versions.sh"
# shellcheck source=cluster/kind/versions.sh
source "$repo/cluster/kind/versions.sh"
# shellcheck source=cluster/addons/common.sh
source "$repo/cluster/addons/common.sh"
RUN_LOG=${TMPDIR:-/tmp}/cloud-native-course-kind.log
# kind on PATH, else the one cluster/tools.sh built (needed offline, where the node image is built)
if ! command -v kind >/dev/null && [ -x "$KIND_BIN_DIR/kind" ]; then PATH=$KIND_BIN_DIR:$PATH; fi
if ! command -v kind >/dev/null && [ -n "${KIND_NODE_IMAGE:-}" ] && command -v go >/dev/null; then
  bash "$repo/cluster/tools.sh" kind
  PATH=$KIND_BIN_DIR:$PATH
fi
command -v kind >/dev/null || fail "kind is not installed: https://kind.sigs.k8s.io/docs/user/quick-start/#installation (or use the conda environment)"
# Where root lacks a capability (this course's CI), Docker cannot start --privileged containers:
# kind then runs Docker through cluster/kind/docker-shim (see the comment at its top).
if bash "$repo/cluster/kind/docker-shim/needed"; then PATH=$repo/cluster/kind/docker-shim:$PATH; fi
# Where the nodes' manual volumes live on this machine: cluster/volumes for the learner's
# cluster, a folder of its own for any other (helpers/_cluster.py's volumes_folder agrees).
volumes_dir() {
  if [ "$KIND_CLUSTER_NAME" = cloud-native-course ]; then echo "$repo/cluster/volumes"
  else echo "$repo/cluster/volumes-$KIND_CLUSTER_NAME"; fi
}
exists() { kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER_NAME"; }
kubectl() { command kubectl --context "kind-$KIND_CLUSTER_NAME" "$@"; }

load_image() { # IMAGE: into the kind node's containerd
  # Docker Desktop's containerd image store breaks `kind load docker-image`; an archive always works.
  kind load docker-image --name "$KIND_CLUSTER_NAME" "$1" && return 0
  local archive rc=0
  archive=$(mktemp)
  { docker save -o "$archive" "$1" && kind load image-archive --name "$KIND_CLUSTER_NAME" "$archive"; } || rc=$?
  rm -f "$archive"
  return "$rc"
}

ensure_metrics_server() {
  local running
  running=$(kubectl -n kube-system get deploy metrics-server -o 'jsonpath={.spec.template.spec.containers[0].image}' 2>/dev/null) || running=
  if [ "$running" = "$METRICS_SERVER_IMAGE" ]; then
    ok "metrics-server $METRICS_SERVER_VERSION in place"
    return 0
  fi
  bash "$repo/cluster/addons/build.sh" metrics-server
  step "Loading $METRICS_SERVER_IMAGE into kind and applying cluster/addons/metrics-server.yaml"
  run load_image "$METRICS_SERVER_IMAGE"
  local manifest
  manifest=$(render_manifest "$repo/cluster/addons/metrics-server.yaml")
  run kubectl apply -f - <<<"$manifest"
  wait_for_rollout kube-system deploy/metrics-server 120
  wait_for_apiservice v1beta1.metrics.k8s.io 60
  ok "metrics-server ready (kubectl top answers after its first scrape, ~15 s)"
}

# kind's own network (kindnet) enforces NetworkPolicy; the course's offline node image runs flannel,
# which does not: there the course's enforcer does it, so a policy means the same on every cluster.
ensure_network_policies() {
  if kubectl -n kube-system get daemonset kindnet >/dev/null 2>&1; then
    ok "NetworkPolicy enforced by kindnet"
    return 0
  fi
  local running
  running=$(kubectl -n kube-system get ds kube-network-policies -o 'jsonpath={.spec.template.spec.containers[0].image}' 2>/dev/null) || running=
  if [ "$running" = "$NETWORK_POLICIES_IMAGE" ]; then
    ok "kube-network-policies $NETWORK_POLICIES_VERSION in place"
    return 0
  fi
  bash "$repo/cluster/addons/build.sh" kube-network-policies
  step "Loading $NETWORK_POLICIES_IMAGE into kind and applying cluster/addons/network-policies.yaml"
  run load_image "$NETWORK_POLICIES_IMAGE"
  local manifest
  manifest=$(render_manifest "$repo/cluster/addons/network-policies.yaml")
  run kubectl apply -f - <<<"$manifest"
  wait_for_rollout kube-system ds/kube-network-policies 120
  ok "NetworkPolicy enforced by kube-network-policies $NETWORK_POLICIES_VERSION"
}

case "${1:-up}" in
  up)
    command -v kubectl >/dev/null || fail "kubectl is not installed: https://kubernetes.io/docs/tasks/tools/ (or use the conda environment)"
    if exists; then
      ok "kind cluster $KIND_CLUSTER_NAME already exists"
    else
      image_flag=()
      if [ -n "${KIND_NODE_IMAGE:-}" ]; then
        case $KIND_NODE_IMAGE in course/kind-node:*) bash "$repo/cluster/kind/node-image.sh" "$KIND_NODE_IMAGE" ;; esac
        image_flag=(--image "$KIND_NODE_IMAGE")
      fi
      volumes=$(volumes_dir)
      mkdir -p "$volumes"
      config=$(mktemp)
      sed "s#hostPath: cluster/volumes#hostPath: $volumes#" "$repo/cluster/kind.yaml" >"$config"
      kind create cluster --name "$KIND_CLUSTER_NAME" --config "$config" "${image_flag[@]}" --wait 180s
      rm -f "$config"
    fi
    ensure_metrics_server
    ensure_network_policies
    ok "kind cluster $KIND_CLUSTER_NAME is up; next: make images (loads the course images), then make lab"
    ;;
  down)
    if exists; then kind delete cluster --name "$KIND_CLUSTER_NAME"; fi
    ok "kind cluster $KIND_CLUSTER_NAME deleted"
    ;;
  status)
    exists || fail "no kind cluster $KIND_CLUSTER_NAME; start it with: make cluster"
    kubectl get nodes -o wide
    ;;
  *) fail "usage: $0 up|down|status" ;;
esac
