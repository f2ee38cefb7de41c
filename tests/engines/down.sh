#!/usr/bin/env bash
# Stops the test engines of tests/engines/up.sh: kills each dockerd by its pid file (its containers die
# with it), deletes the network namespaces and veth pairs. Data roots (/var/lib/mlops-e1, -e2, with the
# images copied there) are kept so that the next up.sh starts warm; pass --purge to delete them too.
set -euo pipefail
purge=false
[ "${1:-}" = "--purge" ] && purge=true
for e in e1 e2; do
  pidfile="/run/mlops-$e/dockerd.pid"
  if [ -s "$pidfile" ]; then
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$pidfile"
  fi
  ip link del "mlt-${e}h" 2>/dev/null || true
  ip netns del "mlt-$e" 2>/dev/null || true
  if $purge; then
    # Mounts left by a killed dockerd keep files busy; unmount what is under the data root first.
    grep -o " /var/lib/mlops-$e[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "/var/lib/mlops-$e"
  fi
  echo "engine $e down"
done
