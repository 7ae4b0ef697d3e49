#!/usr/bin/env bash
# Brings up a real single-node Kubernetes cluster from upstream binaries: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kube-proxy, and a kubelet on containerd.
# Linux, as root. Running it again while the cluster answers does nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$here/versions.sh"

step() { printf ' • %s\n' "$*"; }
ok() { printf ' ✓ %s\n' "$*"; }
fail() { printf ' ✗ %s\n' "$*" >&2; exit 1; }
kubectl() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

[ "$(uname -s)" = Linux ] || fail "the local cluster runs on Linux only; use CLUSTER=kind"
[ "$(id -u)" = 0 ] || fail "the local cluster needs root (it runs a kubelet); try: sudo make cluster CLUSTER=local"

if [ -f "$KUBECONFIG_PATH" ] && kubectl get --raw /readyz >/dev/null 2>&1 &&
   kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True; then
  ok "local cluster already up (kubeconfig: $KUBECONFIG_PATH)"
  exit 0
fi

started=$SECONDS
bash "$here/build.sh"
bash "$here/runtime.sh" --with-containerd
mkdir -p "$STATE_DIR"/{pki,pids,etcd,kubelet} "$LOG_DIR" "$VOLUMES_DIR"
pki=$STATE_DIR/pki

# --- network: CNI bridge for pods, and let Docker's FORWARD DROP policy pass pod traffic --------
mkdir -p /opt/cni/bin /etc/cni/net.d
for plugin in /usr/lib/cni/*; do ln -sf "$plugin" "/opt/cni/bin/$(basename "$plugin")"; done
[ -x /opt/cni/bin/bridge ] || fail "CNI plugins missing (Debian: apt-get install containernetworking-plugins)"
cat > /etc/cni/net.d/10-course.conflist <<JSON
{
  "cniVersion": "1.0.0",
  "name": "course-pods",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
if ! ip link show cni0 >/dev/null 2>&1; then
  ip link add cni0 type bridge
  ip addr add "$POD_GATEWAY/16" dev cni0
fi
ip link set cni0 up
for direction in -i -o; do
  iptables -C FORWARD "$direction" cni0 -j ACCEPT 2>/dev/null || iptables -I FORWARD "$direction" cni0 -j ACCEPT
done
modprobe br_netfilter 2>/dev/null || true
sysctl -qw net.ipv4.ip_forward=1 || true

# --- certificates (once) ---------------------------------------------------------------------
issue_cert() { # issue_cert NAME SUBJECT [SANS]
  local name=$1 subject=$2 sans=${3:-}
  [ -f "$pki/$name.crt" ] && return
  openssl genrsa -out "$pki/$name.key" 2048 2>/dev/null
  openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
  local ext="$pki/$name.ext"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' > "$ext"
  [ -n "$sans" ] && echo "subjectAltName=$sans" >> "$ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
}
if [ ! -f "$pki/ca.crt" ]; then
  step "Creating certificates in $pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 3650 \
    -subj "/CN=cloud-native-course-ca" 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
fi
issue_cert apiserver "/CN=kube-apiserver" \
  "IP:127.0.0.1,IP:$POD_GATEWAY,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
issue_cert admin "/O=system:masters/CN=course-admin"
issue_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
issue_cert controller-manager "/CN=system:kube-controller-manager"
issue_cert scheduler "/CN=system:kube-scheduler"
issue_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
issue_cert kube-proxy "/CN=system:kube-proxy"

write_kubeconfig() { # write_kubeconfig FILE CERT_NAME
  cat > "$1" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: course-local
  cluster: {server: "https://127.0.0.1:6443", certificate-authority: "$pki/ca.crt"}
users:
- name: $2
  user: {client-certificate: "$pki/$2.crt", client-key: "$pki/$2.key"}
contexts:
- name: course-local
  context: {cluster: course-local, user: $2}
current-context: course-local
YAML
}
for who in admin controller-manager scheduler kubelet kube-proxy; do
  write_kubeconfig "$STATE_DIR/$who.kubeconfig" "$who"
done
cp "$STATE_DIR/admin.kubeconfig" "$KUBECONFIG_PATH"

# --- processes --------------------------------------------------------------------------------
start() { # start NAME COMMAND... : run in the background, log to LOG_DIR, remember the pid
  local name=$1; shift
  local pidfile="$STATE_DIR/pids/$name.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then return; fi
  nohup "$@" >>"$LOG_DIR/$name.log" 2>&1 &
  echo $! > "$pidfile"
}
wait_until() { # wait_until SECONDS WHAT COMMAND...
  local limit=$1 what=$2; shift 2
  local t0=$SECONDS
  until "$@" >/dev/null 2>&1; do
    (( SECONDS - t0 < limit )) || fail "$what did not come up within ${limit} s; see $LOG_DIR/"
    sleep 0.5
  done
  ok "$what ($((SECONDS - t0)) s)"
}

step "Starting etcd $ETCD_VERSION"
start etcd "$BIN_DIR/etcd" --name course --data-dir "$STATE_DIR/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster course=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381
wait_until 30 "etcd answers" "$BIN_DIR/etcdctl" --endpoints http://127.0.0.1:2379 endpoint health

step "Starting kube-apiserver $K8S_VERSION"
start kube-apiserver "$BIN_DIR/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:2379 --bind-address=0.0.0.0 --secure-port=6443 \
  --advertise-address="$POD_GATEWAY" --service-cluster-ip-range="$SERVICE_CIDR" \
  --client-ca-file="$pki/ca.crt" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
  --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key" --authorization-mode=Node,RBAC --allow-privileged=true \
  --enable-admission-plugins=NodeRestriction --kubelet-preferred-address-types=InternalIP,Hostname
wait_until 90 "kube-apiserver ready" kubectl get --raw /readyz

step "Starting kube-controller-manager, kube-scheduler"
start kube-controller-manager "$BIN_DIR/kube-controller-manager" \
  --kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=true --use-service-account-credentials=true \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --enable-hostpath-provisioner=true \
  --controllers='*,bootstrapsigner,tokencleaner'
start kube-scheduler "$BIN_DIR/kube-scheduler" --kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=true

# Course images live in Docker; the kubelet reads containerd's k8s.io namespace.
step "Loading the pause image and the course images into containerd"
if ! ctr -n k8s.io images ls -q | grep -qx "$PAUSE_IMAGE"; then
  ctx=$(mktemp -d); cp "$BIN_DIR/pause" "$repo/images/pause/Dockerfile" "$ctx/"
  DOCKER_BUILDKIT=0 docker build -q -t "$PAUSE_IMAGE" "$ctx" >/dev/null 2>&1 ||
    docker build -q -t "$PAUSE_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
  docker save "$PAUSE_IMAGE" | ctr -n k8s.io images import - >/dev/null
fi
ok "pause image $PAUSE_IMAGE in containerd"

kubelet_config=$STATE_DIR/kubelet/config.yaml
cat > "$kubelet_config" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $POD_GATEWAY
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
failSwapOn: false
# Images cannot be pulled again here, so never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "200Mi", nodefs.available: "2%", imagefs.available: "2%"}
serializeImagePulls: false
YAML
step "Starting the kubelet and kube-proxy"
start kubelet "$BIN_DIR/kubelet" --config="$kubelet_config" --kubeconfig="$STATE_DIR/kubelet.kubeconfig" \
  --hostname-override="$NODE_NAME" --node-ip="$POD_GATEWAY" --root-dir=/var/lib/kubelet
cat > "$STATE_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$STATE_DIR/kube-proxy.kubeconfig"}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
conntrack: {maxPerCore: 0}
YAML
start kube-proxy "$BIN_DIR/kube-proxy" --config="$STATE_DIR/kube-proxy.yaml"
node_ready() { kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -q True; }
wait_until 120 "node $NODE_NAME Ready" node_ready

kubectl apply -f - >/dev/null <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
YAML
ok "default StorageClass 'standard' (hostPath provisioner)"
ok "local cluster up in $((SECONDS - started)) s"
echo "   kubeconfig: $KUBECONFIG_PATH    logs: $LOG_DIR/"
echo "   next: export KUBECONFIG=$KUBECONFIG_PATH; kubectl get nodes"
