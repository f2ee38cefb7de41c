#!/usr/bin/env python3
"""Replays Optuna's TPE and GP samplers on the tabular landscapes of benches/landscapes/.

Usage: optuna_replay.py [--seeds N] [--gp-seeds N] [--jobs J] [--out FILE] [--only NAME,...]

Protocol (the same as `cargo bench --bench search`):
- a trial is a look-up of one configuration's row; it costs that row's recorded training seconds;
- the start point for seed s is row `splitmix64(s) % rows` (file order), enqueued as the first trial;
- a run succeeds at the first trial whose value reaches the target; the budget is 60 trials;
- every target of a landscape is read off one trace per (sampler, seed), which stops early once the
  hardest target is reached (the easier ones were reached by then too).

Search space: every ordered grid of positive numbers is given to Optuna as a log-scaled range from its
smallest to its largest value (`suggest_float(log=True)`, or `suggest_int(log=True)` for integers) and the
suggestion is snapped to the nearest grid value in log space, so TPE's Parzen estimators and the GP's
kernel see the order and the scale of the grid, as they would in a user's study. A grid holding zero or
negatives (e.g. `l2_regularization = [0, 1, 10]`) cannot be log-scaled: its index is suggested instead
(`suggest_int(0, n - 1)`), which keeps the order. An unordered `choices` list is `suggest_categorical`.
Two suggestions that snap to the same configuration are two trials, as they would be in Optuna.

Writes one row per (landscape, target, sampler, seed):
`landscape,target,sampler,seed,trials,seconds,success`.
"""

import argparse
import csv
import glob
import math
import os
import sys
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor

BUDGET = 60
MASK = (1 << 64) - 1
HERE = os.path.dirname(os.path.abspath(__file__))


def splitmix64(x):
    """The start-point hash shared with the Rust replay (wrapping u64 arithmetic)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


class Dim:
    """One dimension of a landscape and how it is presented to Optuna."""

    def __init__(self, name, spec):
        self.name = name
        if "choices" in spec:
            self.grid, self.kind = list(spec["choices"]), "categorical"
        elif "values" in spec:
            self.grid = list(spec["values"])
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.grid)
            self.kind = "log" if numeric and min(self.grid) > 0 else "index"
        else:
            raise ValueError(f"dimension `{name}`: the replay needs a finite `values` or `choices` list")
        self.integer = all(isinstance(v, int) for v in self.grid)

    def suggest(self, trial):
        """The grid value this trial looks up."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, self.grid)
        if self.kind == "index":
            return self.grid[trial.suggest_int(self.name, 0, len(self.grid) - 1)]
        lo, hi = min(self.grid), max(self.grid)
        if self.integer:
            raw = trial.suggest_int(self.name, lo, hi, log=True)
        else:
            raw = trial.suggest_float(self.name, float(lo), float(hi), log=True)
        return min(self.grid, key=lambda g: abs(math.log(g) - math.log(raw)))

    def enqueued(self, value):
        """The parameter to enqueue so that the first trial looks up `value`."""
        return self.grid.index(value) if self.kind == "index" else value

    def key(self, text):
        """A CSV cell as the grid value it stands for."""
        for g in self.grid:
            if str(g) == text or (not isinstance(g, str) and float(g) == float(text)):
                return g
        raise ValueError(f"`{self.name}` = {text!r} is not in the landscape's grid {self.grid}")


class Landscape:
    def __init__(self, toml_path):
        self.name = os.path.basename(toml_path)[: -len(".toml")]
        with open(toml_path, "rb") as f:
            spec = tomllib.load(f)
        self.targets = list(spec["targets"])
        self.dims = [Dim(n, s) for n, s in spec["tweak"]["space"].items()]
        self.rows, self.lookup = [], {}
        csv_path = toml_path[: -len(".toml")] + ".csv"
        with open(csv_path, newline="", encoding="utf-8") as f:
            for line, row in enumerate(csv.DictReader(f), 2):
                try:
                    key = tuple(d.key(row[d.name]) for d in self.dims)
                except (KeyError, ValueError) as e:
                    raise SystemExit(f"{csv_path}:{line}: {e}; rebuild with benches/landscapes/build.sh")
                self.lookup[key] = len(self.rows)
                self.rows.append((float(row["value"]), float(row["seconds"]), key))
        expected = math.prod(len(d.grid) for d in self.dims)
        if len(self.lookup) != expected:
            raise SystemExit(f"{csv_path}: {len(self.lookup)} configurations, the space has {expected}")


def make_sampler(kind, seed):
    import optuna

    if kind == "optuna-tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.GPSampler(seed=seed)


def replay(landscape, kind, seed):
    """One study of at most BUDGET look-ups; the row indices it looked up, in order."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    hardest = max(landscape.targets)
    start = landscape.rows[splitmix64(seed) % len(landscape.rows)][2]
    study = optuna.create_study(direction="maximize", sampler=make_sampler(kind, seed))
    study.enqueue_trial({d.name: d.enqueued(v) for d, v in zip(landscape.dims, start)})
    trace = []

    def objective(trial):
        index = landscape.lookup[tuple(d.suggest(trial) for d in landscape.dims)]
        trace.append(index)
        value = landscape.rows[index][0]
        if value >= hardest:
            study.stop()
        return value

    study.optimize(objective, n_trials=BUDGET)
    return trace


def score(landscape, trace):
    """(target, trials, seconds, success) for every target, read off one trace of row indices."""
    out = []
    for target in landscape.targets:
        spent, result = 0.0, None
        for i, index in enumerate(trace, 1):
            value, seconds, _ = landscape.rows[index]
            spent += seconds
            if value >= target:
                result = (target, i, spent, 1)
                break
        out.append(result or (target, BUDGET, spent, 0))
    return out


LANDSCAPES_CACHE = {}


def job(args):
    """One study in a worker process, which parses each landscape once."""
    toml_path, kind, seed = args
    landscape = LANDSCAPES_CACHE.get(toml_path) or Landscape(toml_path)
    LANDSCAPES_CACHE[toml_path] = landscape
    return toml_path, kind, seed, replay(landscape, kind, seed)


def torch_compat():
    """GPSampler runs its model under `with torch.device("cpu")`, a context manager only from torch
    2.0; with an older torch (Debian bookworm ships 1.13) the sampler gets a module whose `device`
    is a no-op context (everything already runs on the CPU) and whose other names are torch's."""
    import contextlib
    import types

    import torch

    if hasattr(torch.device("cpu"), "__enter__"):
        return
    from optuna.samplers._gp import sampler as gp_sampler

    shim = types.ModuleType("torch_cpu_only")
    shim.__dict__.update({k: getattr(torch, k) for k in dir(torch) if not k.startswith("__")})
    shim.device = lambda *a, **k: contextlib.nullcontext()
    gp_sampler.torch = shim


def init_worker():
    torch_compat()
    import torch

    torch.set_num_threads(1)


def summary(rows, markdown=False):
    """Median and p90 trials, success share and median seconds per landscape x target x sampler."""
    groups = {}
    for name, target, kind, _seed, trials, seconds, success in rows:
        groups.setdefault((name, target, kind), []).append((trials, seconds, success))
    head = ["landscape", "target", "sampler", "seeds", "median", "p90", "success", "median s"]
    table = []
    for (name, target, kind), runs in sorted(groups.items(), key=lambda g: (g[0][0], float(g[0][1]), g[0][2])):
        trials = sorted(r[0] for r in runs)
        secs = sorted(r[1] for r in runs)
        ok = sum(r[2] for r in runs)
        table.append([name, target, kind, str(len(runs)), f"{quantile(trials, 0.5):.1f}",
                      f"{quantile(trials, 0.9):.1f}", f"{100 * ok / len(runs):.0f}%",
                      f"{quantile(secs, 0.5):.1f}"])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in table])
    widths = [max(len(r[i]) for r in table + [head]) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) if i > 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in [head] + table)


def quantile(ordered, q):
    """Linear interpolation between closest ranks (numpy's default), so the median of 15 and 16 is 15.5."""
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def run_studies(paths, args):
    """Every (landscape, sampler, seed) study; {(toml path, sampler, seed): trace}."""
    work = [(p, "optuna-tpe", s) for p in paths for s in range(args.seeds)]
    work += [(p, "optuna-gp", s) for p in paths for s in range(args.gp_seeds)]
    traces, started = {}, time.time()
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=init_worker) as pool:
        for i, (path, kind, seed, trace) in enumerate(pool.map(job, work, chunksize=2), 1):
            traces[(path, kind, seed)] = trace
            if i % 25 == 0 or i == len(work):
                print(f"optuna: {i}/{len(work)} studies, {time.time() - started:.0f} s", file=sys.stderr,
                      flush=True)
    return traces


def write_traces(path, traces, landscapes):
    """The looked-up rows of every study with the values seen, so a rebuilt table's seconds can be
    re-priced (`--reprice`) without running Optuna again while its values stay the same."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["landscape", "sampler", "seed", "rows", "values"])
        for (toml_path, kind, seed), trace in sorted(traces.items()):
            land = landscapes[toml_path]
            w.writerow([land.name, kind, seed, ";".join(map(str, trace)),
                        ";".join(f"{land.rows[i][0]:.6f}" for i in trace)])


def read_traces(path, landscapes):
    by_name = {land.name: p for p, land in landscapes.items()}
    traces = {}
    with open(path, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), 2):
            toml_path = by_name.get(row["landscape"])
            if toml_path is None:
                continue
            trace = [int(i) for i in row["rows"].split(";")]
            seen = [f"{landscapes[toml_path].rows[i][0]:.6f}" for i in trace]
            if seen != row["values"].split(";"):
                raise SystemExit(f"{path}:{line}: {row['landscape']}'s values changed since Optuna ran "
                                 "on it: replay again (benches/search.sh --optuna)")
            traces[(toml_path, row["sampler"], int(row["seed"]))] = trace
    return traces


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=100, help="TPE seeds 0..N (default 100)")
    ap.add_argument("--gp-seeds", type=int, default=100, help="GP seeds 0..N (default 100)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--landscapes", default=os.path.join(HERE, "landscapes"))
    ap.add_argument("--only", default="", help="comma-separated landscape names")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "optuna.csv"))
    ap.add_argument("--markdown", action="store_true", help="print the summary as a Markdown table")
    ap.add_argument("--reprice", action="store_true",
                    help="no Optuna: re-score the traces saved next to --out with the tables' seconds")
    args = ap.parse_args()

    paths = sorted(p for p in glob.glob(os.path.join(args.landscapes, "*.toml"))
                   if os.path.exists(p[: -len(".toml")] + ".csv"))
    if args.only:
        paths = [p for p in paths if os.path.basename(p)[: -len(".toml")] in args.only.split(",")]
    if not paths:
        raise SystemExit(f"no landscapes (*.toml with a .csv) in {args.landscapes}")
    landscapes = {p: Landscape(p) for p in paths}
    traces_path = args.out[: -len(".csv")] + "-traces.csv"
    if args.reprice:
        traces = read_traces(traces_path, landscapes)
    else:
        traces = run_studies(paths, args)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        write_traces(traces_path, traces, landscapes)
    rows = []
    for (toml_path, kind, seed), trace in traces.items():
        land = landscapes[toml_path]
        for target, trials, seconds, success in score(land, trace):
            rows.append((land.name, repr(target), kind, seed, trials, round(seconds, 4), success))
    rows.sort(key=lambda r: (r[0], float(r[1]), r[2], r[3]))
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["landscape", "target", "sampler", "seed", "trials", "seconds", "success"])
        w.writerows(rows)
    print(summary(rows, args.markdown))


if __name__ == "__main__":
    main()
