#!/usr/bin/env bash
# Stops the local cluster and deletes its state (like `kind delete cluster`). Docker, containerd
# and the cached binaries and images stay, so the next `make cluster` starts in seconds.
# Safe to run at any time: with the cluster up, half up, or already down.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster/local/versions.sh
source "$here/versions.sh"
# shellcheck source=cluster/lib.sh
source "$here/../lib.sh"

for name in kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver etcd; do
  pidfile=$STATE_DIR/pids/$name.pid
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    ok "stopped $name"
  fi
  rm -f "$pidfile" "$STATE_DIR/pids/$name.cmd"
done

# Pods the kubelet left in containerd: kill and remove them, then their network namespaces.
if command -v ctr >/dev/null && ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; then
  for id in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do ctr -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  sleep 0.5
  for id in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do ctr -n k8s.io tasks rm -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr -n k8s.io containers ls -q 2>/dev/null); do ctr -n k8s.io containers rm "$id" >/dev/null 2>&1 || true; done
  ok "removed the cluster's pods from containerd"
fi
for ns in /var/run/netns/cni-*; do
  if [ -e "$ns" ]; then ip netns delete "$(basename "$ns")" 2>/dev/null || true; fi
done
# The kubelet's volume mounts, deepest first. None at all is fine (the cluster was not up).
mounts=$(awk '$2 ~ "^/var/lib/kubelet" {print $2}' /proc/mounts | sort -r)
for mount in $mounts; do umount -l "$mount" 2>/dev/null || true; done
# Dynamically provisioned volumes die with their claims, which were in etcd; static "manual"
# volumes in $VOLUMES_DIR are the learner's and stay.
rm -rf /var/lib/kubelet "$STATE_DIR/etcd" /var/lib/cni/networks/course-pods /tmp/hostpath_pv \
  /var/local-path-provisioner "$STATE_DIR/up.stamp"
ok "local cluster deleted (certificates and volumes in $STATE_DIR kept)"
