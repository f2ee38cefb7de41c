"""k-nearest-neighbours classifier on the 8x8 digits data set, with scikit-learn.

Contract with mlops-tui:
  * Parameters are JSON, read from $MLOPS_DIR/params.json if present, else from the
    MLOPS_PARAMS environment variable, else the defaults below (so `python3 train.py`
    also runs on a laptop).
  * Outputs go under $MLOPS_DIR (default /mlops; ./.mlops if that is not writable).
  * One line per epoch on stdout: `epoch 3/5 accuracy=0.8123 loss=0.5234`, where
    accuracy and loss (log loss) are measured on the held-out test split.
    KNN has no gradient epochs: epoch i of N fits on the first i/N of the training set.
  * A checkpoint is written atomically to $MLOPS_DIR/checkpoints/ after every epoch.
    A run that finds a checkpoint made with the same parameters resumes after its epoch.
  * The final model goes to $MLOPS_DIR/model/, then the last line `final accuracy=0.9623`.
"""

import json
import os
import pickle
import sys
import tempfile

from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

DEFAULTS = {
    "k": 5,
    "epochs": 4,
    "weights": "uniform",
}


# --------------------------------------------------------------------------- plumbing


def load_params():
    params = dict(DEFAULTS)
    path = os.path.join(os.environ.get("MLOPS_DIR", "/mlops"), "params.json")
    if os.path.isfile(path):
        with open(path) as f:
            given = json.load(f)
    else:
        given = json.loads(os.environ.get("MLOPS_PARAMS") or "{}")
    for key in given:
        if key not in DEFAULTS:
            print(f"warning: unknown parameter {key!r} ignored", file=sys.stderr)
    params.update({k: v for k, v in given.items() if k in DEFAULTS})
    return params


def output_root():
    for root in (os.environ.get("MLOPS_DIR", "/mlops"), os.path.join(os.getcwd(), ".mlops")):
        try:
            os.makedirs(root, exist_ok=True)
            if os.access(root, os.W_OK):
                return root
        except OSError:
            pass
    sys.exit("error: no writable output directory (set MLOPS_DIR)")


def atomic_write(path, write):
    """Write via `write(fileobj)` to a temp file beside `path`, fsync, then rename over it."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; let the host side read the result
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --------------------------------------------------------------------------- training


def main():
    params = load_params()
    k = int(params["k"])
    epochs = int(params["epochs"])

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=42, stratify=digits.target
    )

    root = output_root()
    checkpoint = os.path.join(root, "checkpoints", "latest.pkl")
    params_key = json.dumps(params, sort_keys=True)

    model = None
    start_epoch = 1
    if os.path.exists(checkpoint):
        with open(checkpoint, "rb") as f:
            state = pickle.load(f)
        if state["params"] == params_key:
            model = state["model"]
            start_epoch = state["epoch"] + 1
            print(f"resumed from checkpoint at epoch {state['epoch']}", flush=True)
        else:
            print("checkpoint was made with other parameters; starting fresh", flush=True)

    for epoch in range(start_epoch, epochs + 1):
        seen = -(-len(x_train) * epoch // epochs)  # ceil(epoch / epochs * n)
        model = KNeighborsClassifier(
            n_neighbors=min(k, seen), weights=params["weights"]
        ).fit(x_train[:seen], y_train[:seen])
        acc = accuracy_score(y_test, model.predict(x_test))
        loss = log_loss(y_test, model.predict_proba(x_test), labels=model.classes_)
        state = {"epoch": epoch, "params": params_key, "model": model}
        # Report first, then checkpoint: a death in between repeats this epoch instead of skipping it.
        print(f"epoch {epoch}/{epochs} accuracy={acc:.4f} loss={loss:.4f}", flush=True)
        atomic_write(checkpoint, lambda f: pickle.dump(state, f))

    atomic_write(os.path.join(root, "model", "knn.pkl"), lambda f: pickle.dump(model, f))
    print(f"final accuracy={accuracy_score(y_test, model.predict(x_test)):.4f}", flush=True)


if __name__ == "__main__":
    main()
