#!/usr/bin/env bash
# Starts two extra Docker engines for the tests of remote engines (tests/engines_real.rs): each a dockerd
# in its own network namespace (mlt-e1, mlt-e2), reachable only over TCP with TLS client certificates at
# 10.77.1.2:2376 and 10.77.2.2:2376, with its own data-root, exec-root, socket and containerd namespace,
# so that it shares no disk, image store or container list with the machine's engine.
#
# Writes /tmp/mlops-engines/engines.env (read by tests/common/engines.rs):
#   MLOPS_TEST_ENGINE_E1=tcp://10.77.1.2:2376      MLOPS_TEST_ENGINE_E2=tcp://10.77.2.2:2376
#   MLOPS_TEST_ENGINE_TLS=/tmp/mlops-engines/certs/client   (ca.pem cert.pem key.pem)
#   MLOPS_TEST_ENGINE_ROGUE_TLS  a client certificate the engines must refuse (signed by another CA)
#   MLOPS_TEST_ENGINE_E1_SOCK / _E2_SOCK  unix sockets, for test-side inspection only
#   MLOPS_TEST_ENGINE_E1_PID  / _E2_PID   dockerd pid files, for tests that kill an engine
#
# Idempotent: an engine that answers on its socket is left alone. Needs root, iproute2, nsenter, openssl,
# curl and dockerd. Stop them with tests/engines/down.sh.
#
# Why nsenter and not `ip netns exec`: the latter remounts /sys, and dockerd then fails with "Devices
# cgroup isn't mounted" on a cgroup v1 host.
set -euo pipefail

ROOT="${MLOPS_TEST_ENGINES:-/tmp/mlops-engines}"
CERTS="$ROOT/certs"
ENGINES=(e1 e2)

subnet() { case "$1" in e1) echo 1 ;; e2) echo 2 ;; esac; }

# The storage driver the machine's engine uses (fuse-overlayfs here), vfs when it cannot be read.
storage_driver() {
  local d
  d="$(docker info --format '{{.Driver}}' 2>/dev/null || true)"
  case "$d" in
    overlay2|fuse-overlayfs|vfs) echo "$d" ;;
    *) echo vfs ;;
  esac
}

make_ca() {
  [ -s "$CERTS/ca/ca.pem" ] && return
  mkdir -p "$CERTS/ca"
  openssl genrsa -out "$CERTS/ca/ca-key.pem" 2048 2>/dev/null
  openssl req -x509 -new -key "$CERTS/ca/ca-key.pem" -sha256 -days 3650 \
    -subj "/CN=mlops-tui test CA" -out "$CERTS/ca/ca.pem"
}

# sign DIR CN EXTFILE: a key and a certificate signed by the test CA, in Docker's layout.
sign() {
  local dir="$1" cn="$2" ext="$3"
  [ -s "$dir/cert.pem" ] && return
  mkdir -p "$dir"
  openssl genrsa -out "$dir/key.pem" 2048 2>/dev/null
  openssl req -new -key "$dir/key.pem" -subj "/CN=$cn" -out "$dir/req.csr"
  openssl x509 -req -in "$dir/req.csr" -CA "$CERTS/ca/ca.pem" -CAkey "$CERTS/ca/ca-key.pem" \
    -CAcreateserial -days 3650 -sha256 -extfile "$ext" -out "$dir/cert.pem" 2>/dev/null
  cp "$CERTS/ca/ca.pem" "$dir/ca.pem"
  rm -f "$dir/req.csr"
  chmod 0600 "$dir/key.pem"
}

make_certs() {
  make_ca
  local ext
  ext="$(mktemp)"
  for e in "${ENGINES[@]}"; do
    printf 'subjectAltName = IP:10.77.%s.2\nextendedKeyUsage = serverAuth\n' "$(subnet "$e")" >"$ext"
    sign "$CERTS/server-$e" "10.77.$(subnet "$e").2" "$ext"
  done
  printf 'extendedKeyUsage = clientAuth\n' >"$ext"
  sign "$CERTS/client" "mlops-tui test client" "$ext"
  # A client certificate from a CA the engines do not trust, to test that they refuse it.
  if [ ! -s "$CERTS/rogue/cert.pem" ]; then
    mkdir -p "$CERTS/rogue"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$CERTS/rogue/key.pem" -sha256 -days 3650 \
      -subj "/CN=rogue client" -addext "extendedKeyUsage = clientAuth" -out "$CERTS/rogue/cert.pem" 2>/dev/null
    cp "$CERTS/ca/ca.pem" "$CERTS/rogue/ca.pem"
  fi
  rm -f "$ext"
}

make_netns() {
  local e="$1" n
  n="$(subnet "$e")"
  [ -e "/run/netns/mlt-$e" ] || ip netns add "mlt-$e"
  if ! ip link show "mlt-${e}h" >/dev/null 2>&1; then
    ip link add "mlt-${e}h" type veth peer name "mlt-${e}n"
    ip link set "mlt-${e}n" netns "mlt-$e"
    ip addr add "10.77.$n.1/24" dev "mlt-${e}h"
    ip link set "mlt-${e}h" up
    ip -n "mlt-$e" addr add "10.77.$n.2/24" dev "mlt-${e}n"
    ip -n "mlt-$e" link set "mlt-${e}n" up
  fi
  ip -n "mlt-$e" link set lo up
}

ping_sock() { curl -sf --max-time 2 --unix-socket "$1" http://localhost/_ping >/dev/null 2>&1; }

start_dockerd() {
  local e="$1" n exec_root sock
  n="$(subnet "$e")"
  exec_root="/run/mlops-$e"
  sock="$exec_root/docker.sock"
  if ping_sock "$sock"; then
    echo "engine $e already up (unix://$sock, tcp://10.77.$n.2:2376)"
    return
  fi
  mkdir -p "$exec_root" "$ROOT/$e"
  printf '{"storage-driver":"%s"}\n' "$(storage_driver)" >"$ROOT/$e/daemon.json"
  nsenter --net="/run/netns/mlt-$e" setsid dockerd \
    --config-file "$ROOT/$e/daemon.json" \
    --data-root "/var/lib/mlops-$e" --exec-root "$exec_root" --pidfile "$exec_root/dockerd.pid" \
    -H "unix://$sock" -H "tcp://10.77.$n.2:2376" \
    --tlsverify --tlscacert "$CERTS/ca/ca.pem" \
    --tlscert "$CERTS/server-$e/cert.pem" --tlskey "$CERTS/server-$e/key.pem" \
    --iptables=false --ip-masq=false --bridge=none \
    --containerd-namespace "mlt-$e" --containerd-plugins-namespace "mlt-${e}p" \
    >"$ROOT/$e/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    ping_sock "$sock" && { echo "engine $e up (unix://$sock, tcp://10.77.$n.2:2376)"; return; }
    sleep 0.5
  done
  echo "error: engine $e did not answer on $sock within 30 s; its log: $ROOT/$e/dockerd.log" >&2
  tail -n 20 "$ROOT/$e/dockerd.log" >&2
  exit 1
}

write_env() {
  local env="$ROOT/engines.env"
  {
    for e in "${ENGINES[@]}"; do
      local E n
      E="$(echo "$e" | tr a-z A-Z)"
      n="$(subnet "$e")"
      echo "MLOPS_TEST_ENGINE_$E=tcp://10.77.$n.2:2376"
      echo "MLOPS_TEST_ENGINE_${E}_SOCK=/run/mlops-$e/docker.sock"
      echo "MLOPS_TEST_ENGINE_${E}_PID=/run/mlops-$e/dockerd.pid"
    done
    echo "MLOPS_TEST_ENGINE_TLS=$CERTS/client"
    echo "MLOPS_TEST_ENGINE_ROGUE_TLS=$CERTS/rogue"
  } >"$env"
  echo "wrote $env"
}

[ "$(id -u)" -eq 0 ] || { echo "error: tests/engines/up.sh needs root (network namespaces, dockerd)" >&2; exit 1; }
for tool in ip nsenter openssl curl dockerd; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing: run bash .ci/setup" >&2; exit 1; }
done
mkdir -p "$ROOT"
make_certs
for e in "${ENGINES[@]}"; do
  make_netns "$e"
  start_dockerd "$e"
done
write_env
