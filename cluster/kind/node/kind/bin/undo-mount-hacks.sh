#!/bin/sh
# cgroup v1 only: the entrypoint covered /proc/cgroups (to hide the misc controller from systemd).
set -eu
[ -f /sys/fs/cgroup/cgroup.controllers ] && exit 0
if grep -q ' /proc/cgroups ' /proc/self/mountinfo; then umount /proc/cgroups; fi
