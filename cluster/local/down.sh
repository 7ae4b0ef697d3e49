#!/usr/bin/env bash
# Stops the local cluster and deletes its state (like `kind delete cluster`). Docker, containerd
# and the cached binaries stay, so the next `make cluster` starts in seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.sh"
ok() { printf ' ✓ %s\n' "$*"; }

for name in kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver etcd; do
  pidfile="$STATE_DIR/pids/$name.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    ok "stopped $name"
  fi
  rm -f "$pidfile"
done

# Pods the kubelet left in containerd: kill and remove them, then their network namespaces.
if command -v ctr >/dev/null && ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; then
  for id in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do ctr -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  sleep 0.5
  for id in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do ctr -n k8s.io tasks rm -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr -n k8s.io containers ls -q 2>/dev/null); do ctr -n k8s.io containers rm "$id" >/dev/null 2>&1 || true; done
  ok "removed the cluster's pods from containerd"
fi
for ns in /var/run/netns/cni-*; do [ -e "$ns" ] && ip netns delete "$(basename "$ns")" 2>/dev/null; done
grep -o ' /var/lib/kubelet[^ ]*' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
rm -rf /var/lib/kubelet "$STATE_DIR/etcd" "$STATE_DIR/pids" /var/lib/cni/networks/course-pods /tmp/hostpath_pv
ok "local cluster deleted (certificates and volumes in $STATE_DIR kept)"
