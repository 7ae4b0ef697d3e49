#!/usr/bin/env bash
# Builds (or downloads) the upstream Kubernetes and etcd binaries for the local cluster.
#
# Everything lands under $COURSE_CACHE (default ~/.cache/cloud-native-course), keyed by version,
# so a second run, CI and later sessions reuse it. Running it again when the binaries exist is a no-op.
#
#   LOCAL_CLUSTER_SOURCE=auto      download release binaries if the release site answers, else build
#   LOCAL_CLUSTER_SOURCE=build     always build from the Go module proxy (offline path, used by CI)
#   LOCAL_CLUSTER_SOURCE=download  only download
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster/local/versions.sh
source "$here/versions.sh"
# shellcheck source=cluster/lib.sh
source "$here/../lib.sh"
# kubeadm is not used by the local cluster: the kind node image (cluster/kind/) is built from it.
K8S_BINARIES+=(kubeadm)

all_present() {
  for b in "${K8S_BINARIES[@]}" etcd etcdctl pause; do [ -x "$BIN_DIR/$b" ] || return 1; done
}

if all_present; then
  ok "Kubernetes $K8S_VERSION and etcd $ETCD_VERSION binaries already in $BIN_DIR"
  exit 0
fi
mkdir -p "$BIN_DIR"
arch=$(go env GOARCH 2>/dev/null || uname -m | sed 's/x86_64/amd64/;s/aarch64/arm64/')

try_download() {
  command -v curl >/dev/null || return 1
  curl -fsS --max-time 5 -o /dev/null "https://dl.k8s.io/release/$K8S_VERSION/bin/linux/$arch/kubectl.sha256" 2>/dev/null || return 1
  step "Downloading Kubernetes $K8S_VERSION release binaries, each checked against its published SHA-256"
  for b in "${K8S_BINARIES[@]}"; do
    [ -x "$BIN_DIR/$b" ] && continue
    download_verified "https://dl.k8s.io/release/$K8S_VERSION/bin/linux/$arch/$b" "$BIN_DIR/$b" || return 1
  done
  ok "Kubernetes $K8S_VERSION binaries downloaded and verified"
}

build_kubernetes() {
  local src="$CACHE_DIR/src/kubernetes-$K8S_VERSION"
  mkdir -p "$src"
  step "Fetching k8s.io/kubernetes@$K8S_VERSION from the Go module proxy (first time: ~1 GB of modules)"
  local moddir gomod
  moddir=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  gomod="$moddir/go.mod"
  [ -f "$gomod" ] || fail "could not download k8s.io/kubernetes@$K8S_VERSION (is the Go module proxy reachable? try: go mod download k8s.io/kubernetes@$K8S_VERSION)"
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local staging_version="v0.${K8S_VERSION#v1.}"
  {
    echo "module course.local/kubernetes-build"
    grep -E '^(go|godebug) ' "$gomod"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo "replace ("
    # Module zips leave out ./staging: point every staging module at its published release.
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod" | sort -u |
      while read -r m; do echo "  $m => $m $staging_version"; done
    echo ")"
  } > "$src/go.mod"
  cp "$moddir/build/pause/linux/pause.c" "$src/pause.c"
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  local i=0 n=${#K8S_BINARIES[@]}
  for b in "${K8S_BINARIES[@]}"; do
    i=$((i + 1))
    [ -x "$BIN_DIR/$b" ] && { ok "$b (cached)"; continue; }
    step "Building $b ($i/$n; measured cold on 2 cores: kube-apiserver ~3 min, then the rest share its cache, ~5 min in all)"
    (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -tags selinux,notest,grpcnotrace \
      -ldflags "$ld" -o "$BIN_DIR/$b.tmp" "k8s.io/kubernetes/cmd/$b") || fail "go build of $b failed; rerun: $0"
    mv "$BIN_DIR/$b.tmp" "$BIN_DIR/$b"
    ok "$b built"
  done
}

build_etcd() {
  [ -x "$BIN_DIR/etcd" ] && [ -x "$BIN_DIR/etcdctl" ] && { ok "etcd (cached)"; return; }
  local src="$CACHE_DIR/src/etcd-$ETCD_VERSION"
  mkdir -p "$src"
  printf 'module course.local/etcd-build\n\ngo 1.24\n\nrequire (\n  go.etcd.io/etcd/server/v3 %s\n  go.etcd.io/etcd/etcdctl/v3 %s\n)\n' \
    "$ETCD_VERSION" "$ETCD_VERSION" > "$src/go.mod"
  step "Building etcd $ETCD_VERSION and etcdctl"
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd.tmp" go.etcd.io/etcd/server/v3 &&
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcdctl" go.etcd.io/etcd/etcdctl/v3) ||
    fail "go build of etcd failed; rerun: $0"
  mv "$BIN_DIR/etcd.tmp" "$BIN_DIR/etcd"
  ok "etcd built"
}

build_pause() {
  [ -x "$BIN_DIR/pause" ] && return
  local src="$CACHE_DIR/src/kubernetes-$K8S_VERSION/pause.c"
  if [ ! -f "$src" ]; then
    local moddir
    moddir=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    mkdir -p "$(dirname "$src")"; cp "$moddir/build/pause/linux/pause.c" "$src"
  fi
  gcc -Os -static -DVERSION="$K8S_VERSION" -o "$BIN_DIR/pause" "$src" || fail "gcc could not build pause (apt-get install gcc libc6-dev)"
  ok "pause built"
}

export GOTOOLCHAIN=local GOMODCACHE GOCACHE GOFLAGS=
build_started=$SECONDS
source_mode=${LOCAL_CLUSTER_SOURCE:-auto}
downloaded=no
if [ "$source_mode" != build ] && try_download; then downloaded=yes; fi
if [ "$downloaded" = no ]; then
  [ "$source_mode" = download ] && fail "the Kubernetes release site is not reachable; use LOCAL_CLUSTER_SOURCE=build"
  command -v go >/dev/null || fail "Go is needed to build Kubernetes offline (apt-get install golang, or https://go.dev/dl)"
  build_kubernetes
fi
build_etcd
build_pause
echo "$((SECONDS - build_started))" > "$BIN_DIR/../build-seconds"
ok "binaries ready in $BIN_DIR (took $((SECONDS - build_started)) s)"
