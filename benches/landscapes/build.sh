#!/usr/bin/env bash
# Rebuilds the tabular landscapes of the search benchmark: every configuration of each discrete space
# trained once inside mlops-tui's own sklearn image (Debian's scikit-learn), the table written to
# benches/landscapes/NAME.csv and the space with its targets to NAME.toml (see build.py for the columns).
#
# Usage: bash benches/landscapes/build.sh [NAME...]     (default: every landscape build.py knows)
#   IMAGE    the image to train in (default mlops-tui/sklearn:latest; `mlops-tui images build sklearn`)
#   PARALLEL how many landscapes train at once, one CPU each (default 2)
#   OUT      where the tables go (default: this directory)
#
# Each container gets one CPU, one BLAS/OpenMP thread and no network; the sources are mounted read-only
# and only the output directory is writable. Building all three took 11 minutes on the 2-core test
# machine while other builds ran; the seconds recorded in the tables are the building machine's.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=${IMAGE:-mlops-tui/sklearn:latest}
parallel=${PARALLEL:-2}
out=$(mkdir -p "${OUT:-$here}" && cd "${OUT:-$here}" && pwd)

if ! docker image inspect "$image" >/dev/null 2>&1; then
    echo "landscapes: image $image is missing: build it with \`mlops-tui images build sklearn\`" >&2
    exit 1
fi

run() {
    docker run --rm --network none --cpus 1 --user "$(id -u):$(id -g)" \
        -e OMP_NUM_THREADS=1 -e OPENBLAS_NUM_THREADS=1 -e MKL_NUM_THREADS=1 \
        -v "$here/build.py:/bench/build.py:ro" -v "$out:/out" \
        "$image" python3 /bench/build.py "$1" /out
}

if (($# > 0)); then
    names=("$@")
else
    mapfile -t names < <(docker run --rm --network none -v "$here/build.py:/bench/build.py:ro" \
        "$image" python3 /bench/build.py --list)
fi

started=$SECONDS
pids=()
for name in "${names[@]}"; do
    while (($(jobs -rp | wc -l) >= parallel)); do wait -n; done
    echo "landscapes: building $name in $image" >&2
    run "$name" &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
echo "landscapes: done in $((SECONDS - started)) s" >&2
for name in "${names[@]}"; do head -n 3 "$out/$name.toml" >&2; done
exit $status
