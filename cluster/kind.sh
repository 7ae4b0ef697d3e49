#!/usr/bin/env bash
# kind backend: up | down | status. Thin wrapper so `make cluster CLUSTER=kind` reads like kind.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
name=cloud-native-course
ok() { printf ' ✓ %s\n' "$*"; }
fail() { printf ' ✗ %s\n' "$*" >&2; exit 1; }
command -v kind >/dev/null || fail "kind is not installed: https://kind.sigs.k8s.io/docs/user/quick-start/#installation (or use the conda environment)"
exists() { kind get clusters 2>/dev/null | grep -qx "$name"; }

case "${1:-up}" in
  up)
    if exists; then ok "kind cluster $name already exists"; exit 0; fi
    mkdir -p "$repo/cluster/volumes"
    config=$(mktemp)
    sed "s#hostPath: cluster/volumes#hostPath: $repo/cluster/volumes#" "$repo/cluster/kind.yaml" > "$config"
    kind create cluster --config "$config" --wait 120s
    rm -f "$config"
    ok "kind cluster $name is up; next: make images (loads the course images), then make lab"
    ;;
  down) exists && kind delete cluster --name "$name"; ok "kind cluster $name deleted" ;;
  status)
    exists || fail "no kind cluster $name; start it with: make cluster"
    kubectl --context "kind-$name" get nodes -o wide
    ;;
  *) fail "usage: $0 up|down|status" ;;
esac
