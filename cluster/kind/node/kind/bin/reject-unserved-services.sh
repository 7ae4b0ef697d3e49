#!/bin/sh
# Run before the kubelet starts (and so before any pod): packets to the Service range that
# kube-proxy has not translated (yet) are refused here, inside the node, instead of leaving it.
# A connection opened in the moment between a Service's creation and kube-proxy's rule for it
# would otherwise go out through Docker's network, where some machines (this course's CI) answer
# any address, and stay connected to the wrong server (the API server's check of an aggregated
# API, for one, would keep getting 404s).
set -eu
subnets=$(sed -n 's/^ *serviceSubnet: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' /kind/kubeadm.conf 2>/dev/null | tr ',' ' ')
for subnet in $subnets; do
  case $subnet in *:*) tables=ip6tables ;; *) tables=iptables ;; esac
  for chain in OUTPUT FORWARD; do
    $tables -C "$chain" -d "$subnet" -m comment --comment "Service range, not translated" -j REJECT 2>/dev/null ||
      $tables -A "$chain" -d "$subnet" -m comment --comment "Service range, not translated" -j REJECT
  done
done
