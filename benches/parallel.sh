#!/usr/bin/env bash
# Trials side by side: wall time to target with [budget] parallel = 1, 2, 3 on the local engine and
# across the local engine and the two test engines, as ratios to parallel = 1; and how long a trial
# whose engine dies takes to run again on another engine.
#
# Usage: bash benches/parallel.sh [speedup|loss|all]     (default: all)
#   ONLY=e1 measures only the configurations whose name holds it (and parallel = 1, the base);
#   RUNS (default 3) runs of each configuration for the speed-up (median shown);
#   LOSSES (default 5) engine kills for the loss figure (median shown); GRACE (default 5s) is the
#   [monitor] engine_grace of that run.
# Needs: target/debug/mlops-tui (or MLOPS_TUI=…), the mlops-tui/numpy image on the local engine, and
# the test engines of tests/engines/up.sh (started here when absent; run as root).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MLOPS_TUI:-$root/target/debug/mlops-tui}
runs=${RUNS:-3}
losses=${LOSSES:-5}
grace=${GRACE:-5s}
what=${1:-all}
[[ -x $bin ]] || (cd "$root" && cargo build --bin mlops-tui)
[[ -s /tmp/mlops-engines/engines.env ]] || bash "$root/tests/engines/up.sh" >/dev/null
# shellcheck disable=SC1091
source /tmp/mlops-engines/engines.env
tls=$MLOPS_TEST_ENGINE_TLS
local_engine="local=unix:///var/run/docker.sock"
e1="e1=$MLOPS_TEST_ENGINE_E1,tls=$tls"
e2="e2=$MLOPS_TEST_ENGINE_E2,tls=$tls"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Ends the bench, keeping its files for a look.
fail() {
    echo "parallel.sh: $1 (files kept in $tmp)" >&2
    trap - EXIT
    exit 1
}

# sample-projects/digits-mlp-numpy's script, committed to a fresh repository with a fixed search: six
# widths tried in order (`grow`), 2,000 epochs each (≈15 s of one core), the target met only by a wide
# one, so every configuration trains the same points and only how many run at once differs.
project() {
    local dir=$1 parallel=$2
    mkdir -p "$dir"
    cp "$root"/sample-projects/digits-mlp-numpy/train.py "$dir/"
    cat >"$dir/mlops.toml" <<TOML
[train]
command = ["python3", "train.py"]
image = "numpy"
[metric]
name = "accuracy"
target = ${TARGET:-0.97}
[budget]
max_iterations = 6
parallel = $parallel
[resources]
memory = "512m"
cpus = ${CPUS:-0.66}
[tweak]
strategy = "grow"
apply = "auto"
[tweak.space]
hidden_units = { values = [4, 6, 8, 12, 16, 64] }
[params]
epochs = ${EPOCHS:-2000}
lr = 0.05
TOML
    git -C "$dir" init -q
    git -C "$dir" add -A
    git -C "$dir" -c user.email=bench@localhost -c user.name=bench commit -qm bench
}

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }

# Which iteration reached the target, and how many were started, in the run of $1.
reached() {
    "$bin" --data-dir "$1.data" history 1 | awk '/^status/ {sub(/^status [a-z_]+: /, ""); print; exit}'
}

# Seconds from start to the end of a `--once` run that must reach its target.
time_to_target() {
    local parallel=$1; shift
    local dir=$tmp/p$RANDOM$RANDOM
    project "$dir" "$parallel"
    local t0 t1
    t0=$(date +%s.%N)
    if ! "$bin" --data-dir "$dir.data" run --headless --once --quiet --cold "$@" "$dir" >"$dir.log" 2>&1; then
        tail -5 "$dir.log" >&2
        fail "the run did not reach its target (log: $dir.log)"
    fi
    t1=$(date +%s.%N)
    echo "$(echo "$t1 - $t0" | bc) $dir"
}

speedup() {
    local base="" name parallel
    printf '%-34s %8s %9s %8s\n' "configuration" "runs" "median s" "speed-up"
    while read -r name parallel engines; do
        [[ -z ${ONLY:-} || $name == *${ONLY}* || $name == "local,parallel=1" ]] || continue
        local times=() secs last_dir
        for _ in $(seq "$runs"); do
            # shellcheck disable=SC2086
            read -r secs last_dir < <(time_to_target "$parallel" $engines)
            [[ -n $secs ]] || fail "a $name run failed"
            times+=("$secs")
        done
        local m
        m=$(printf '%s\n' "${times[@]}" | median)
        [[ -n $base ]] || base=$m
        printf '%-34s %8s %9s %7.2fx   (%s; %s)\n' "$name" "$runs" "$m" "$(echo "$base / $m" | bc -l)" \
            "${times[*]}" "$(reached "$last_dir")"
    done <<LIST
local,parallel=1 1 --engine $local_engine,slots=1
local,parallel=2 2 --engine $local_engine,slots=2
local,parallel=3 3 --engine $local_engine,slots=3
local+e1+e2,parallel=3 3 --engine $local_engine,slots=1 --engine $e1,slots=1 --engine $e2,slots=1
LIST
}

# Epoch-long sleeps with a checkpoint per epoch: the trial outlives the engine kill.
steady_project() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/train.py" <<'PY'
import os, time
ckpt = "/mlops/checkpoints/epoch.txt"
start = int(open(ckpt).read()) if os.path.exists(ckpt) else 0
for epoch in range(start + 1, 31):
    time.sleep(1)
    print(f"epoch {epoch}/30 accuracy={0.95 if epoch == 30 else 0.5}", flush=True)
    with open(ckpt + ".tmp", "w") as f:
        f.write(str(epoch))
    os.replace(ckpt + ".tmp", ckpt)
PY
    cat >"$dir/mlops.toml" <<TOML
[train]
command = ["python3", "train.py"]
image = "numpy"
[metric]
name = "accuracy"
target = 0.9
[budget]
max_iterations = 1
metric_timeout = "60s"
[resources]
memory = "256m"
cpus = 0.5
[monitor]
engine_grace = "$grace"
TOML
    git -C "$dir" init -q
    git -C "$dir" add -A
    git -C "$dir" -c user.email=bench@localhost -c user.name=bench commit -qm bench
}

# Running containers of this bench's store on the engine behind unix socket $1.
running_on() {
    curl -s --unix-socket "$1" "http://x/containers/json?filters=%7B%22label%22%3A%5B%22org.mlops-tui.store%3D$2%22%5D%7D" |
        grep -c '"Id"' || true
}

# Whether a container of store $2 runs on the engine behind socket $1.
runs_on() { test "$(running_on "$1" "$2")" -ge 1; }

wait_until() { # seconds, command… (run again every 0.1 s)
    local limit=$1; shift
    local end=$((SECONDS + limit))
    until "$@"; do
        ((SECONDS < end)) || return 1
        sleep 0.1
    done
}

loss() {
    local figures=()
    for i in $(seq "$losses"); do
        local dir=$tmp/loss$i
        steady_project "$dir"
        local store=$dir.data/runs
        "$bin" --data-dir "$dir.data" run --headless --once --cold --quiet \
            --engine "$e1,slots=1" --engine "$e2,slots=1" "$dir" >"$dir.log" 2>&1 &
        local run=$!
        wait_until 120 runs_on "$MLOPS_TEST_ENGINE_E1_SOCK" "$store" ||
            fail "the trial never ran on e1 (log: $dir.log)"
        sleep 4
        local t0 t1
        t0=$(date +%s.%N)
        kill -9 "$(cat "$MLOPS_TEST_ENGINE_E1_PID")"
        wait_until 120 runs_on "$MLOPS_TEST_ENGINE_E2_SOCK" "$store" ||
            fail "the trial never ran again on e2 (log: $dir.log)"
        t1=$(date +%s.%N)
        figures+=("$(echo "$t1 - $t0" | bc)")
        bash "$root/tests/engines/up.sh" >/dev/null
        wait "$run" || { echo "parallel.sh: run $i did not end well (log: $dir.log)" >&2; tail -5 "$dir.log" >&2; }
    done
    printf 'engine killed -> trial running on another engine (grace %s): median %.1f s of %s   (%s)\n' \
        "$grace" "$(printf '%s\n' "${figures[@]}" | median)" "$losses" "${figures[*]}"
}

case $what in
    speedup) speedup ;;
    loss) loss ;;
    all) speedup; loss ;;
    *) echo "usage: bash benches/parallel.sh [speedup|loss|all]" >&2; exit 2 ;;
esac
