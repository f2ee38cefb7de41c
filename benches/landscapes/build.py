#!/usr/bin/env python3
"""Builds one tabular hyper-parameter landscape: every configuration of a discrete space trained once.

Usage: build.py NAME OUT_DIR      (NAME: svc-digits | mlp-digits | hgb-digits; `build.py --list`)

Writes OUT_DIR/NAME.csv with the header `<dim1>,<dim2>,...,value,seconds,curve`, one row per
configuration in the order of `itertools.product` over the dimensions as listed below:
- `value`: accuracy on a fixed stratified split (30 % training, 70 % validation, random_state=0), in [0, 1];
- `seconds`: wall time of that configuration's training and per-epoch evaluation, as one iteration of a
  training script would spend it (measured here, on one CPU: the build runs with `--cpus 1` and one
  BLAS/OpenMP thread);
- `curve`: `;`-separated validation accuracy after each epoch (MLP), after every STAGE boosting iterations
  (gradient boosting) or a single element (SVC); its last element equals `value`.
Every model is seeded, so a rebuild gives the same values (the seconds vary with the machine).

Then OUT_DIR/NAME.toml: the space as an mlops.toml `[tweak.space]` block of ordered `values` lists, and
`targets = [t40, t20, t3]`, the values that about 40 %, 20 % and 3 % of the configurations reach.
Runs inside the mlops-tui/sklearn image (Debian's scikit-learn); benches/landscapes/build.sh drives it.
"""

import itertools
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

SEED = 0
MLP_EPOCHS = 25
HGB_ITERATIONS = 40
HGB_STAGE = 4
# Shares of configurations the three targets are chosen for (easy, medium, hard).
TARGET_SHARES = (0.40, 0.20, 0.03)


def digits_split():
    """Digits scaled to [0, 1], split once: 539 training and 1258 validation images.

    A small training share keeps the best configurations apart (with 75 % for training the best SVCs
    tie at three errors) and a large validation set measures accuracy in steps of 0.0008."""
    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, train_size=0.3, stratify=y, random_state=SEED)


def accuracy(model_or_pred, x, y):
    pred = model_or_pred if isinstance(model_or_pred, np.ndarray) else model_or_pred.predict(x)
    return float(np.mean(pred == y))


def train_svc(cfg, data):
    """RBF SVC: too little C underfits, too much gamma memorises; the good configs lie on a ridge."""
    xt, xv, yt, yv = data
    model = SVC(C=cfg["C"], gamma=cfg["gamma"], kernel="rbf", random_state=SEED).fit(xt, yt)
    return [accuracy(model, xv, yv)]


def train_mlp(cfg, data):
    """One hidden layer, Adam, `partial_fit` one epoch at a time, validation accuracy after each."""
    xt, xv, yt, yv = data
    model = MLPClassifier(
        hidden_layer_sizes=(cfg["hidden"],),
        learning_rate_init=cfg["lr"],
        alpha=cfg["alpha"],
        batch_size=64,
        random_state=SEED,
    )
    classes = np.unique(yt)
    curve = []
    for _ in range(MLP_EPOCHS):
        model.partial_fit(xt, yt, classes=classes)
        curve.append(accuracy(model, xv, yv))
    return curve


def train_hgb(cfg, data):
    """Histogram gradient boosting, no early stopping; the curve samples `staged_predict`."""
    xt, xv, yt, yv = data
    model = HistGradientBoostingClassifier(
        learning_rate=cfg["learning_rate"],
        max_leaf_nodes=cfg["max_leaf_nodes"],
        min_samples_leaf=cfg["min_samples_leaf"],
        l2_regularization=cfg["l2_regularization"],
        max_iter=HGB_ITERATIONS,
        early_stopping=False,
        random_state=SEED,
    ).fit(xt, yt)
    staged = list(model.staged_predict(xv))
    return [accuracy(staged[i - 1], xv, yv) for i in range(HGB_STAGE, len(staged) + 1, HGB_STAGE)]


LANDSCAPES = {
    "svc-digits": {
        "train": train_svc,
        "about": "RBF SVC on digits, C x gamma (1-2-5 log grids, 16 x 15)",
        "space": {
            "C": [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0,
                  1000.0],
            "gamma": [1e-4, 2e-4, 5e-4, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
                      5.0],
        },
    },
    "mlp-digits": {
        "train": train_mlp,
        "about": f"MLPClassifier on digits, {MLP_EPOCHS} epochs of partial_fit, hidden x lr x alpha",
        "space": {
            "hidden": [16, 32, 64, 128, 256],
            "lr": [1e-4, 3e-4, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3],
            "alpha": [1e-5, 1e-4, 0.001, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0],
        },
    },
    "hgb-digits": {
        "train": train_hgb,
        "about": f"HistGradientBoosting on digits, {HGB_ITERATIONS} iterations, curve every {HGB_STAGE}",
        "space": {
            "learning_rate": [0.01, 0.03, 0.1, 0.3, 1.0],
            "max_leaf_nodes": [4, 8, 16, 32],
            "min_samples_leaf": [5, 20, 50, 100],
            "l2_regularization": [0.0, 1.0, 10.0],
        },
    },
}


def fmt(v):
    """Shortest text that reads back as the same number (ints stay ints: `16`, floats `0.0003`)."""
    return str(v) if isinstance(v, int) else repr(float(v))


def target_for(values, share):
    """The distinct value whose share of configurations reaching it is closest to `share` by ratio.

    Ties make exact shares impossible (every SVC past some C is the same model); a ratio keeps a
    3 % target from landing on a single configuration when the next value up is reached by 7 %."""
    values = np.asarray(values)
    best = None
    for t in np.unique(values):
        reached = float(np.mean(values >= t))
        miss = abs(np.log(reached / share))
        if best is None or miss < best[2]:
            best = (float(t), reached, miss)
    return best[:2]


def write_toml(path, name, spec, values, seconds):
    targets = [target_for(values, s) for s in TARGET_SHARES]
    reached = ", ".join(f"{t:.6g}: {100 * r:.1f} %" for t, r in targets)
    lines = [
        f"# {name}: {spec['about']}; {len(values)} configurations, trained once (build.py).",
        f"# Targets and the share of configurations reaching them: {reached}.",
        f"# Best {max(values):.6g}; total training seconds {sum(seconds):.1f}.",
        "targets = [" + ", ".join(f"{t:.6g}" for t, _ in targets) + "]",
        "",
        "[tweak.space]",
    ]
    for dim, grid in spec["space"].items():
        lines.append(f"{dim} = {{ values = [" + ", ".join(fmt(v) for v in grid) + "] }")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def build(name, out_dir):
    spec = LANDSCAPES[name]
    dims = list(spec["space"])
    configs = list(itertools.product(*spec["space"].values()))
    data = digits_split()
    values, seconds = [], []
    started = time.perf_counter()
    with open(f"{out_dir}/{name}.csv", "w", encoding="utf-8") as f:
        f.write(",".join(dims + ["value", "seconds", "curve"]) + "\n")
        for i, point in enumerate(configs, 1):
            cfg = dict(zip(dims, point))
            t0 = time.perf_counter()
            curve = spec["train"](cfg, data)
            spent = time.perf_counter() - t0
            values.append(curve[-1])
            seconds.append(spent)
            row = [fmt(v) for v in point] + [f"{curve[-1]:.6f}", f"{spent:.4f}"]
            f.write(",".join(row + [";".join(f"{c:.6f}" for c in curve)]) + "\n")
            if i % 10 == 0 or i == len(configs):
                elapsed = time.perf_counter() - started
                print(f"{name}: {i}/{len(configs)} configs, {elapsed:.0f} s, best {max(values):.4f}",
                      file=sys.stderr, flush=True)
    write_toml(f"{out_dir}/{name}.toml", name, spec, values, seconds)


def main(argv):
    if len(argv) == 2 and argv[1] == "--list":
        print("\n".join(LANDSCAPES))
        return 0
    if len(argv) != 3 or argv[1] not in LANDSCAPES:
        print(f"usage: build.py NAME OUT_DIR, NAME one of {', '.join(LANDSCAPES)}", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    build(argv[1], argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
