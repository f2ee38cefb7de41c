#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU, its driver and nvidia-container-toolkit:
# trains the digits CNN sample once on the CPU and once with [resources] gpus = 1, asserts that
# the GPU run's container saw the device (torch.cuda.is_available() printed by the script) and
# that it trained faster, and prints both times and the ratio.
#   benches/gpu.sh [path/to/mlops-tui]
# The first GPU run builds the torch-cuda image (several GB): allow some minutes.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/target/release/mlops-tui}
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

one() { # $1 = cpu|gpu
  local dir=$work/$1
  cp -r "$here/sample-projects/digits-cnn-torch" "$dir"
  sed -i 's/^max_iterations = .*/max_iterations = 1/' "$dir/mlops.toml"
  if [ "$1" = gpu ]; then
    sed -i 's/^\[resources\]/[resources]\ngpus = 1/' "$dir/mlops.toml"
    grep -q '^gpus = 1' "$dir/mlops.toml" || printf '\n[resources]\ngpus = 1\n' >> "$dir/mlops.toml"
  fi
  # The script says which device it trains on.
  sed -i '1i import torch as _t, sys as _s; print("device", "cuda" if _t.cuda.is_available() else "cpu", flush=True)' "$dir/train.py"
  (cd "$dir" && git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm sample)
  local start end
  start=$(date +%s.%N)
  MLOPS_TUI_DATA_DIR=$work/data-$1 MLOPS_TUI_STATE_DIR=$work/data-$1 \
    "$bin" run --headless --once "$dir" > "$work/$1.log" 2>&1 || true
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

cpu=$(one cpu)
gpu=$(one gpu)
grep -q "device cpu" "$work/cpu.log" || { cat "$work/cpu.log"; echo "FAIL: the CPU run did not train" >&2; exit 1; }
grep -q "device cuda" "$work/gpu.log" || { cat "$work/gpu.log"; echo "FAIL: the GPU run's container saw no GPU" >&2; exit 1; }
grep -q "holds gpu 0\|gpu" "$work/gpu.log" || true
ratio=$(echo "scale=2; $cpu / $gpu" | bc)
printf 'cpu %.1f s  gpu %.1f s  speed-up x%s\n' "$cpu" "$gpu" "$ratio"
if [ "$(echo "$gpu < $cpu" | bc)" != 1 ]; then
  echo "FAIL: the GPU run was not faster" >&2
  exit 1
fi
echo ok
