#!/usr/bin/env bash
# Footprint of the dashboard at rest, next to oxker's: binary size, resident memory (VmRSS) a few seconds
# after start, its proportional share (PSS: shared pages such as the mapped binary and libraries divided
# among the processes that map them, the memory the process really costs), and start-up time (launch to
# the first non-blank frame, median of RUNS).
#
# Usage: OXKER=/path/to/oxker bash benches/footprint.sh [MLOPS_TUI_BINARY]
#   MLOPS_TUI_BINARY defaults to target/release/mlops-tui (built with `cargo build --release` when absent).
#   OXKER is optional; without it only mlops-tui is measured. To get oxker:
#     git clone https://github.com/mrjackwills/oxker /tmp/oxker && (cd /tmp/oxker && cargo build --release)
#     OXKER=/tmp/oxker/target/release/oxker bash benches/footprint.sh
#   RUNS (default 10) start-ups are timed; SETTLE (default 5) seconds pass before VmRSS is read.
#
# Needs tmux and a reachable Docker engine with the mlops-tui/numpy image (`mlops-tui images build numpy`).
# The dashboard is measured at rest: a copy of sample-projects/digits-mlp-numpy is committed to a fresh
# repository and trained once headless first (one iteration), so the dashboard opens on a head that was
# already trained and waits for a new commit instead of starting a container.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/target/release/mlops-tui}
runs=${RUNS:-10}
settle=${SETTLE:-5}
oxker=${OXKER:-}

if [[ ! -x $bin ]]; then
    (cd "$root" && cargo build --release --bin mlops-tui)
fi
command -v tmux >/dev/null || { echo "footprint: tmux is needed" >&2; exit 1; }

tmp=$(mktemp -d)
session="footprint-$$"
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$tmp"' EXIT

# A finished run on the project's head, so the dashboard does not train.
prepare_project() {
    local proj=$tmp/proj
    mkdir -p "$proj" "$tmp/data" "$tmp/state" "$tmp/config"
    cp "$root"/sample-projects/digits-mlp-numpy/{train.py,mlops.toml} "$proj/"
    sed -i 's/^max_iterations = .*/max_iterations = 1/' "$proj/mlops.toml"
    git -C "$proj" init -q
    git -C "$proj" -c user.name=bench -c user.email=bench@localhost add -A
    git -C "$proj" -c user.name=bench -c user.email=bench@localhost commit -qm "footprint project"
    env_mlops run --headless --once "$proj" >"$tmp/headless.log" 2>&1 || {
        local rc=$?
        # 3 = budget spent: the run finished, which is all that is needed.
        [[ $rc -eq 3 ]] || { echo "footprint: headless run failed ($rc):" >&2; cat "$tmp/headless.log" >&2; exit 1; }
    }
}

env_mlops() {
    env MLOPS_TUI_DATA_DIR="$tmp/data" MLOPS_TUI_STATE_DIR="$tmp/state" \
        MLOPS_TUI_CONFIG_DIR="$tmp/config" "$bin" "$@"
}

now_ns() { date +%s%N; }

# Starts COMMAND in a detached 160x48 tmux session; prints milliseconds until the pane shows any text.
start_and_time() {
    local t0 t1
    t0=$(now_ns)
    tmux new-session -d -s "$session" -x 160 -y 48 "$@"
    until tmux capture-pane -p -t "$session" 2>/dev/null | grep -q '[^[:space:]]'; do
        if (( ($(now_ns) - t0) > 20000000000 )); then
            echo "footprint: nothing drawn within 20 s by: $*" >&2; exit 1
        fi
    done
    t1=$(now_ns)
    echo $(( (t1 - t0) / 1000000 ))
}

stop() {
    tmux kill-session -t "$session" 2>/dev/null || true
    sleep 0.3
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

# Prints "<size MiB> <rss MiB> <median start ms>" for COMMAND.
measure() {
    local size=$1; shift
    local times=() pid rss pss
    for ((i = 0; i < runs; i++)); do
        times+=("$(start_and_time "$@")")
        stop
    done
    start_and_time "$@" >/dev/null
    sleep "$settle"
    pid=$(tmux display -p -t "$session" '#{pane_pid}')
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
    pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")
    stop
    printf '%s %s %s %s\n' "$(awk -v b="$size" 'BEGIN {printf "%.1f", b/1048576}')" \
        "$(awk -v k="$rss" 'BEGIN {printf "%.1f", k/1024}')" \
        "$(awk -v k="$pss" 'BEGIN {printf "%.1f", k/1024}')" \
        "$(printf '%s\n' "${times[@]}" | median)"
}

prepare_project
dash=(env MLOPS_TUI_DATA_DIR="$tmp/data" MLOPS_TUI_STATE_DIR="$tmp/state"
    MLOPS_TUI_CONFIG_DIR="$tmp/config" "$bin" "$tmp/proj")
read -r m_size m_rss m_pss m_start < <(measure "$(stat -c %s "$bin")" "${dash[@]}")

printf '%-12s %12s %12s %12s %12s\n' tool "binary MiB" "RSS MiB" "PSS MiB" "start ms"
printf '%-12s %12s %12s %12s %12s\n' mlops-tui "$m_size" "$m_rss" "$m_pss" "$m_start"
if [[ -n $oxker ]]; then
    read -r o_size o_rss o_pss o_start < <(measure "$(stat -c %s "$oxker")" "$oxker")
    printf '%-12s %12s %12s %12s %12s\n' oxker "$o_size" "$o_rss" "$o_pss" "$o_start"
    printf '%-12s %12s %12s %12s %12s\n' ratio \
        "$(awk -v a="$m_size" -v b="$o_size" 'BEGIN {printf "%.2f", a/b}')" \
        "$(awk -v a="$m_rss" -v b="$o_rss" 'BEGIN {printf "%.2f", a/b}')" \
        "$(awk -v a="$m_pss" -v b="$o_pss" 'BEGIN {printf "%.2f", a/b}')" \
        "$(awk -v a="$m_start" -v b="$o_start" 'BEGIN {printf "%.2f", a/b}')"
else
    echo "(OXKER not set: oxker not measured; see the header of this script)"
fi
# Start-up times move with the machine's load: say under which the figures were taken.
printf 'measured %s on %s cores, load average %s\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
