#!/usr/bin/env bash
# Builds the cluster add-on images from sources fetched through the Go module proxy:
#
#   bash cluster/addons/build.sh coredns metrics-server local-path-provisioner registry \
#     kube-network-policies
#
# Each binary is built once and cached under $COURSE_CACHE/addons/, keyed by version and
# architecture (for the Docker engine's architecture, which is the cluster's: kind on an arm64
# Mac gets arm64). The image is then a FROM scratch copy of it; Docker's layer cache makes a
# rebuild of an unchanged image a no-op. Needs Go, or a Docker engine that can pull golang.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=cluster/local/versions.sh
source "$repo/cluster/local/versions.sh"
# shellcheck source=cluster/lib.sh
source "$repo/cluster/lib.sh"
# shellcheck source=cluster/addons/common.sh
source "$here/common.sh"
RUN_LOG=$CACHE_DIR/addons/build.log
GO_IMAGE=${GO_IMAGE:-golang:1.26} # only when Go is not installed

# Module, version, main package, image and version stamp of each add-on; a patch (patches/) is
# applied to the module's own source, which is then built as it is, with its own go.mod.
describe() { # NAME
  patch=
  case $1 in
    coredns)
      module=github.com/coredns/coredns version=$COREDNS_VERSION pkg=$module image=$COREDNS_IMAGE
      stamp="-X github.com/coredns/coredns/coremain.GitCommit=$version" ;;
    metrics-server)
      module=sigs.k8s.io/metrics-server version=$METRICS_SERVER_VERSION pkg=$module/cmd/metrics-server
      image=$METRICS_SERVER_IMAGE stamp="-X k8s.io/client-go/pkg/version.gitVersion=$version" ;;
    local-path-provisioner)
      module=github.com/rancher/local-path-provisioner version=$LOCAL_PATH_VERSION pkg=$module
      image=$LOCAL_PATH_IMAGE stamp="-X main.VERSION=$version" ;;
    registry)
      module=github.com/distribution/distribution/v3 version=$REGISTRY_VERSION pkg=$module/cmd/registry
      image=$REGISTRY_IMAGE stamp="-X $module/version.version=$version" ;;
    kube-network-policies)
      module=sigs.k8s.io/kube-network-policies version=$NETWORK_POLICIES_VERSION pkg=./cmd
      image=$NETWORK_POLICIES_IMAGE stamp= patch=$here/patches/kube-network-policies-$version-xt-nfqueue.patch ;;
    *) fail "unknown add-on '$1' (known: coredns metrics-server local-path-provisioner registry kube-network-policies)" ;;
  esac
}

go_in() { # DIR GO-ARGUMENTS...: go in DIR with the course's caches (in a golang container without Go)
  local dir=$1
  shift
  if command -v go >/dev/null; then
    (cd "$dir" && go "$@")
  else
    docker run --rm --user "$(id -u):$(id -g)" -e HOME=/tmp -w "$dir" \
      -v "$CACHE_DIR:$CACHE_DIR" -v "$GOMODCACHE:$GOMODCACHE" -v "$GOCACHE:$GOCACHE" \
      -e GOMODCACHE -e GOCACHE -e GOFLAGS -e CGO_ENABLED -e GOOS -e GOARCH -e GOTOOLCHAIN \
      "$GO_IMAGE" go "$@"
  fi
}

build_binary() { # NAME: $CACHE_DIR/addons/NAME-VERSION-linux-ARCH/NAME
  local name=$1 src out gomod
  src=$CACHE_DIR/src/addons/$name-$version
  out=$CACHE_DIR/addons/$name-$version-linux-$GOARCH
  binary=$out/$name
  [ -x "$binary" ] && return 0
  mkdir -p "$src" "$out"
  step "Building $name $version for linux/$GOARCH from the Go module proxy (once; cached in $out)"
  if [ -n "$patch" ]; then
    build_patched "$name"
    return 0
  fi
  # A wrapper module that requires the release: the same dependency versions as upstream's go.mod.
  gomod=$(go_in "$src" mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$gomod" ] || fail "could not download $module@$version (is the Go module proxy reachable? try: go mod download $module@$version)"
  {
    echo "module course.local/$name-build"
    # upstream's go and godebug lines set the same runtime defaults as upstream's own build
    awk '/^godebug \(/{b=1} b{print} b&&/^\)/{b=0; next} /^(go|godebug) [^(]/{print}' "$gomod"
    echo "require $module $version"
  } >"$src/go.mod"
  run go_in "$src" build -trimpath -ldflags "-s -w $stamp" -o "$binary.tmp" "$pkg"
  mv "$binary.tmp" "$binary"
  ok "$name $version built"
}

build_patched() { # NAME: the module's source, patched, built with its own go.mod
  local dir
  dir=$(go_in "$src" mod download -json "$module@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -d "$dir" ] || fail "could not download $module@$version (is the Go module proxy reachable? try: go mod download $module@$version)"
  rm -rf "$src" && mkdir -p "$(dirname "$src")"
  cp -r "$dir" "$src" && chmod -R u+w "$src"
  run git -C "$src" apply --verbose "$patch"
  run go_in "$src" build -trimpath -ldflags "-s -w" -o "$binary.tmp" "$pkg"
  mv "$binary.tmp" "$binary"
  ok "$name $version built (patched: $(basename "$patch"))"
}

build_image() { # NAME: the image, FROM scratch with the cached binary
  local name=$1 context
  context=$(mktemp -d)
  cp -r "$binary" "$repo/images/$name/"* "$context/"
  run docker_build "$image" "$context"
  rm -rf "$context"
}

[ $# -gt 0 ] || fail "usage: $0 coredns|metrics-server|local-path-provisioner|registry|kube-network-policies..."
GOARCH=$(docker version --format '{{.Server.Arch}}' 2>/dev/null) ||
  fail "no Docker engine answers (make docker starts one on Linux as root)"
export GOOS=linux GOARCH CGO_ENABLED=0 GOFLAGS=-mod=mod GOMODCACHE GOCACHE
mkdir -p "$CACHE_DIR/addons" "$GOMODCACHE" "$GOCACHE"
for name in "$@"; do
  describe "$name"
  build_binary "$name"
  build_image "$name"
done
ok "add-on images ready: $(for name in "$@"; do describe "$name"; printf '%s ' "$image"; done)"
