#!/bin/bash
# The pod network of the course's kind node image (cluster/kind/README.md), one pod per node.
# It does the three jobs of kind's own kindnetd, with Debian's CNI plugins:
#   1. writes this node's CNI configuration: ptp + host-local on the node's podCIDR, portmap;
#   2. routes every other node's podCIDR through that node's address (one Docker network);
#   3. masquerades pod traffic that leaves the pod network.
# Then it checks again every 10 s, so nodes that join later are routed too.
# Environment: NODE_NAME (the downward API), POD_SUBNET (kind's networking.podSubnet) and
# CONTROL_PLANE_ENDPOINT (host:port of the API server), both filled in by kind.
set -euo pipefail
: "${NODE_NAME:?}" "${POD_SUBNET:?}"
conf=/etc/cni/net.d/10-kind-network.conflist
log() { echo "$(date -u +%H:%M:%S) $*"; }

write_cni_config() { # CIDR
  local mtu
  mtu=$(cat "/sys/class/net/$(ip -4 route show default | awk '{print $5; exit}')/mtu" 2>/dev/null) || mtu=1500
  local wanted
  wanted=$(printf '{"cniVersion": "1.0.0", "name": "kind-network", "plugins": [
  {"type": "ptp", "mtu": %s, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "/run/cni-ipam-state",
            "ranges": [[{"subnet": "%s"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}\n' "$mtu" "$1")
  if [ "$(cat "$conf" 2>/dev/null)" != "$wanted" ]; then
    printf '%s\n' "$wanted" >"$conf.tmp"
    mv "$conf.tmp" "$conf"
    log "wrote $conf for $1"
  fi
}

masquerade() { # pod traffic to anything outside the pod network leaves with the node's address
  iptables -t nat -N KIND-NETWORK-MASQ 2>/dev/null || true
  iptables -t nat -C POSTROUTING -m addrtype ! --dst-type LOCAL -j KIND-NETWORK-MASQ 2>/dev/null ||
    iptables -t nat -A POSTROUTING -m addrtype ! --dst-type LOCAL -j KIND-NETWORK-MASQ
  iptables -t nat -C KIND-NETWORK-MASQ -d "$POD_SUBNET" -j RETURN 2>/dev/null ||
    iptables -t nat -A KIND-NETWORK-MASQ -d "$POD_SUBNET" -j RETURN
  iptables -t nat -C KIND-NETWORK-MASQ -j MASQUERADE 2>/dev/null ||
    iptables -t nat -A KIND-NETWORK-MASQ -j MASQUERADE
}

api() { # kubectl, straight to the control plane when kind says where it is (CONTROL_PLANE_ENDPOINT):
  # before kube-proxy runs, nothing on this node answers on the kubernetes Service's address
  local account=/var/run/secrets/kubernetes.io/serviceaccount
  if [ -n "${CONTROL_PLANE_ENDPOINT:-}" ]; then
    kubectl --server "https://$CONTROL_PLANE_ENDPOINT" --certificate-authority "$account/ca.crt" \
      --token "$(cat "$account/token")" "$@"
  else
    kubectl "$@"
  fi
}

nodes() { # name podCIDR InternalIP, one node a line
  api get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}'
}

log "kind-network on $NODE_NAME, pod network $POD_SUBNET"
masquerade
while :; do
  if listing=$(nodes); then
    while read -r name cidr address; do
      if [ -z "$cidr" ] || [ -z "$address" ]; then continue; fi
      if [ "$name" = "$NODE_NAME" ]; then
        write_cni_config "$cidr"
      elif ! ip -4 route show "$cidr" | grep -q "via $address "; then
        ip route replace "$cidr" via "$address"
        log "route $cidr via $address ($name)"
      fi
    done <<<"$listing"
  else
    log "the API server did not answer; trying again"
  fi
  sleep 10
done
