#!/usr/bin/env bash
# Brings up a real single-node Kubernetes cluster from upstream binaries: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kube-proxy, and a kubelet on containerd; then its
# add-ons (cluster/local/addons.sh): CoreDNS, metrics-server, the local-path provisioner.
# Linux, as root.
#
# Running it again while the cluster answers only checks the add-ons (a second or so). After a
# change to these scripts it runs through again, restarting only the components whose command
# line or configuration file changed; a component that died is started again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=cluster/local/versions.sh
source "$here/versions.sh"
# shellcheck source=cluster/lib.sh
source "$repo/cluster/lib.sh"
RUN_LOG=$LOG_DIR/up.log
kubectl() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
pids=$STATE_DIR/pids

[ "$(uname -s)" = Linux ] || fail "the local cluster runs on Linux only; use CLUSTER=kind"
[ "$(id -u)" = 0 ] || fail "the local cluster needs root (it runs a kubelet); try: sudo make cluster CLUSTER=local"

# The scripts and versions the running cluster was brought up with.
stamp=$({
  cat "$here/up.sh" "$here/versions.sh" "$repo/cluster/lib.sh"
  echo "$K8S_VERSION $ETCD_VERSION $BIN_DIR $STATE_DIR"
} | cksum | cut -d' ' -f1)
all_running() {
  local name
  for name in "${components[@]}"; do kill -0 "$(cat "$pids/$name.pid" 2>/dev/null)" 2>/dev/null || return 1; done
}
# write_if_changed FILE <CONTENT: leaves FILE alone when it already holds CONTENT. kube-proxy
# exits as soon as its config file is written to, even with the same content.
write_if_changed() {
  local content
  content=$(cat)
  if [ -f "$1" ] && [ "$(cat "$1")" = "$content" ]; then return 0; fi
  printf '%s\n' "$content" >"$1"
}
node_ready() { [ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]; }

if [ "$(cat "$STATE_DIR/up.stamp" 2>/dev/null)" = "$stamp" ] && all_running &&
  kubectl get --raw /readyz >/dev/null 2>&1 && node_ready 2>/dev/null; then
  ok "local cluster already up (kubeconfig: $KUBECONFIG_PATH)"
  exec bash "$here/addons.sh"
fi

started=$SECONDS
bash "$here/build.sh"
bash "$here/runtime.sh" --with-containerd
mkdir -p "$STATE_DIR"/{pki,pids,etcd,kubelet} "$LOG_DIR" "$VOLUMES_DIR"
pki=$STATE_DIR/pki
rm -f "$STATE_DIR/up.stamp"

# --- network: CNI bridge for pods, and let Docker's FORWARD DROP policy pass pod traffic --------
mkdir -p /opt/cni/bin /etc/cni/net.d
for plugin in /usr/lib/cni/*; do ln -sf "$plugin" "/opt/cni/bin/$(basename "$plugin")"; done
[ -x /opt/cni/bin/bridge ] || fail "CNI plugins missing (Debian: apt-get install containernetworking-plugins)"
write_if_changed /etc/cni/net.d/10-course.conflist <<JSON
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
issue_cert() { # issue_cert NAME SUBJECT [SANS] [CA]
  local name=$1 subject=$2 sans=${3:-} ca=${4:-ca}
  [ -f "$pki/$name.crt" ] && return
  openssl genrsa -out "$pki/$name.key" 2048 2>/dev/null
  openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
  local ext="$pki/$name.ext"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' > "$ext"
  [ -n "$sans" ] && echo "subjectAltName=$sans" >> "$ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" -CAcreateserial \
    -days 3650 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
}
if [ ! -f "$pki/ca.crt" ]; then
  step "Creating certificates in $pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 3650 \
    -subj "/CN=cloud-native-course-ca" 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
fi
# The aggregation layer (metrics-server's API): the API server proxies requests to it with a
# client certificate from a CA of its own, as kubeadm sets it up.
if [ ! -f "$pki/front-proxy-ca.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/front-proxy-ca.key" -out "$pki/front-proxy-ca.crt" \
    -days 3650 -subj "/CN=front-proxy-ca" 2>/dev/null
fi
issue_cert front-proxy-client "/CN=front-proxy-client" "" front-proxy-ca
# etcd answers only clients with a certificate from its own CA (the API server), as kubeadm sets
# it up: anything else on this machine, a graded notebook included, reaches the cluster's data
# only through the API server's authentication and RBAC.
if [ ! -f "$pki/etcd-ca.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/etcd-ca.key" -out "$pki/etcd-ca.crt" \
    -days 3650 -subj "/CN=etcd-ca" 2>/dev/null
fi
issue_cert etcd-server "/CN=course-etcd" "IP:127.0.0.1,DNS:localhost" etcd-ca
issue_cert apiserver-etcd-client "/CN=kube-apiserver-etcd-client" "" etcd-ca
issue_cert apiserver "/CN=kube-apiserver" \
  "IP:127.0.0.1,IP:$POD_GATEWAY,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
issue_cert admin "/O=system:masters/CN=course-admin"
issue_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
issue_cert controller-manager "/CN=system:kube-controller-manager"
issue_cert scheduler "/CN=system:kube-scheduler"
issue_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
issue_cert kube-proxy "/CN=system:kube-proxy"

write_kubeconfig() { # write_kubeconfig FILE CERT_NAME
  write_if_changed "$1" <<YAML
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
write_if_changed "$KUBECONFIG_PATH" <"$STATE_DIR/admin.kubeconfig"

# --- processes --------------------------------------------------------------------------------
# start NAME COMMAND...: run in the background, log to LOG_DIR/NAME.log, remember pid and command.
# A running component is left alone unless its command line or --config file changed.
start() {
  local name=$1 arg pid signature
  shift
  signature=$(
    printf '%q ' "$@"
    for arg in "$@"; do case $arg in --config=*) cksum <"${arg#--config=}" ;; esac; done
  )
  pid=$(cat "$pids/$name.pid" 2>/dev/null) || pid=
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    [ "$(cat "$pids/$name.cmd" 2>/dev/null)" = "$signature" ] && return 0
    printf '   restarting %s: its configuration changed\n' "$name"
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  elif [ -n "$pid" ]; then
    printf '   starting %s again: it was not running (last lines of %s.log before:)\n' "$name" "$LOG_DIR/$name"
    tail -n 3 "$LOG_DIR/$name.log" 2>/dev/null | sed 's/^/   │ /'
  fi
  printf '\n=== %s: started by cluster/local/up.sh\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$LOG_DIR/$name.log"
  nohup "$@" >>"$LOG_DIR/$name.log" 2>&1 &
  echo $! >"$pids/$name.pid"
  printf '%s' "$signature" >"$pids/$name.cmd"
}
wait_for() { # NAME SECONDS CHECK...: wait_for_component with the component's own pid and log files
  local name=$1
  shift
  wait_for_component "$name" "$pids/$name.pid" "$LOG_DIR/$name.log" "$@"
}

step "Starting etcd $ETCD_VERSION"
etcd_tls=(--cert-file="$pki/etcd-server.crt" --key-file="$pki/etcd-server.key"
  --client-cert-auth --trusted-ca-file="$pki/etcd-ca.crt"
  --peer-cert-file="$pki/etcd-server.crt" --peer-key-file="$pki/etcd-server.key"
  --peer-client-cert-auth --peer-trusted-ca-file="$pki/etcd-ca.crt")
start etcd "$BIN_DIR/etcd" --name course --data-dir "$STATE_DIR/etcd" "${etcd_tls[@]}" \
  --listen-client-urls https://127.0.0.1:2379 --advertise-client-urls https://127.0.0.1:2379 \
  --listen-peer-urls https://127.0.0.1:2380 --initial-advertise-peer-urls https://127.0.0.1:2380 \
  --initial-cluster course=https://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381
wait_for etcd 30 "$BIN_DIR/etcdctl" --endpoints https://127.0.0.1:2379 --cacert "$pki/etcd-ca.crt" \
  --cert "$pki/apiserver-etcd-client.crt" --key "$pki/apiserver-etcd-client.key" endpoint health
ok "etcd answers"

step "Starting kube-apiserver $K8S_VERSION"
start kube-apiserver "$BIN_DIR/kube-apiserver" \
  --etcd-servers=https://127.0.0.1:2379 --etcd-cafile="$pki/etcd-ca.crt" \
  --etcd-certfile="$pki/apiserver-etcd-client.crt" --etcd-keyfile="$pki/apiserver-etcd-client.key" \
  --bind-address=0.0.0.0 --secure-port=6443 \
  --advertise-address="$POD_GATEWAY" --service-cluster-ip-range="$SERVICE_CIDR" \
  --client-ca-file="$pki/ca.crt" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
  --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key" --authorization-mode=Node,RBAC --allow-privileged=true \
  --enable-admission-plugins=NodeRestriction --kubelet-preferred-address-types=InternalIP,Hostname \
  --requestheader-client-ca-file="$pki/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key" \
  --enable-aggregator-routing=true
# (aggregator routing: reach metrics-server at its pod IP, not through kube-proxy's Service rules)
wait_for kube-apiserver 90 kubectl get --raw /readyz
ok "kube-apiserver ready"

step "Starting kube-controller-manager, kube-scheduler"
start kube-controller-manager "$BIN_DIR/kube-controller-manager" \
  --kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=true --use-service-account-credentials=true \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --controllers='*,bootstrapsigner,tokencleaner' \
  --horizontal-pod-autoscaler-sync-period=5s
# The autoscaler looks every 5 s (default 15 s) so a lesson sees it act within a minute; kind's
# controller manager gets the same flag (cluster/kind.yaml).
start kube-scheduler "$BIN_DIR/kube-scheduler" --kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=true
ok "kube-controller-manager and kube-scheduler started"

# Course images live in Docker; the kubelet reads containerd's k8s.io namespace.
if ! ctr -n k8s.io images ls -q | grep -qx "$PAUSE_IMAGE"; then
  step "Loading the pause image into containerd"
  ctx=$(mktemp -d)
  cp "$BIN_DIR/pause" "$repo/images/pause/Dockerfile" "$ctx/"
  run docker_build "$PAUSE_IMAGE" "$ctx"
  rm -rf "$ctx"
  docker save "$PAUSE_IMAGE" | ctr -n k8s.io images import - >/dev/null
fi
ok "pause image $PAUSE_IMAGE in containerd"

kubelet_config=$STATE_DIR/kubelet/config.yaml
write_if_changed "$kubelet_config" <<YAML
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
# A fork bomb in one pod stops at this many processes instead of taking the node.
podPidsLimit: 4096
# CoreDNS's Service (cluster/addons/coredns.yaml)
clusterDNS: [$CLUSTER_DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
YAML
step "Starting the kubelet and kube-proxy"
start kubelet "$BIN_DIR/kubelet" --config="$kubelet_config" --kubeconfig="$STATE_DIR/kubelet.kubeconfig" \
  --hostname-override="$NODE_NAME" --node-ip="$POD_GATEWAY" --root-dir=/var/lib/kubelet
write_if_changed "$STATE_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$STATE_DIR/kube-proxy.kubeconfig"}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
conntrack: {maxPerCore: 0}
YAML
start kube-proxy "$BIN_DIR/kube-proxy" --config="$STATE_DIR/kube-proxy.yaml"
wait_for kubelet 120 node_ready
ok "node $NODE_NAME Ready"

bash "$here/addons.sh"
echo "$stamp" >"$STATE_DIR/up.stamp"
ok "local cluster up in $((SECONDS - started)) s"
echo "   kubeconfig: $KUBECONFIG_PATH    logs: $LOG_DIR/"
echo "   next: export KUBECONFIG=$KUBECONFIG_PATH; kubectl get nodes"
