#!/usr/bin/env bash
# Makes sure a container runtime answers: containerd (with its CRI plugin, for the kubelet) and
# dockerd on top of that same containerd. Starts them only when nothing answers.
#
# Used on Linux as root (CI, offline Linux). On a laptop with Docker Desktop or a systemd-managed
# dockerd it only checks, and tells you how to start Docker if it is not running.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster/local/versions.sh
source "$here/versions.sh"
# shellcheck source=cluster/lib.sh
source "$here/../lib.sh"
pids=$STATE_DIR/pids

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }
containerd_answers() { timeout 5 ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; }

write_containerd_config() {
  mkdir -p /etc/containerd "$LOG_DIR"
  cat > "$CONTAINERD_CONFIG" <<TOML
# Written by cluster/local/runtime.sh for the course's local cluster.
version = 2
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Some sandboxes (this one too) deny CAP_SYS_RESOURCE, so the kubelet's negative OOM scores
  # (-998 for pod sandboxes) would make runc fail; keep them no lower than containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$REGISTRY_CONFIG_DIR"
TOML
  # No registry is reachable from the course cluster: point the usual ones at a closed local
  # port, so a wrong image name fails at once (ErrImagePull) and nothing leaves the machine.
  for registry in docker.io registry.k8s.io quay.io ghcr.io gcr.io registry.gitlab.com public.ecr.aws; do
    mkdir -p "$REGISTRY_CONFIG_DIR/$registry"
    printf 'server = "http://127.0.0.1:9"\n[host."http://127.0.0.1:9"]\n  capabilities = ["pull", "resolve"]\n' \
      > "$REGISTRY_CONFIG_DIR/$registry/hosts.toml"
  done
}

start_containerd() {
  containerd_answers && { ok "containerd answers on $CONTAINERD_SOCK"; return; }
  command -v containerd >/dev/null || fail "containerd is not installed (Debian: apt-get install containerd)"
  write_containerd_config
  step "Starting containerd (log: $LOG_DIR/containerd.log)"
  mkdir -p "$pids"
  nohup containerd --config "$CONTAINERD_CONFIG" >>"$LOG_DIR/containerd.log" 2>&1 &
  echo $! >"$pids/containerd.pid"
  wait_for_component containerd "$pids/containerd.pid" "$LOG_DIR/containerd.log" 30 containerd_answers
  ok "containerd started"
}

start_dockerd() {
  command -v dockerd >/dev/null || fail "dockerd is not installed (Debian: apt-get install docker.io)"
  step "Starting dockerd on the shared containerd (log: $LOG_DIR/dockerd.log)"
  mkdir -p "$pids"
  nohup dockerd --containerd="$CONTAINERD_SOCK" >>"$LOG_DIR/dockerd.log" 2>&1 &
  echo $! >"$pids/dockerd.pid"
  wait_for_component dockerd "$pids/dockerd.pid" "$LOG_DIR/dockerd.log" 60 docker_answers
  ok "Docker engine started"
}

if docker_answers; then
  ok "Docker engine answers"
  [ "${1:-}" = --with-containerd ] && start_containerd
  exit 0
fi
if [ "$(uname -s)" != Linux ] || [ "$(id -u)" != 0 ]; then
  fail "no Docker engine answers. Start Docker Desktop (macOS/Windows) or run: sudo systemctl start docker"
fi
mkdir -p "$LOG_DIR"
start_containerd
start_dockerd
