#!/usr/bin/env bash
# The course's OCI registry, for charts (chapter 07) and images learners push: distribution's
# `registry` (course/registry, built by cluster/addons/build.sh) in a container published on
# 127.0.0.1:5001 only, its storage in the Docker volume course-registry.
#
#   bash cluster/registry.sh up local   start it, and tell the local cluster's containerd
#   bash cluster/registry.sh up kind    start it, join the kind network, tell every node
#   bash cluster/registry.sh down       stop and remove the container (keeps the volume)
#
# Everywhere the registry's name is localhost:5001: `helm push ... oci://localhost:5001/...`,
# `docker push localhost:5001/...`, and `image: localhost:5001/...` in a pod, which containerd
# resolves to this registry (hosts.toml), on the host or inside a kind node.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster/local/versions.sh
source "$here/local/versions.sh"
# shellcheck source=cluster/lib.sh
source "$here/lib.sh"
# shellcheck source=cluster/addons/common.sh
source "$here/addons/common.sh"
RUN_LOG=$LOG_DIR/registry.log
NAME=course-registry
ADDRESS=localhost:5001

answers() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:5001/v2/" 2>/dev/null; }

start() {
  local running
  running=$(docker inspect -f '{{.Config.Image}} {{.State.Running}}' "$NAME" 2>/dev/null) || running=
  if [ "$running" = "$REGISTRY_IMAGE true" ] && answers; then
    ok "registry $ADDRESS answers ($REGISTRY_IMAGE)"
    return 0
  fi
  bash "$here/addons/build.sh" registry
  step "Starting the registry on $ADDRESS (container $NAME, storage in volume course-registry)"
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  run docker run -d --name "$NAME" --restart unless-stopped -p 127.0.0.1:5001:5000 \
    -v course-registry:/var/lib/registry "$REGISTRY_IMAGE"
  local waited=0
  until answers; do
    ((waited++ < 30)) || { docker logs --tail 20 "$NAME" >&2; fail "the registry did not answer on http://127.0.0.1:5001/v2/ in 30 s (docker logs $NAME)"; }
    sleep 1
  done
  ok "registry $ADDRESS answers"
}

hosts_toml() { # SERVER: containerd's mirror file for localhost:5001
  printf 'server = "%s"\n[host."%s"]\n  capabilities = ["pull", "resolve"]\n' "$1" "$1"
}

tell_local_containerd() {
  mkdir -p "$REGISTRY_CONFIG_DIR/$ADDRESS"
  hosts_toml "http://127.0.0.1:5001" >"$REGISTRY_CONFIG_DIR/$ADDRESS/hosts.toml"
  ok "the local cluster pulls $ADDRESS/... from it ($REGISTRY_CONFIG_DIR/$ADDRESS/hosts.toml)"
}

tell_kind_nodes() { # CLUSTER: the kind network reaches the container by name, as kind's docs do
  local node
  if [ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "$NAME")" = null ]; then
    run docker network connect kind "$NAME"
  fi
  for node in $(docker ps --filter "label=io.x-k8s.kind.cluster=$1" --format '{{.Names}}'); do
    hosts_toml "http://$NAME:5000" | docker exec -i "$node" sh -c \
      "mkdir -p /etc/containerd/certs.d/$ADDRESS && cat > /etc/containerd/certs.d/$ADDRESS/hosts.toml"
  done
  ok "kind cluster $1's nodes pull $ADDRESS/... from it"
}

case "${1:-}" in
  up)
    start
    case "${2:-local}" in
      local) tell_local_containerd ;;
      kind) tell_kind_nodes "${KIND_CLUSTER_NAME:-${COURSE_KIND_CLUSTER:-cloud-native-course}}" ;;
      *) fail "usage: $0 up local|kind" ;;
    esac
    ;;
  down)
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    ok "registry stopped (its charts and images stay in the Docker volume course-registry)"
    ;;
  *) fail "usage: $0 up local|kind | down" ;;
esac
