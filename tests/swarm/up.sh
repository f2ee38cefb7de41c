#!/usr/bin/env bash
# Starts a Docker Swarm of three nodes and a registry for the swarm tests (tests/swarm_real.rs): three
# dockerd (mlt-s1, mlt-s2, mlt-s3), each in its own network namespace with its own data-root, exec-root,
# socket, containerd namespace and a --config-file holding only the storage driver (the machine's
# daemon.json clashes with --data-root), joined on a bridge that lives in a namespace of its own
# (mlt-sbr, so the host's Docker firewall rules stay out of the way) on 10.78.0.0/24:
#
#   10.78.0.1    this machine (a veth into the bridge), to reach the registry
#   10.78.0.2    the bridge itself, where Debian's `docker-registry` listens (:5000, plain HTTP; the
#                nodes are told it is an insecure registry)
#   10.78.0.11…  the nodes; s1 is the manager (`swarm init`), s2 and s3 join as workers
#
# The nodes have no default route: nothing outside the test network is reachable, so an image can only
# come from the registry. Writes $ROOT/swarm.env (read by tests/swarm_real.rs):
#   MLOPS_SWARM_MANAGER=unix:///run/mlops-s1/docker.sock   MLOPS_SWARM_REGISTRY=10.78.0.2:5000
#   MLOPS_SWARM_NODES="s1 s2 s3"   MLOPS_SWARM_S1_SOCK / _PID …   (test-side inspection, node loss)
#
# Idempotent: a node that answers, a swarm already formed and a registry that answers are left alone; a
# warm start (data roots kept by down.sh) takes a few seconds. Needs root, iproute2, nsenter, curl,
# dockerd, the docker CLI (set-up only) and docker-registry (.ci/setup installs them). Stop with
# tests/swarm/down.sh.
#
# MLOPS_SWARM_PREFIX (default s), MLOPS_SWARM_NET (default 10.78.0) and MLOPS_TEST_SWARM (default
# /tmp/mlops-swarm) give a second swarm its own names, addresses and files.
#
# Why nsenter and not `ip netns exec`: the latter remounts /sys, and dockerd then fails with "Devices
# cgroup isn't mounted" on a cgroup v1 host.
set -euo pipefail

P="${MLOPS_SWARM_PREFIX:-s}"
NET="${MLOPS_SWARM_NET:-10.78.0}"
ROOT="${MLOPS_TEST_SWARM:-/tmp/mlops-swarm}"
NODES=("${P}1" "${P}2" "${P}3")
BR_NS="mlt-${P}br"
REGISTRY="$NET.2:5000"
# Overlay networks take their subnets from here, far from the test network's own addresses.
ADDR_POOL="10.$((200 + $(printf '%d' "'${P:0:1}") % 50)).0.0/16"

node_ip() { echo "$NET.$((10 + ${1: -1}))"; }
sock() { echo "/run/mlops-$1/docker.sock"; }
dk() { local n="$1"; shift; docker -H "unix://$(sock "$n")" "$@"; }
ping_sock() { curl -sf --max-time 2 --unix-socket "$1" http://localhost/_ping >/dev/null 2>&1; }

storage_driver() {
  local d
  d="$(docker info --format '{{.Driver}}' 2>/dev/null || true)"
  case "$d" in
    overlay2|fuse-overlayfs|vfs) echo "$d" ;;
    *) echo vfs ;;
  esac
}

make_bridge() {
  [ -e "/run/netns/$BR_NS" ] || ip netns add "$BR_NS"
  ip -n "$BR_NS" link set lo up
  if ! ip -n "$BR_NS" link show br0 >/dev/null 2>&1; then
    ip -n "$BR_NS" link add br0 type bridge
    ip -n "$BR_NS" addr add "$NET.2/24" dev br0
  fi
  ip -n "$BR_NS" link set br0 up
  # This machine's leg, so tests and operators reach the registry.
  if ! ip link show "mlt-${P}h" >/dev/null 2>&1; then
    ip link add "mlt-${P}h" type veth peer name "mlt-${P}hb"
    ip link set "mlt-${P}hb" netns "$BR_NS"
    ip -n "$BR_NS" link set "mlt-${P}hb" master br0 up
    ip addr add "$NET.1/24" dev "mlt-${P}h"
    ip link set "mlt-${P}h" up
  fi
}

make_node_netns() {
  local n="$1"
  [ -e "/run/netns/mlt-$n" ] || ip netns add "mlt-$n"
  if ! ip -n "$BR_NS" link show "mlt-${n}b" >/dev/null 2>&1; then
    ip link del "mlt-${n}b" 2>/dev/null || true
    ip link add "mlt-${n}b" type veth peer name "mlt-${n}n"
    ip link set "mlt-${n}b" netns "$BR_NS"
    ip link set "mlt-${n}n" netns "mlt-$n"
    ip -n "$BR_NS" link set "mlt-${n}b" master br0 up
    ip -n "mlt-$n" addr add "$(node_ip "$n")/24" dev "mlt-${n}n"
    ip -n "mlt-$n" link set "mlt-${n}n" up
  fi
  ip -n "mlt-$n" link set lo up
}

start_registry() {
  local dir="$ROOT/registry" pidfile="$ROOT/registry/registry.pid"
  mkdir -p "$dir"
  if curl -sf --max-time 2 "http://$REGISTRY/v2/" >/dev/null 2>&1; then
    echo "registry already up ($REGISTRY)"
    return
  fi
  cat >"$dir/config.yml" <<CONF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/mlops-${P}-registry
  delete:
    enabled: true
http:
  addr: $REGISTRY
CONF
  nsenter --net="/run/netns/$BR_NS" setsid docker-registry serve "$dir/config.yml" \
    >"$dir/registry.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 40); do
    curl -sf --max-time 1 "http://$REGISTRY/v2/" >/dev/null 2>&1 && { echo "registry up ($REGISTRY)"; return; }
    sleep 0.25
  done
  echo "error: the registry did not answer at $REGISTRY within 10 s; its log: $dir/registry.log" >&2
  tail -n 20 "$dir/registry.log" >&2
  exit 1
}

# Starts the node's dockerd without waiting for it; wait_dockerd waits. The three start side by side.
start_dockerd() {
  local n="$1" exec_root
  exec_root="/run/mlops-$n"
  if ping_sock "$(sock "$n")"; then
    echo "node $n already up (unix://$(sock "$n"))"
    return
  fi
  mkdir -p "$exec_root" "$ROOT/$n"
  printf '{"storage-driver":"%s"}\n' "$(storage_driver)" >"$ROOT/$n/daemon.json"
  nsenter --net="/run/netns/mlt-$n" setsid dockerd \
    --config-file "$ROOT/$n/daemon.json" \
    --data-root "/var/lib/mlops-$n" --exec-root "$exec_root" --pidfile "$exec_root/dockerd.pid" \
    -H "unix://$(sock "$n")" \
    --insecure-registry "$REGISTRY" \
    --iptables=false --ip-masq=false --bridge=none \
    --containerd-namespace "mlt-$n" --containerd-plugins-namespace "mlt-${n}p" \
    >"$ROOT/$n/dockerd.log" 2>&1 </dev/null &
}

wait_dockerd() {
  local n="$1"
  for _ in $(seq 1 120); do
    ping_sock "$(sock "$n")" && { echo "node $n up (unix://$(sock "$n"), $(node_ip "$n"))"; return; }
    sleep 0.25
  done
  echo "error: node $n did not answer on $(sock "$n") within 30 s; its log: $ROOT/$n/dockerd.log" >&2
  tail -n 20 "$ROOT/$n/dockerd.log" >&2
  exit 1
}

swarm_state() { dk "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown; }

form_swarm() {
  local manager="${NODES[0]}" token n
  if [ "$(swarm_state "$manager")" != active ]; then
    dk "$manager" swarm init --advertise-addr "$(node_ip "$manager")" \
      --default-addr-pool "$ADDR_POOL" >/dev/null
    echo "swarm formed on $manager ($(node_ip "$manager"):2377)"
  fi
  token="$(dk "$manager" swarm join-token -q worker)"
  for n in "${NODES[@]:1}"; do
    case "$(swarm_state "$n")" in
      active) ;;
      pending|error)
        dk "$n" swarm leave --force >/dev/null 2>&1 || true
        dk "$n" swarm join --token "$token" --advertise-addr "$(node_ip "$n")" "$(node_ip "$manager"):2377" >/dev/null
        echo "node $n joined" ;;
      *)
        dk "$n" swarm join --token "$token" --advertise-addr "$(node_ip "$n")" "$(node_ip "$manager"):2377" >/dev/null
        echo "node $n joined" ;;
    esac
  done
  # Wait until the manager sees every node Ready (a restarted worker reports in within seconds).
  local ready=0
  for _ in $(seq 1 120); do
    ready="$(dk "$manager" node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$' || true)"
    [ "$ready" -ge "${#NODES[@]}" ] && break
    sleep 0.25
  done
  if [ "$ready" -lt "${#NODES[@]}" ]; then
    echo "error: the manager sees $ready of ${#NODES[@]} nodes Ready:" >&2
    dk "$manager" node ls >&2 || true
    exit 1
  fi
  # Nodes left over from an earlier swarm on the same data roots (Down, same hostname) are dropped.
  dk "$manager" node ls --format '{{.ID}} {{.Status}}' | awk '$2=="Down"{print $1}' |
    xargs -r docker -H "unix://$(sock "$manager")" node rm --force >/dev/null 2>&1 || true
  # Each node labelled with its name here, so tests can tell which node Swarm chose (the hostnames
  # are all this machine's).
  for n in "${NODES[@]}"; do
    dk "$manager" node update --label-add "mlops-test.node=$n" "$(dk "$n" info --format '{{.Swarm.NodeID}}')" >/dev/null
  done
  echo "swarm ready: $ready nodes"
}

write_env() {
  local env="$ROOT/swarm.env" n N
  {
    echo "MLOPS_SWARM_MANAGER=unix://$(sock "${NODES[0]}")"
    echo "MLOPS_SWARM_REGISTRY=$REGISTRY"
    echo "MLOPS_SWARM_NODES=${NODES[*]}"
    for n in "${NODES[@]}"; do
      N="$(echo "$n" | tr a-z A-Z)"
      echo "MLOPS_SWARM_${N}_SOCK=$(sock "$n")"
      echo "MLOPS_SWARM_${N}_PID=/run/mlops-$n/dockerd.pid"
    done
  } >"$env"
  echo "wrote $env"
}

[ "$(id -u)" -eq 0 ] || { echo "error: tests/swarm/up.sh needs root (network namespaces, dockerd)" >&2; exit 1; }
for tool in ip nsenter curl dockerd docker docker-registry; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing: run bash .ci/setup" >&2; exit 1; }
done
started=$(date +%s.%N)
mkdir -p "$ROOT"
# The daemons keep the directory they start in as their own: not a checkout that may go away.
cd /
make_bridge
for n in "${NODES[@]}"; do make_node_netns "$n"; done
start_registry
for n in "${NODES[@]}"; do start_dockerd "$n"; done
for n in "${NODES[@]}"; do wait_dockerd "$n"; done
form_swarm
write_env
awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "swarm up in %.1f s\n", b - a }'
