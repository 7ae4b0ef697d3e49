#!/usr/bin/env bash
# Builds the course's Go programs from the Go module proxy, each once, cached by version:
#
#   bash cluster/tools.sh helm      Helm, for chapter 07     -> $CACHE_DIR/helm-VERSION/bin/helm
#   bash cluster/tools.sh kind      kind itself              -> $CACHE_DIR/kind-VERSION/bin/kind
#   bash cluster/tools.sh crictl    for kind's node image    -> $KIND_WORK_DIR/tools/crictl-VERSION/crictl
#   bash cluster/tools.sh flanneld  for kind's node image    -> $KIND_WORK_DIR/tools/flanneld-VERSION/flanneld
#
# Each is `go install MODULE@VERSION`, the ordinary way (none of them has replace lines), with the
# release's version stamped in. Prints nothing but the step lines; the path is above.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=cluster/local/versions.sh
source "$repo/cluster/local/versions.sh"
# shellcheck source=cluster/kind/versions.sh
source "$repo/cluster/kind/versions.sh"
# shellcheck source=cluster/lib.sh
source "$repo/cluster/lib.sh"
RUN_LOG=$CACHE_DIR/kind-tools-build.log

describe() { # NAME: module, version, package, output path and version stamp
  case $1 in
    helm)
      module=helm.sh/helm/v4 version=$HELM_VERSION pkg=$module/cmd/helm out=$HELM_BIN
      stamp="-X helm.sh/helm/v4/internal/version.version=$version" ;;
    kind)
      module=sigs.k8s.io/kind version=$KIND_VERSION pkg=$module out=$KIND_BIN_DIR/kind stamp= ;;
    crictl)
      module=sigs.k8s.io/cri-tools version=$CRICTL_VERSION pkg=$module/cmd/crictl
      out=$KIND_WORK_DIR/tools/crictl-$version/crictl
      stamp="-X sigs.k8s.io/cri-tools/pkg/version.Version=$version" ;;
    flanneld)
      module=github.com/flannel-io/flannel version=$FLANNEL_VERSION pkg=$module
      out=$KIND_WORK_DIR/tools/flanneld-$version/flanneld
      stamp="-X github.com/flannel-io/flannel/pkg/version.Version=$version" ;;
    *) fail "unknown tool '$1' (known: helm kind crictl flanneld)" ;;
  esac
}

install_tool() { # NAME
  describe "$1"
  if [ -x "$out" ]; then
    ok "$1 $version (cached in $(dirname "$out"))"
    return 0
  fi
  command -v go >/dev/null || fail "Go is needed to build $1 (apt-get install golang, or https://go.dev/dl); or install it from its release page"
  step "Building $1 $version from the Go module proxy (once; cached in $(dirname "$out"))"
  local gobin
  gobin=$(mktemp -d)
  run env GOBIN="$gobin" go install -trimpath -ldflags "-s -w $stamp" "$pkg@$version"
  mkdir -p "$(dirname "$out")"
  mv "$gobin/$(basename "$pkg")" "$out.tmp"
  rm -rf "$gobin"
  mv "$out.tmp" "$out"
  ok "$1 $version built"
}

[ $# -gt 0 ] || fail "usage: $0 helm|kind|crictl|flanneld..."
export GOTOOLCHAIN=local GOMODCACHE GOCACHE GOFLAGS=-mod=mod CGO_ENABLED=0
mkdir -p "$CACHE_DIR"
for tool in "$@"; do install_tool "$tool"; done
