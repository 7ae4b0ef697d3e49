#!/usr/bin/env bash
# Builds a kind node image on this machine, with no registry: Kubernetes $K8S_VERSION from the
# course's own build (cluster/local/build.sh), on a Debian root filesystem made by mmdebstrap.
# How and why: cluster/kind/README.md.
#
#   bash cluster/kind/node-image.sh [IMAGE]     (default: course/kind-node:$K8S_VERSION)
#
# The image is assembled the way `kind build node-image` assembles kind's: a container of the base
# image gets kubeadm, kubelet and kubectl in /usr/bin, /kind/version, the default CNI and storage
# manifests in /kind/manifests, and every image a node needs imported into its containerd
# (namespace k8s.io); then it is committed. Inputs are hashed: when nothing changed since the last
# build and the image is still there, running it again is a no-op.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=cluster/local/versions.sh
source "$repo/cluster/local/versions.sh"
# shellcheck source=cluster/kind/versions.sh
source "$here/versions.sh"
# shellcheck source=cluster/lib.sh
source "$repo/cluster/lib.sh"
# shellcheck source=cluster/addons/common.sh
source "$repo/cluster/addons/common.sh"
IMAGE=${1:-$LOCAL_NODE_IMAGE}
RUN_LOG=$KIND_WORK_DIR/build.log
STAMP=$KIND_WORK_DIR/node-image.stamp
PAUSE=registry.k8s.io/pause:3.10.1 # the sandbox image of cluster/kind/node/etc/containerd/config.toml
started=$SECONDS
mkdir -p "$KIND_WORK_DIR"

if [ "$(uname -s)" != Linux ] || [ "$(id -u)" != 0 ]; then
  fail "the node image is built on Linux as root (mmdebstrap, docker)"
fi
docker version >/dev/null 2>&1 || fail "no Docker engine answers (make docker starts one on Linux as root)"
arch=$(docker version --format '{{.Server.Arch}}')
if ! command -v go >/dev/null || [ "$(go env GOARCH)" != "$arch" ]; then
  fail "Go for $arch is needed (the node's Go programs are built for the Docker engine's architecture)"
fi

kind_build() { # TAG CONTEXT [BUILD-ARG...]: docker build, BuildKit or the classic builder
  local tag=$1 context=$2 args=()
  shift 2
  for arg in "$@"; do args+=(--build-arg "$arg"); done
  if docker buildx version >/dev/null 2>&1; then
    docker build -q "${args[@]}" -t "$tag" "$context"
  else
    DOCKER_BUILDKIT=0 docker build -q "${args[@]}" -t "$tag" "$context"
  fi
}
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null; }

# --- the inputs: binaries and add-on images the course already builds ---------------------------
bash "$repo/cluster/local/build.sh"
bash "$repo/cluster/addons/build.sh" coredns local-path-provisioner
bash "$here/../tools.sh" crictl
crictl=$KIND_WORK_DIR/tools/crictl-$CRICTL_VERSION/crictl
if ! image_id busybox:1.35 >/dev/null; then # the course's offline base, as `make images` builds it
  step "Building busybox:1.35 from Debian's static /bin/busybox"
  if [ ! -x /bin/busybox ] || grep -q ld-linux <(head -c 4096 /bin/busybox); then
    fail "no static /bin/busybox (Debian: apt-get install busybox-static)"
  fi
  context=$(mktemp -d)
  cp /bin/busybox "$repo/images/base/Dockerfile" "$context/"
  run kind_build busybox:1.35 "$context"
  rm -rf "$context"
  ok
fi
if ! image_id "$PAUSE" >/dev/null; then # as cluster/local/up.sh builds it
  step "Building $PAUSE from the course's pause binary"
  context=$(mktemp -d)
  cp "$BIN_DIR/pause" "$repo/images/pause/Dockerfile" "$context/"
  run kind_build "$PAUSE" "$context"
  rm -rf "$context"
  ok
fi

inputs_hash() {
  {
    echo "$IMAGE $K8S_VERSION $ETCD_VERSION $NODE_DEBIAN_SUITE ${NODE_PACKAGES[*]} ${NETWORK_PACKAGES[*]}"
    (cd "$here" && find node-image.sh versions.sh node images -type f -print0 | sort -z | xargs -0 cat)
    cat "$repo/cluster/addons/local-path-storage.yaml" "$repo/cluster/addons/common.sh"
    for b in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd etcdctl; do
      stat -c '%n %s %Y' "$BIN_DIR/$b"
    done
    stat -c '%n %s %Y' "$crictl"
    for image in "$COREDNS_IMAGE" "$LOCAL_PATH_IMAGE" busybox:1.35 "$PAUSE"; do image_id "$image"; done
  } | sha256sum | cut -c1-16
}
hash=$(inputs_hash)
if [ "$(cat "$STAMP" 2>/dev/null)" = "$hash $(image_id "$IMAGE")" ]; then
  ok "kind node image $IMAGE already built from these inputs ($hash)"
  exit 0
fi

# --- Debian root filesystems (cached: tarball under ~/.cache, image in Docker) -----------------
apt_sources() { # the machine's Debian sources, else Debian's mirror
  local file
  for file in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [ -f "$file" ] && grep -q '^[^#]*debian' "$file"; then
      echo "$file"
      return
    fi
  done
  echo http://deb.debian.org/debian
}
rootfs_image() { # VARIABLE NAME PACKAGE...: VARIABLE := an image of a minimal Debian with PACKAGES
  local variable=$1 name=$2 sources key tarball tag
  shift 2
  sources=$(apt_sources)
  key=$( { echo "$NODE_DEBIAN_SUITE $*"; cat "$sources" 2>/dev/null || echo "$sources"; } | sha256sum | cut -c1-12)
  tag=course/kind-rootfs:$name-$key
  tarball=$KIND_WORK_DIR/rootfs/$name-$key.tar
  printf -v "$variable" %s "$tag"
  image_id "$tag" >/dev/null && return 0
  if [ ! -s "$tarball" ]; then
    command -v mmdebstrap >/dev/null || fail "mmdebstrap is needed (Debian: apt-get install mmdebstrap)"
    step "Making the $name root filesystem: Debian $NODE_DEBIAN_SUITE with $* (mmdebstrap, ~2 min)"
    mkdir -p "$(dirname "$tarball")"
    run mmdebstrap --format=tar --variant=minbase --aptopt='APT::Install-Recommends "false"' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --include="$(IFS=,; echo "$*")" "$NODE_DEBIAN_SUITE" "$tarball.tmp" "$sources"
    mv "$tarball.tmp" "$tarball"
    ok "$name root filesystem made ($(du -m "$tarball" | cut -f1) MB)"
  fi
  run docker import "$tarball" "$tag"
}
node_rootfs='' network_rootfs=''
rootfs_image node_rootfs node "${NODE_PACKAGES[@]}"
rootfs_image network_rootfs network "${NETWORK_PACKAGES[@]}"

# --- images: the base, and every image the node preloads ----------------------------------------
# What a rebuild replaces is removed at the end, so that builds do not pile up (1.3 GB each).
base=course/kind-base:$K8S_VERSION
network_base=course/kind-network-base:$K8S_VERSION
ours=("$IMAGE" "$base" "$network_base" course/kind-network:v1 registry.k8s.io/kube-proxy:"$K8S_VERSION")
before=()
for image in "${ours[@]}"; do before+=("$(image_id "$image" || true)"); done
step "Building the node's base image and the Kubernetes component images"
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp -a "$here/node" "$here/images/node-base/Dockerfile" "$crictl" "$context/"
run kind_build "$base" "$context" "ROOTFS=$node_rootfs"
rm -rf "${context:?}"/*
cp "$here/images/network-base/"* "$context/"
run kind_build "$network_base" "$context" "ROOTFS=$network_rootfs"

# Every image kubeadm asks for, named as it asks, made from the course's binaries.
preload=()
kubeadm_images=$("$BIN_DIR/kubeadm" config images list --kubernetes-version "$K8S_VERSION")
for wanted in $kubeadm_images; do
  rm -rf "${context:?}"/*
  name=${wanted##*/}
  name=${name%%:*}
  case $name in
    kube-apiserver | kube-controller-manager | kube-scheduler | etcd)
      mkdir "$context/bin"
      cp "$here/images/kube-component/Dockerfile" "$context/"
      cp "$BIN_DIR/$name" "$context/bin/"
      if [ "$name" = etcd ]; then cp "$BIN_DIR/etcdctl" "$context/bin/"; fi
      run kind_build "$wanted" "$context"
      ;;
    kube-proxy)
      cp "$here/images/kube-proxy/Dockerfile" "$BIN_DIR/kube-proxy" "$context/"
      run kind_build "$wanted" "$context" "NETWORK_BASE=$network_base"
      ;;
    coredns) run docker tag "$COREDNS_IMAGE" "$wanted" ;;
    pause) [ "$wanted" = "$PAUSE" ] || fail "kubeadm wants $wanted; the node's containerd config says $PAUSE" ;;
    *) fail "kubeadm $K8S_VERSION asks for $wanted, which this script does not know how to make" ;;
  esac
  preload+=("$wanted")
done
# The default pod network (node/kind/manifests/default-cni.yaml) and storage (rendered below).
rm -rf "${context:?}"/*
cp "$here/images/kind-network/"* "$BIN_DIR/kubectl" "$context/"
run kind_build course/kind-network:v1 "$context" "NETWORK_BASE=$network_base"
run docker tag "$LOCAL_PATH_IMAGE" "$KIND_STORAGE_IMAGE"
run docker tag busybox:1.35 "$KIND_STORAGE_HELPER_IMAGE"
preload+=(course/kind-network:v1 "$KIND_STORAGE_IMAGE" "$KIND_STORAGE_HELPER_IMAGE")
ok "images to preload: ${preload[*]}"

# --- assemble: a container of the base, its containerd loaded, committed -----------------------
step "Assembling $IMAGE: binaries, /kind/version, manifests, ${#preload[@]} images in containerd"
builder=kind-node-build-$$
trap 'docker rm -f -v "$builder" >/dev/null 2>&1 || true; rm -rf "$context"' EXIT
run docker run -d --name "$builder" --entrypoint=sleep --security-opt seccomp=unconfined "$base" infinity
in_builder() { docker exec -i "$builder" "$@"; }
for b in kubeadm kubelet kubectl; do run docker cp "$BIN_DIR/$b" "$builder:/usr/bin/$b"; done
run in_builder chown root:root /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl
printf '%s\n' "$K8S_VERSION" | run in_builder cp /dev/stdin /kind/version
# kind's default storage: the course's local-path manifest, with the image names kind's has
storage_manifest() {
  LOCAL_PATH_IMAGE=$KIND_STORAGE_IMAGE LOCAL_PATH_HELPER_IMAGE=$KIND_STORAGE_HELPER_IMAGE
  render_manifest "$repo/cluster/addons/local-path-storage.yaml"
}
storage_manifest | run in_builder cp /dev/stdin /kind/manifests/default-storage.yaml
run in_builder bash -c 'nohup containerd >/var/log/containerd-build.log 2>&1 &'
containerd_ready() { in_builder ctr version; }
for _ in $(seq 30); do containerd_ready >/dev/null 2>&1 && break; sleep 0.5; done
run containerd_ready
import() { docker save "${preload[@]}" | in_builder ctr -n k8s.io images import --no-unpack -; }
run import
missing=$(in_builder ctr -n k8s.io images ls -q | awk -v want="$(printf '%s\n' "${preload[@]}")" '
  BEGIN { n = split(want, w, "\n"); for (i = 1; i <= n; i++) { x = w[i]; if (x !~ /^[^\/]+\.[^\/]+\//) x = "docker.io/" (x ~ /\// ? "" : "library/") x; need[x] = 1 } }
  { delete need[$1] } END { for (x in need) print x }')
[ -z "$missing" ] || fail "not in the node's containerd after the import: $missing"
# stopped once only a zombie is left (sleep, the container's first process, reaps nothing)
# shellcheck disable=SC2016 # expanded in the container
run in_builder bash -c 'pkill -x containerd; for i in $(seq 50); do ps -C containerd -o stat= | grep -qv Z || exit 0; sleep 0.2; done; exit 1'
run in_builder rm -f /var/log/containerd-build.log
run docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' "$builder" "$IMAGE"
echo "$hash $(image_id "$IMAGE")" >"$STAMP"
for i in "${!ours[@]}"; do
  # an image that no tag names any more; one still used by a container (a running node) stays
  if [ -n "${before[i]}" ] && [ "${before[i]}" != "$(image_id "${ours[i]}")" ]; then
    docker rmi "${before[i]}" >/dev/null 2>&1 || true
  fi
done
ok "kind node image $IMAGE built ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1 / 1e6}'), $((SECONDS - started)) s in all)"
