#!/usr/bin/env bash
# The local cluster's add-ons, the same as kind's: CoreDNS (Service kube-dns at $CLUSTER_DNS_IP),
# metrics-server, the local-path provisioner behind the default StorageClass "standard", and
# NetworkPolicy enforcement (kube-network-policies).
# Manifests in cluster/addons/, images built from the Go module proxy (cluster/addons/build.sh)
# and imported into containerd's k8s.io namespace, where the kubelet looks.
#
# up.sh runs it once the node is Ready. Idempotent; when nothing changed since the last run it
# costs one ctr and one kubectl call. --force re-applies everything.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=cluster/local/versions.sh
source "$here/versions.sh"
# shellcheck source=cluster/lib.sh
source "$repo/cluster/lib.sh"
# shellcheck source=cluster/addons/common.sh
source "$repo/cluster/addons/common.sh"
RUN_LOG=$LOG_DIR/addons.log
kubectl() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

images=("$COREDNS_IMAGE" "$METRICS_SERVER_IMAGE" "$LOCAL_PATH_IMAGE" "$LOCAL_PATH_HELPER_IMAGE" "$NETWORK_POLICIES_IMAGE")
manifests=$(
  for file in coredns metrics-server local-path-storage network-policies; do
    render_manifest "$repo/cluster/addons/$file.yaml" "CLUSTER_DNS_IP=$CLUSTER_DNS_IP" "CLUSTER_DOMAIN=$CLUSTER_DOMAIN"
    echo ---
  done
)
# What was applied, and with which images, is recorded in the cluster itself: after down.sh
# (which wipes etcd) the next run applies everything again.
wanted=$(printf '%s\n%s\n' "$manifests" "$(cat "$repo"/images/{coredns,metrics-server,local-path-provisioner,kube-network-policies}/Dockerfile "$repo"/cluster/addons/patches/*)" |
  cksum | cut -d' ' -f1)

containerd_ref() { # IMAGE: the name `docker save | ctr import` gives it
  case $1 in */*) echo "docker.io/$1" ;; *) echo "docker.io/library/$1" ;; esac
}
in_containerd() { # every add-on image is in containerd's k8s.io namespace, where the kubelet looks
  local have image
  have=$(ctr -n k8s.io images ls -q)
  for image in "${images[@]}"; do grep -qxF "$(containerd_ref "$image")" <<<"$have" || return 1; done
}
same_as_docker() { # IMAGE: containerd holds the very image Docker has (same config digest)
  local manifest
  manifest=$(ctr -n k8s.io images ls "name==$(containerd_ref "$1")" | awk 'NR == 2 {print $3}')
  [ -n "$manifest" ] &&
    ctr -n k8s.io content get "$manifest" | grep -qF "\"digest\":\"$(docker image inspect -f '{{.Id}}' "$1")\""
}
applied() { kubectl -n kube-system get configmap course-addons -o 'jsonpath={.data.applied}' 2>/dev/null; }
running() { # every add-on's workload is there (one deleted by hand is applied again)
  kubectl -n kube-system get deploy/coredns deploy/metrics-server ds/kube-network-policies >/dev/null 2>&1 &&
    kubectl -n local-path-storage get deploy/local-path-provisioner >/dev/null 2>&1
}

if [ "${1:-}" != --force ] && in_containerd && [ "$(applied)" = "$wanted" ] && running; then
  # (a restarted API server reaches metrics-server again a few seconds later)
  wait_for_apiservice v1beta1.metrics.k8s.io 60
  ok "add-ons in place: CoreDNS $COREDNS_VERSION, metrics-server $METRICS_SERVER_VERSION, local-path $LOCAL_PATH_VERSION, kube-network-policies $NETWORK_POLICIES_VERSION"
  exit 0
fi

bash "$repo/cluster/addons/build.sh" coredns metrics-server local-path-provisioner kube-network-policies
if ! docker image inspect "$LOCAL_PATH_HELPER_IMAGE" >/dev/null 2>&1; then
  # the course's base image, built the way `make images` builds it: Debian's static busybox
  step "Building $LOCAL_PATH_HELPER_IMAGE from /bin/busybox (the course's offline base)"
  if [ ! -x /bin/busybox ] || grep -q ld-linux <(head -c 4096 /bin/busybox); then
    fail "no static /bin/busybox to build $LOCAL_PATH_HELPER_IMAGE from (Debian: apt-get install busybox-static)"
  fi
  context=$(mktemp -d)
  cp /bin/busybox "$repo/images/base/Dockerfile" "$context/"
  run docker_build "$LOCAL_PATH_HELPER_IMAGE" "$context"
  rm -rf "$context"
  ok "$LOCAL_PATH_HELPER_IMAGE built"
fi

import_image() { docker save "$1" | ctr -n k8s.io images import - >/dev/null; }
for image in "${images[@]}"; do
  same_as_docker "$image" && continue
  step "Loading $image into containerd"
  run import_image "$image"
  ok
done

step "Applying the add-ons (cluster/addons/*.yaml)"
# A StorageClass's provisioner and binding mode cannot change: replace an older "standard"
# (the controller manager's hostPath one, from an earlier up.sh) instead of updating it.
old_class=$(kubectl get storageclass standard -o 'jsonpath={.provisioner}/{.volumeBindingMode}' 2>/dev/null) || old_class=
if [ -n "$old_class" ] && [ "$old_class" != rancher.io/local-path/WaitForFirstConsumer ]; then
  run kubectl delete storageclass standard
fi
run kubectl apply -f - <<<"$manifests"
wait_for_rollout kube-system deploy/coredns 120
wait_for_rollout local-path-storage deploy/local-path-provisioner 120
wait_for_rollout kube-system deploy/metrics-server 120
wait_for_rollout kube-system ds/kube-network-policies 120
wait_for_apiservice v1beta1.metrics.k8s.io 60
kubectl -n kube-system create configmap course-addons --from-literal="applied=$wanted" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
ok "add-ons ready: DNS at $CLUSTER_DNS_IP, metrics API, default StorageClass standard (local-path, WaitForFirstConsumer), NetworkPolicy enforced"
