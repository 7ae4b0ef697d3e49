#!/bin/sh
# cgroup v2: create /kubelet and /kubelet.slice with every controller the node has delegated.
# Runs after systemd has moved every process out of the root group (so the root's
# subtree_control can be written).
set -eu
enable_all() { sed -e 's/^/+/' -e 's/ / +/g' "/sys/fs/cgroup$1/cgroup.controllers" >"/sys/fs/cgroup$1/cgroup.subtree_control"; }
enable_all ""
for group in /kubelet /kubelet.slice; do
  mkdir -p "/sys/fs/cgroup$group"
  enable_all "$group"
done
