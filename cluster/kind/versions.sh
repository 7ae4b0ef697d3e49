# shellcheck shell=bash disable=SC2034  # sourced: every name here is used by the scripts that source it
# Versions, names and paths of the kind side: kind itself and the node image built on this machine
# (cluster/kind/README.md). Sourced after cluster/local/versions.sh, whose Kubernetes and etcd
# binaries the node image is made from.

# The kind release cluster/kind.yaml is written for.
KIND_VERSION=${KIND_VERSION:-v0.33.0}
# The learner's cluster; `make test-kind` names its own (COURSE_KIND_CLUSTER), so testing never
# touches a learner's cluster or its volumes.
KIND_CLUSTER_NAME=${COURSE_KIND_CLUSTER:-cloud-native-course}
KIND_BIN_DIR=$CACHE_DIR/kind-$KIND_VERSION/bin

# The node image built here: the same Kubernetes as the local cluster ($K8S_VERSION).
LOCAL_NODE_IMAGE=course/kind-node:$K8S_VERSION
KIND_WORK_DIR=$CACHE_DIR/kind-node-$K8S_VERSION

# Debian release of the node's root filesystem, and where its packages come from: the machine's
# own apt sources when they name Debian, else Debian's mirror.
NODE_DEBIAN_SUITE=bookworm
# What kind's base image installs (images/base/Dockerfile in the kind repository), plus
# containerd, runc and the CNI plugins, which Debian packages (kind builds them itself).
NODE_PACKAGES=(
  systemd
  conntrack iptables nftables iproute2 ethtool util-linux mount kmod
  libseccomp2 pigz fuse-overlayfs
  nfs-common open-iscsi
  e2fsprogs
  bash ca-certificates curl jq procps
  containerd runc containernetworking-plugins
)
# The small root filesystem of the images that program the node's firewall (kube-proxy, flannel).
NETWORK_PACKAGES=(iptables nftables conntrack iproute2 kmod)

# Go programs the node image needs that Debian bookworm does not package.
CRICTL_VERSION=${CRICTL_VERSION:-v1.34.0}   # sigs.k8s.io/cri-tools: kind load and kind export logs use crictl
FLANNEL_VERSION=${FLANNEL_VERSION:-v0.28.10} # github.com/flannel-io/flannel: the pod network (see README)

# Images in the node image. kubeadm's own list is read from kubeadm itself at build time.
FLANNEL_IMAGE=course/flannel:$FLANNEL_VERSION
# The names kind v0.33.0's default storage manifest gives the provisioner and its helper
# (pkg/build/nodeimage/const_storage.go): they hold the course's own builds (cluster/addons).
KIND_STORAGE_IMAGE=docker.io/kindest/local-path-provisioner:v20260820-69b56db7
KIND_STORAGE_HELPER_IMAGE=docker.io/kindest/local-path-helper:v20260131-7181c60a
