#!/usr/bin/env bash
# The search benchmark in one command: mlops-tui's strategies and Optuna's TPE and GP samplers replayed
# on the tabular landscapes of benches/landscapes/ (a trial = a look-up of a configuration trained once),
# printed side by side by `cargo bench --bench search`.
#
# Usage: bash benches/search.sh [--optuna] [-- ARGS for optuna_replay.py]
#   Rebuilds nothing by default. Optuna's side (benches/results/optuna.csv) is replayed when the file is
#   missing or --optuna is given: in a container built FROM mlops-tui/torch:latest with Optuna from the
#   Python package registry (benches/optuna/Dockerfile, image mlops-tui/optuna-bench), or with
#   OPTUNA_PYTHON=/path/to/python, any Python that has optuna 5 and torch installed.
#   The landscapes themselves are rebuilt only by benches/landscapes/build.sh.
#   JOBS (default 2) worker processes replay Optuna's studies.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
results=$root/benches/results/optuna.csv
jobs=${JOBS:-2}
replay=0
extra=()
while (($# > 0)); do
    case $1 in
        --optuna) replay=1 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "search: unknown argument '$1' (usage: search.sh [--optuna] [-- REPLAY ARGS])" >&2; exit 2 ;;
    esac
    shift
done
[[ -f $results ]] || replay=1

optuna_image() {
    local ctx
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' RETURN
    cp "$root/benches/optuna/Dockerfile" "$ctx/"
    if [[ -n ${MLOPS_TUI_BUILD_CA:-} ]]; then
        cp "$MLOPS_TUI_BUILD_CA" "$ctx/build-ca.pem"
    else
        cat /usr/local/share/ca-certificates/*.crt 2>/dev/null > "$ctx/build-ca.pem" || true
    fi
    docker image inspect mlops-tui/torch:latest >/dev/null 2>&1 || {
        echo "search: image mlops-tui/torch:latest is missing: \`mlops-tui images build torch\`" >&2
        return 1
    }
    docker build -q -t mlops-tui/optuna-bench "$ctx" >/dev/null
}

if ((replay)); then
    echo "search: replaying Optuna's samplers into ${results#"$root"/}" >&2
    if [[ -n ${OPTUNA_PYTHON:-} ]]; then
        "$OPTUNA_PYTHON" "$root/benches/optuna_replay.py" --jobs "$jobs" --out "$results" "${extra[@]}"
    else
        optuna_image
        mkdir -p "$(dirname "$results")"
        docker run --rm --network none --cpus "$jobs" --user "$(id -u):$(id -g)" \
            -v "$root/benches:/bench:ro" -v "$(dirname "$results"):/out" \
            mlops-tui/optuna-bench python /bench/optuna_replay.py --jobs "$jobs" \
            --landscapes /bench/landscapes --out /out/optuna.csv "${extra[@]}"
    fi
fi

cd "$root"
cargo bench --bench search
