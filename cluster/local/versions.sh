# shellcheck shell=bash disable=SC2034  # sourced: every name here is used by the scripts that source it
# Versions and paths of the local cluster; sourced by the scripts in this folder.
# Keep K8S_VERSION on the same minor as the kind node image in cluster/kind.yaml.
K8S_VERSION=${K8S_VERSION:-v1.35.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
CACHE_DIR=${COURSE_CACHE:-$HOME/.cache/cloud-native-course}
BIN_DIR=$CACHE_DIR/k8s-$K8S_VERSION-etcd-$ETCD_VERSION/bin
GOMODCACHE=${GOMODCACHE_OVERRIDE:-$CACHE_DIR/go/mod}
GOCACHE=${GOCACHE_OVERRIDE:-$CACHE_DIR/go/build}
STATE_DIR=${COURSE_STATE_DIR:-/var/lib/cloud-native-course}
LOG_DIR=${COURSE_LOG_DIR:-/var/log/cloud-native-course}
KUBECONFIG_PATH=$STATE_DIR/kubeconfig
CONTAINERD_SOCK=/run/containerd/containerd.sock
CONTAINERD_CONFIG=/etc/containerd/course-config.toml
REGISTRY_CONFIG_DIR=/etc/containerd/course-registries
PAUSE_IMAGE=registry.k8s.io/pause:3.10.1
NODE_NAME=course-node
POD_CIDR=10.88.0.0/16
POD_GATEWAY=10.88.0.1
SERVICE_CIDR=10.0.0.0/24
VOLUMES_DIR=$STATE_DIR/volumes
# CoreDNS's Service (cluster/addons/coredns.yaml) and the kubelet's clusterDNS; in the lower part
# of SERVICE_CIDR that the API server never hands out on its own.
CLUSTER_DNS_IP=10.0.0.10
CLUSTER_DOMAIN=cluster.local
# Helm for chapter 07, built from the Go module proxy (cluster/tools.sh helm) for either cluster.
HELM_VERSION=${HELM_VERSION:-v4.3.2}
HELM_BIN=$CACHE_DIR/helm-$HELM_VERSION/bin/helm
