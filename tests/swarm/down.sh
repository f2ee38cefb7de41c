#!/usr/bin/env bash
# Stops the swarm of tests/swarm/up.sh: kills each node's dockerd by its pid file (its tasks die with
# it) and the registry, deletes the network namespaces and veth pairs. The data roots
# (/var/lib/mlops-s1…s3 with their images and swarm state, /var/lib/mlops-s-registry) are kept so that
# the next up.sh starts warm; pass --purge to delete them too (the next start pulls every image again).
# MLOPS_SWARM_PREFIX and MLOPS_TEST_SWARM as for up.sh.
set -euo pipefail
purge=false
[ "${1:-}" = "--purge" ] && purge=true
P="${MLOPS_SWARM_PREFIX:-s}"
ROOT="${MLOPS_TEST_SWARM:-/tmp/mlops-swarm}"
stop_pid() {
  local pid="$1"
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
}
for n in "${P}1" "${P}2" "${P}3"; do
  pidfile="/run/mlops-$n/dockerd.pid"
  if [ -s "$pidfile" ]; then
    stop_pid "$(cat "$pidfile")"
    rm -f "$pidfile"
  fi
  ip netns del "mlt-$n" 2>/dev/null || true
  if $purge; then
    # Mounts left by a killed dockerd keep files busy; unmount what is under the data root first.
    grep -o " /var/lib/mlops-$n[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "/var/lib/mlops-$n"
  fi
  echo "node $n down"
done
if [ -s "$ROOT/registry/registry.pid" ]; then
  stop_pid "$(cat "$ROOT/registry/registry.pid")"
  rm -f "$ROOT/registry/registry.pid"
fi
$purge && rm -rf "/var/lib/mlops-${P}-registry"
echo "registry down"
ip link del "mlt-${P}h" 2>/dev/null || true
ip netns del "mlt-${P}br" 2>/dev/null || true
rm -f "$ROOT/swarm.env"
