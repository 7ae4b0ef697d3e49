# shellcheck shell=bash
# The cluster add-ons' versions, image tags and manifest rendering, shared by the local cluster
# (cluster/local/addons.sh) and kind (cluster/kind.sh). Sourced, after cluster/lib.sh.
#
# Every image is built here from sources fetched through the Go module proxy (cluster/addons/build.sh),
# FROM scratch, and tagged with its upstream version: never :latest, so the kubelet never pulls.

# kubeadm 1.35 deploys CoreDNS v1.13.1 (cmd/kubeadm/app/constants), and so does kind's node image.
COREDNS_VERSION=${COREDNS_VERSION:-v1.13.1}
# metrics-server 0.9.x is the line for Kubernetes 1.34 and newer.
METRICS_SERVER_VERSION=${METRICS_SERVER_VERSION:-v0.9.0}
# kind 0.33 ships v0.0.34, which the Go module proxy does not serve (v0.0.31-v0.0.34 are either
# missing or absent from the checksum database); v0.0.30 is the newest that verifies.
LOCAL_PATH_VERSION=${LOCAL_PATH_VERSION:-v0.0.30}
# The OCI registry for charts and images (cluster/registry.sh), distribution's v3 line.
REGISTRY_VERSION=${REGISTRY_VERSION:-v3.1.2}
# NetworkPolicy enforcement, the enforcer kind's own network (kindnet) embeds since kind v0.24.
# It hands the first packet of each connection to NFQUEUE with nftables' `queue` statement, which
# some kernels are built without (CONFIG_NFT_QUEUE, e.g. Firecracker's); the course's build patches
# that one statement into the xtables NFQUEUE target (patches/), which those kernels do have.
NETWORK_POLICIES_VERSION=${NETWORK_POLICIES_VERSION:-v0.8.0}

COREDNS_IMAGE=course/coredns:$COREDNS_VERSION
METRICS_SERVER_IMAGE=course/metrics-server:$METRICS_SERVER_VERSION
LOCAL_PATH_IMAGE=course/local-path-provisioner:$LOCAL_PATH_VERSION
REGISTRY_IMAGE=course/registry:$REGISTRY_VERSION
NETWORK_POLICIES_IMAGE=course/kube-network-policies:$NETWORK_POLICIES_VERSION
# The helper pod only runs sh, mkdir and rm: the course's own base has them.
LOCAL_PATH_HELPER_IMAGE=busybox:1.35

# The manifests with their ${PLACEHOLDERS} filled in; an unknown placeholder is an error.
render_manifest() { # FILE [NAME=VALUE...]: extra values (the DNS IP, say) come from the caller
  local file=$1 sed_args=() pair out
  shift
  for pair in "COREDNS_IMAGE=$COREDNS_IMAGE" "METRICS_SERVER_IMAGE=$METRICS_SERVER_IMAGE" \
    "LOCAL_PATH_IMAGE=$LOCAL_PATH_IMAGE" "LOCAL_PATH_HELPER_IMAGE=$LOCAL_PATH_HELPER_IMAGE" \
    "NETWORK_POLICIES_IMAGE=$NETWORK_POLICIES_IMAGE" "$@"; do
    sed_args+=(-e "s|\${${pair%%=*}}|${pair#*=}|g")
  done
  out=$(sed "${sed_args[@]}" "$file")
  # shellcheck disable=SC2016 # a literal ${NAME}
  if grep -q '\${[A-Z_]*}' <<<"$out"; then
    fail "$file has a placeholder no one fills in: $(grep -o '\${[A-Z_]*}' <<<"$out" | sort -u | tr '\n' ' ')"
  fi
  printf '%s\n' "$out"
}
