#!/usr/bin/env bash
# Trials on a Docker Swarm against the same trials on standalone Docker engines.
#
# speed: wall time of `run --headless --once` from its start to its "target reached" line (printed
#   once the trials still running are stopped), with
#   [budget] parallel = 1, 2 and 3, once with the swarm of tests/swarm/up.sh as the only `[[engines]]`
#   entry (kind = "swarm", slots = 3) and once on the local engine plus the two engines of
#   tests/engines/up.sh (`--engine local=… --engine e1=… --engine e2=…`, one slot each), side by side
#   with the ratio swarm/engines. The project is a random search (seed fixed, so both modes propose the
#   same points in the same order) over a knob `k` of 8 values that only one value meets the target
#   with, at most 6 iterations (with seed 3, k = 8 is the 6th point tried one at a time and the 5th
#   with 2 or 3 at a time: 6, 3 and 2 rounds of trials); each trial sleeps EPOCHS epochs of SECS seconds (it reads `k` from
#   $MLOPS_PARAMS, checkpoints each epoch) and reserves 1.5 CPUs, so no node or engine runs two.
#   The trial sleeps rather than computes: on one machine the nodes have no CPUs of their own, and
#   what differs between the modes is the orchestration (image layer built and pushed on the
#   manager, pulled by the node, files home through the service log, against a container with bind
#   mounts or an archive upload).
#   Warm-up: before anything is timed, one untimed run per mode with three short trials side by side,
#   so that the manager has the sklearn profile image, the registry holds it and each node has pulled
#   it (several minutes the first time on a swarm), and e1 and e2 have it too.
# loss: on the swarm, with the manager node drained (no trial lands on it), one trial of LOSS_EPOCHS
#   epochs of 2 s; the dockerd of the node it runs on is SIGKILLed once it prints epoch KILL_AT. Printed:
#   seconds from the kill until Swarm marks the node down (its state, polled every 0.25 s), until
#   mlops-tui says so, until it counts the trial lost, until it starts the new attempt (its "new attempt
#   … started" line: the attempt's image layer built and pushed, its service created), until the new
#   attempt's first epoch line; and the epochs done twice (the last epoch printed before the kill minus the one the new attempt
#   resumes after). The node is then started again with tests/swarm/up.sh and the manager undrained.
#
# Usage: bash benches/swarm.sh [speed|loss|all]     (default: all; as root)
#   MLOPS_TEST_SWARM (default /tmp/mlops-swarm): the swarm's directory, as given to tests/swarm/up.sh
#     (its prefix and network are read from its swarm.env for the restart of the killed node);
#   RUNS (default 1) timed runs per mode and parallel (median shown); EPOCHS (default 12) and SECS
#   (default 2) per trial; SEED (default 3) and WINNER (default 8) the search's seed and the one value
#   of `k` that reaches the target; LOSS_EPOCHS (default 20), KILL_AT (default 5); KEEP=1 keeps the
#   projects and their timestamped output (kept anyway when the bench fails).
# Needs: target/debug/mlops-tui (or MLOPS_TUI=…), the mlops-tui/sklearn image on the local engine, the
# swarm of tests/swarm/up.sh and the engines of tests/engines/up.sh, both up (the bench fails, naming
# the script to run, when they are not), the docker CLI and curl. The docker CLI only inspects the
# swarm and drains the manager here; mlops-tui itself talks to the engines through their API.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MLOPS_TUI:-$root/target/debug/mlops-tui}
runs=${RUNS:-1}
epochs=${EPOCHS:-12}
secs=${SECS:-2}
seed=${SEED:-3}
winner=${WINNER:-8}
loss_epochs=${LOSS_EPOCHS:-20}
kill_at=${KILL_AT:-5}
what=${1:-all}
swarm_root=${MLOPS_TEST_SWARM:-/tmp/mlops-swarm}

die() { echo "swarm.sh: $*" >&2; exit 1; }
case $what in speed | loss | all) ;; *) echo "usage: bash benches/swarm.sh [speed|loss|all]" >&2; exit 2 ;; esac
[[ $(id -u) -eq 0 ]] || die "run as root (the loss part kills a node's dockerd and starts it again with tests/swarm/up.sh)"
[[ -x $bin ]] || die "$bin is not built: cargo build --bin mlops-tui (or set MLOPS_TUI)"
command -v docker >/dev/null || die "the docker CLI is needed"
docker image inspect mlops-tui/sklearn >/dev/null 2>&1 ||
    die "the mlops-tui/sklearn image is missing on the local engine: $bin images build sklearn"

ping_sock() { curl -sf --max-time 3 --unix-socket "$1" http://x/_ping >/dev/null 2>&1; }

# The swarm of tests/swarm/up.sh, up with three nodes Ready and its registry answering.
[[ -s $swarm_root/swarm.env ]] ||
    die "no swarm at $swarm_root ($swarm_root/swarm.env missing): start it with MLOPS_TEST_SWARM=$swarm_root bash tests/swarm/up.sh (and its MLOPS_SWARM_PREFIX, MLOPS_SWARM_NET)"
# Read as key=value lines, not sourced: its MLOPS_SWARM_NODES holds spaces unquoted.
while IFS='=' read -r key value; do
    [[ $key == MLOPS_SWARM_* ]] && printf -v "$key" '%s' "${value//\"/}"
done <"$swarm_root/swarm.env"
manager_sock=${MLOPS_SWARM_MANAGER#unix://}
mgr() { docker -H "$MLOPS_SWARM_MANAGER" "$@"; }
ping_sock "$manager_sock" || die "the swarm manager does not answer at $MLOPS_SWARM_MANAGER: run tests/swarm/up.sh (same MLOPS_TEST_SWARM=$swarm_root)"
ready=$(mgr node ls --format '{{.Status}}' | grep -c '^Ready$' || true)
[[ $ready -ge 3 ]] || die "the swarm at $MLOPS_SWARM_MANAGER has $ready of 3 nodes Ready: run tests/swarm/up.sh again"
curl -sf --max-time 3 "http://$MLOPS_SWARM_REGISTRY/v2/" >/dev/null ||
    die "the swarm's registry does not answer at $MLOPS_SWARM_REGISTRY: run tests/swarm/up.sh again"
# The prefix and network up.sh was started with, to start a killed node again the same way.
swarm_prefix=${MLOPS_SWARM_NODES%%1 *}
swarm_net=${MLOPS_SWARM_REGISTRY%.2:*}
manager_id=$(mgr info --format '{{.Swarm.NodeID}}')

# The engines of tests/engines/up.sh.
[[ -s /tmp/mlops-engines/engines.env ]] ||
    die "the test engines are not up (/tmp/mlops-engines/engines.env missing): bash tests/engines/up.sh"
# shellcheck disable=SC1091
source /tmp/mlops-engines/engines.env
for sock in "$MLOPS_TEST_ENGINE_E1_SOCK" "$MLOPS_TEST_ENGINE_E2_SOCK"; do
    ping_sock "$sock" || die "the test engine at $sock does not answer: bash tests/engines/up.sh"
done
engine_flags=(--engine "local=unix:///var/run/docker.sock,slots=1"
    --engine "e1=$MLOPS_TEST_ENGINE_E1,tls=$MLOPS_TEST_ENGINE_TLS,slots=1"
    --engine "e2=$MLOPS_TEST_ENGINE_E2,tls=$MLOPS_TEST_ENGINE_TLS,slots=1")

tmp=$(mktemp -d /tmp/swarm-bench.XXXXXX)
run_pid=""      # the mlops-tui run going on, if any
reader_pid=""   # what stamps its lines
killed_node=""  # a node whose dockerd this bench killed and has not started again
drained=""      # set while this bench keeps the manager drained

# Everything this bench started or changed goes away or back, however it ends.
cleanup() {
    local rc=$?
    set +e
    [[ -n $run_pid ]] && kill "$run_pid" 2>/dev/null && wait "$run_pid" 2>/dev/null
    [[ -n $reader_pid ]] && kill "$reader_pid" 2>/dev/null
    for data in "$tmp"/*.data; do
        [[ -d $data ]] || continue
        local label="org.mlops-tui.store=$data/runs"
        mgr service ls -q --filter "label=$label" | xargs -r docker -H "$MLOPS_SWARM_MANAGER" service rm >/dev/null
        for host in unix:///var/run/docker.sock "unix://$MLOPS_TEST_ENGINE_E1_SOCK" "unix://$MLOPS_TEST_ENGINE_E2_SOCK"; do
            docker -H "$host" ps -aq --filter "label=$label" | xargs -r docker -H "$host" rm -f >/dev/null
        done
    done
    [[ -n $killed_node ]] && restart_node
    [[ -n $drained ]] && mgr node update --availability active "$manager_id" >/dev/null
    if ((rc == 0)) && [[ -z ${KEEP:-} ]]; then rm -rf "$tmp"; else echo "swarm.sh: files kept in $tmp" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

restart_node() {
    echo "starting node $killed_node again (tests/swarm/up.sh)" >&2
    MLOPS_SWARM_PREFIX=$swarm_prefix MLOPS_SWARM_NET=$swarm_net MLOPS_TEST_SWARM=$swarm_root \
        bash "$root/tests/swarm/up.sh" >"$tmp/up.log" 2>&1 || { cat "$tmp/up.log" >&2; return 1; }
    killed_node=""
}

# A training script that checkpoints every epoch and resumes after its checkpoint's epoch. It reads
# `k` (and the fixed `winner`, `epochs`, `secs`) from $MLOPS_PARAMS; only k == winner reports a value
# over the target, at its last epoch, so every other trial runs its full length and pruning cannot
# tell them apart before that.
write_train_py() {
    cat >"$1/train.py" <<'PY'
import json, os, time
p = json.loads(os.environ.get("MLOPS_PARAMS") or open("/mlops/params.json").read())
k, winner, epochs, secs = int(p["k"]), int(p["winner"]), int(p["epochs"]), float(p["secs"])
ckpt = "/mlops/checkpoints/epoch.txt"
start = int(open(ckpt).read()) if os.path.exists(ckpt) else 0
print(f"resuming after epoch {start}" if start else f"starting k={k}", flush=True)
for epoch in range(start + 1, epochs + 1):
    time.sleep(secs)
    value = 0.95 if k == winner and epoch == epochs else 0.5 + epoch / 1000
    print(f"epoch {epoch}/{epochs} accuracy={value:.4f}", flush=True)
    os.makedirs(os.path.dirname(ckpt), exist_ok=True)
    with open(ckpt + ".tmp", "w") as f:
        f.write(str(epoch))
    os.replace(ckpt + ".tmp", ckpt)
PY
}

# A fresh project repository in $1: parallel $2, at most $3 iterations, epochs $4 of $5 s, $6 (swarm
# or engines) as the engines.
project() {
    local dir=$1 parallel=$2 max=$3 n_epochs=$4 n_secs=$5 mode=$6
    mkdir -p "$dir"
    write_train_py "$dir"
    cat >"$dir/mlops.toml" <<TOML
[train]
command = ["python3", "train.py"]
image = "sklearn"
[metric]
name = "accuracy"
target = 0.9
[budget]
max_iterations = $max
max_failures = 0
metric_timeout = "3m"
parallel = $parallel
[resources]
memory = "256m"
cpus = 1.5
[tweak]
strategy = "random"
seed = $seed
apply = "auto"
[tweak.pruning]
rule = "off"
[tweak.space]
k = { values = [1, 2, 3, 4, 5, 6, 7, 8] }
[params]
winner = $winner
epochs = $n_epochs
secs = $n_secs
TOML
    if [[ $mode == swarm ]]; then
        cat >>"$dir/mlops.toml" <<TOML
[[engines]]
name = "cluster"
kind = "swarm"
host = "$MLOPS_SWARM_MANAGER"
registry = "$MLOPS_SWARM_REGISTRY"
slots = 3
TOML
    fi
    git -C "$dir" init -q
    git -C "$dir" add -A
    git -C "$dir" -c user.email=bench@localhost -c user.name=bench commit -qm bench
}

# Starts `run --headless --once` on project $1 in the background (its pid in run_pid); each line it
# prints goes to $1.log behind the time it arrived ($EPOCHREALTIME), through a fifo so that the
# binary's own exit status stays readable. Extra arguments go to `run`.
start_run() {
    local dir=$1; shift
    mkfifo "$dir.fifo"
    while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done <"$dir.fifo" >"$dir.log" &
    reader_pid=$!
    "$bin" --data-dir "$dir.data" run --headless --once --cold "$@" "$dir" >"$dir.fifo" 2>&1 &
    run_pid=$!
}

# Waits for the run started last and for its last line; fails unless the binary exited with one of
# the codes in $1 (e.g. "0 3": target reached or budget spent).
end_run() {
    local ok=$1 dir=$2 code=0
    wait "$run_pid" || code=$?
    run_pid=""
    wait "$reader_pid" || true
    reader_pid=""
    [[ " $ok " == *" $code "* ]] || {
        tail -n 15 "$dir.log" >&2
        die "the run in $dir exited with status $code, not one of: $ok (its output: $dir.log)"
    }
}

# The time of the first line of $1.log matching the extended regex $2 (empty when none).
first_at() { grep -E -m1 -- "$2" "$1.log" | cut -d' ' -f1 || true; }

# Seconds from the kill ($killed_at of the caller) to time $1, or "not said" when $1 is empty.
since() { if [[ -n $1 ]]; then minus "$1" "$killed_at"; else echo "not said"; fi; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }

# Warm-up: three short trials side by side, so that every node or engine has the image.
warm_up() {
    local mode=$1 dir=$tmp/warm-$1 t0
    project "$dir" 3 3 1 0 "$mode"
    sed -i "s/^winner = .*/winner = 0/" "$dir/mlops.toml"
    git -C "$dir" -c user.email=bench@localhost -c user.name=bench commit -qam "no winner"
    t0=$EPOCHREALTIME
    if [[ $mode == swarm ]]; then start_run "$dir"; else start_run "$dir" "${engine_flags[@]}"; fi
    end_run "0 3" "$dir"
    printf 'warm-up on the %s (untimed): %s s\n' "$mode" "$(minus "$EPOCHREALTIME" "$t0")"
}

# One timed run: sets secs_to_target and reached_at (the iteration that reached the target).
timed_run() {
    local mode=$1 parallel=$2 dir=$tmp/$1-p$2-$RANDOM t0 at
    project "$dir" "$parallel" 6 "$epochs" "$secs" "$mode"
    t0=$EPOCHREALTIME
    if [[ $mode == swarm ]]; then start_run "$dir"; else start_run "$dir" "${engine_flags[@]}"; fi
    end_run 0 "$dir"
    at=$(first_at "$dir" 'target reached')
    [[ -n $at ]] || die "no \"target reached\" line in $dir.log"
    secs_to_target=$(minus "$at" "$t0")
    reached_at=$(grep -m1 -oE 'target reached at iteration [0-9]+' "$dir.log" | grep -oE '[0-9]+$')
    startups[$mode]+="$(startup_secs "$dir") "
}

# Seconds from each iteration's placement to its "container … started" line in the output of run
# $1, one per line: what a trial costs before its script runs (on a swarm: its image layer built and
# pushed on the manager, the service created; on an engine: the container created, files uploaded).
startup_secs() {
    awk '{ if (match($0, /\[place:[0-9]+\]/)) placed[substr($0, RSTART + 7, RLENGTH - 8)] = $1
           if (match($0, /\[train:[0-9]+\] container .* started/)) {
               split(substr($0, RSTART + 7), a, "]"); no = a[1]
               if (no in placed) printf "%.1f\n", $1 - placed[no] } }' "$1.log"
}

declare -A startups
speed() {
    echo "warming up (copies the sklearn image to the swarm's manager, the registry and the nodes, and to e1/e2)"
    warm_up swarm
    warm_up engines
    declare -A times found
    for parallel in 1 2 3; do
        for _ in $(seq "$runs"); do
            for mode in swarm engines; do
                timed_run "$mode" "$parallel"
                echo "  $mode, parallel = $parallel: $secs_to_target s to target (iteration $reached_at)"
                times[$mode$parallel]+="$secs_to_target "
                found[$mode$parallel]+="$reached_at "
            done
        done
    done
    echo
    echo "Wall time from start to \"target reached\" (median of $runs; trials of $epochs epochs of $secs s, at most 6 iterations, random seed $seed)"
    printf '| parallel | swarm (3 nodes) | engines (local + e1 + e2) | swarm / engines | iteration that reached it |\n'
    printf '| --- | --- | --- | --- | --- |\n'
    for parallel in 1 2 3; do
        local sw en
        sw=$(tr ' ' '\n' <<<"${times[swarm$parallel]}" | grep . | median)
        en=$(tr ' ' '\n' <<<"${times[engines$parallel]}" | grep . | median)
        printf '| %s | %s s | %s s | %.2f | %s (swarm) / %s (engines) |\n' "$parallel" "$sw" "$en" \
            "$(awk -v a="$sw" -v b="$en" 'BEGIN { print a / b }')" "${found[swarm$parallel]% }" "${found[engines$parallel]% }"
    done
    printf 'Placement to "container started", median per trial: swarm %s s, engines %s s\n' \
        "$(tr ' ' '\n' <<<"${startups[swarm]}" | grep . | median)" "$(tr ' ' '\n' <<<"${startups[engines]}" | grep . | median)"
    echo
}

# The swarm node id and test name (c2, s3 …) of the running task of the only service of store $1.
task_node() {
    local service id
    service=$(mgr service ls -q --filter "label=org.mlops-tui.store=$1" | head -n1)
    [[ -n $service ]] || return 1
    id=$(mgr service ps -q --filter desired-state=running "$service" | head -n1)
    [[ -n $id ]] || return 1
    id=$(mgr inspect --format '{{.NodeID}}' "$id")
    echo "$id $(mgr node inspect --format '{{index .Spec.Labels "mlops-test.node"}}' "$id")"
}

# Seconds (up to $1) until $2… succeeds, tried every 0.25 s.
wait_until() {
    local end=$((SECONDS + $1)); shift
    until "$@"; do
        ((SECONDS < end)) || return 1
        sleep 0.25
    done
}

loss() {
    local dir=$tmp/loss node_id node pid killed_at down_at seen_down_at lost_at attempt_at epoch_at first_again before resumed
    project "$dir" 1 1 "$loss_epochs" 2 swarm
    sed -i "s/^winner = .*/winner = 1/; s/^k = .*/k = { values = [1] }/" "$dir/mlops.toml"
    git -C "$dir" -c user.email=bench@localhost -c user.name=bench commit -qam "one trial"
    mgr node update --availability drain "$manager_id" >/dev/null
    drained=1
    start_run "$dir"
    wait_until 600 grep -qE "epoch $kill_at/$loss_epochs " "$dir.log" ||
        die "the trial never printed epoch $kill_at (its output: $dir.log)"
    read -r node_id node < <(task_node "$dir.data/runs") || die "no running task of the trial on the swarm"
    local key=MLOPS_SWARM_${node^^}_PID
    pid=$(cat "${!key}")
    killed_at=$EPOCHREALTIME
    kill -KILL "$pid"
    killed_node=$node
    echo "killed the dockerd of node $node (pid $pid) at epoch $kill_at"
    node_down() { [[ $(mgr node inspect --format '{{.Status.State}}' "$node_id") != ready ]]; }
    wait_until 300 node_down || die "Swarm never marked node $node down"
    down_at=$EPOCHREALTIME
    end_run 0 "$dir"
    # Not "… a new attempt starts on another node", which says the trial is lost.
    attempt_at=$(first_at "$dir" 'new attempt [^ ]+ started')
    [[ -n $attempt_at ]] || die "no \"new attempt … started\" line in $dir.log"
    seen_down_at=$(first_at "$dir" '\[engine\] swarm .* down')
    lost_at=$(first_at "$dir" 'container died')
    read -r epoch_at first_again < <(awk -v t="$attempt_at" '$1 > t && match($0, / epoch [0-9]+\//) {
        print $1, substr($0, RSTART + 7, RLENGTH - 8); exit }' "$dir.log")
    [[ -n $epoch_at ]] || die "the new attempt printed no epoch (its output: $dir.log)"
    before=$(awk -v t="$killed_at" '$1 <= t' "$dir.log" | grep -oE " epoch [0-9]+/" | tail -n1 | grep -oE '[0-9]+')
    resumed=$(grep -m1 -oE 'resuming after epoch [0-9]+' "$dir.log" | grep -oE '[0-9]+$' || echo 0)
    restart_node
    mgr node update --availability active "$manager_id" >/dev/null
    drained=""
    echo
    echo "Node loss on the swarm (one trial of $loss_epochs epochs of 2 s, manager drained, dockerd SIGKILLed at epoch $kill_at)"
    printf '| from the kill until | seconds |\n| --- | --- |\n'
    printf '| Swarm marks node %s down | %s |\n' "$node" "$(minus "$down_at" "$killed_at")"
    printf '| mlops-tui says the node is down | %s |\n' "$(since "$seen_down_at")"
    printf '| mlops-tui counts the trial lost ("container died", revival decided) | %s |\n' "$(since "$lost_at")"
    printf '| mlops-tui starts the new attempt ("new attempt … started") | %s |\n' "$(minus "$attempt_at" "$killed_at")"
    printf '| the new attempt prints its first epoch | %s |\n' "$(minus "$epoch_at" "$killed_at")"
    printf 'epochs done twice: %s (last epoch printed before the kill %s, resumed after epoch %s, first epoch of the new attempt %s)\n' \
        "$((before - resumed))" "$before" "$resumed" "$first_again"
}

case $what in
    speed) speed ;;
    loss) loss ;;
    all) speed; loss ;;
esac
