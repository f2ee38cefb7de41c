#!/usr/bin/env bash
# Cost of a log flood to the process that takes it: a container prints RATE lines a second for
# DURATION seconds (in bursts every 100 ms, then the metric), and the real binary takes it twice:
# `run --headless --once`, and the dashboard in a detached tmux pane (quit with `q` once the run
# has ended). For each, GNU time reports the peak resident memory and the CPU seconds (user +
# system) of the mlops-tui process; the container's own work is not counted.
#
# Usage: bash benches/flood.sh [BINARY [OTHER_BINARY]]
#   BINARY defaults to target/debug/mlops-tui. With OTHER_BINARY, both are measured on the same
#   flood, one after the other, and the table gains OTHER/BINARY ratios (e.g. before and after a
#   change: build main's binary, copy it aside, then pass it first).
#   RATE (default 100000), DURATION (default 30) seconds, RUNS (default 1) per binary and mode (the
#   median is shown).
#
# Needs tmux, GNU time (/usr/bin/time) and the mlops-tui/numpy image (`mlops-tui images build numpy`).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
a=${1:-$root/target/debug/mlops-tui}
b=${2:-}
rate=${RATE:-100000}
duration=${DURATION:-30}
runs=${RUNS:-1}

command -v tmux >/dev/null || { echo "flood: tmux is needed" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "flood: GNU time (/usr/bin/time) is needed" >&2; exit 1; }
for bin in "$a" ${b:+"$b"}; do
    [[ -x $bin ]] || { echo "flood: $bin is not an executable (cargo build --bin mlops-tui)" >&2; exit 1; }
done

tmp=$(mktemp -d)
session="flood-$$"
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$tmp"' EXIT

# A fresh project (a new repository each time, so nothing counts as trained already).
make_project() {
    local proj=$1
    mkdir -p "$proj"
    cat >"$proj/train.py" <<EOF
import sys, time
RATE = $rate
DURATION = $duration
burst = RATE // 10
pad = "x" * 60
n = 0
t0 = time.time()
while time.time() - t0 < DURATION:
    start = time.time()
    sys.stdout.write("".join(f"flood line {n + i} {pad}\n" for i in range(burst)))
    sys.stdout.flush()
    n += burst
    rest = 0.1 - (time.time() - start)
    if rest > 0:
        time.sleep(rest)
print(f"printed {n} lines in {time.time() - t0:.1f} s", flush=True)
print("final accuracy=0.99", flush=True)
EOF
    cat >"$proj/mlops.toml" <<'EOF'
[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.5

[budget]
max_iterations = 1
metric_timeout = "5m"
EOF
    git -C "$proj" init -q
    git -C "$proj" -c user.name=bench -c user.email=bench@localhost add -A
    git -C "$proj" -c user.name=bench -c user.email=bench@localhost commit -qm "flood project"
}

# Prints "<peak RSS KiB> <CPU seconds>" from a GNU time output file.
read_time() {
    awk -F'\t' '/^FLOOD/ {printf "%s %.2f\n", $2, $3 + $4}' "$1"
}

# One measurement: MODE (headless or tui) with BIN; prints "<peak RSS KiB> <CPU s> <printed line>".
measure() {
    local mode=$1 bin=$2 n=$3
    local dir=$tmp/$mode-$n
    mkdir -p "$dir/data" "$dir/state" "$dir/config"
    make_project "$dir/proj"
    local envs="MLOPS_TUI_DATA_DIR=$dir/data MLOPS_TUI_STATE_DIR=$dir/state MLOPS_TUI_CONFIG_DIR=$dir/config"
    local fmt=$'FLOOD\t%M\t%U\t%S'
    if [[ $mode == headless ]]; then
        env $envs /usr/bin/time -o "$dir/time" -f "$fmt" "$bin" run --headless --once "$dir/proj" \
            >"$dir/out" 2>&1 || true
        grep -q "target reached" "$dir/out" || { echo "flood: headless run failed:" >&2; tail -20 "$dir/out" >&2; exit 1; }
    else
        tmux new-session -d -s "$session" -x 160 -y 48 \
            "env $envs /usr/bin/time -o $dir/time -f '$fmt' $bin $dir/proj; touch $dir/quit; sleep 600"
        local waited=0
        until tmux capture-pane -p -t "$session" | grep -q "target reached"; do
            sleep 1
            waited=$((waited + 1))
            if ((waited > duration + 600)); then
                echo "flood: the dashboard did not finish the run:" >&2
                tmux capture-pane -p -t "$session" >&2
                exit 1
            fi
        done
        tmux send-keys -t "$session" q
        until [[ -e $dir/quit ]]; do sleep 0.2; done
        tmux kill-session -t "$session"
    fi
    read_time "$dir/time"
}

# The median (by CPU) of RUNS measurements.
median() {
    local mode=$1 bin=$2 tag=$3
    local i
    for ((i = 0; i < runs; i++)); do
        measure "$mode" "$bin" "$tag-$i"
    done | sort -k2 -n | sed -n "$(((runs + 1) / 2))p"
}

echo "flood: $rate lines/s for $duration s, median of $runs; peak RSS (MiB), CPU (user + system s)"
printf '%-9s %-10s %10s %8s\n' mode binary "RSS MiB" "CPU s"
for mode in headless tui; do
    read -r rss_a cpu_a < <(median "$mode" "$a" a)
    printf '%-9s %-10s %10.1f %8.2f\n' "$mode" A "$(echo "$rss_a / 1024" | bc -l)" "$cpu_a"
    if [[ -n $b ]]; then
        read -r rss_b cpu_b < <(median "$mode" "$b" b)
        printf '%-9s %-10s %10.1f %8.2f   B/A: RSS %.2f, CPU %.2f\n' "$mode" B \
            "$(echo "$rss_b / 1024" | bc -l)" "$cpu_b" \
            "$(echo "$rss_b / $rss_a" | bc -l)" "$(echo "$cpu_b / $cpu_a" | bc -l)"
    fi
done
echo "A = $a"
[[ -n $b ]] && echo "B = $b"
exit 0
