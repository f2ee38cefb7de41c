"""Multi-layer perceptron on the 8x8 digits data set, written in plain NumPy.

Contract with mlops-tui:
  * Parameters are JSON, read from $MLOPS_DIR/params.json if present, else from the
    MLOPS_PARAMS environment variable, else the defaults below (so `python3 train.py`
    also runs on a laptop).
  * Outputs go under $MLOPS_DIR (default /mlops; ./.mlops if that is not writable).
  * One line per epoch on stdout: `epoch 3/5 accuracy=0.8123 loss=0.5234`, where
    accuracy is measured on the held-out test split.
  * A checkpoint is written atomically to $MLOPS_DIR/checkpoints/ after every epoch.
    A run that finds a checkpoint made with the same parameters resumes after its epoch.
  * The final model goes to $MLOPS_DIR/model/, then the last line `final accuracy=0.9623`.
"""

import json
import os
import sys
import tempfile

import numpy as np
from sklearn.datasets import load_digits  # data loading only
from sklearn.model_selection import train_test_split

DEFAULTS = {
    "hidden_units": 32,
    "hidden_layers": 1,
    "epochs": 12,
    "lr": 0.05,
    "momentum": 0.9,
    "batch_size": 32,
    "seed": 0,
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


# --------------------------------------------------------------------------- model


def init_weights(sizes, rng):
    """He-initialised weights and zero biases for consecutive layer sizes."""
    weights = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        weights[f"W{i}"] = rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out))
        weights[f"b{i}"] = np.zeros(n_out)
    return weights


def relu(z):
    return np.maximum(z, 0.0)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def forward(weights, x):
    """Returns the activations of every layer; the last one holds softmax probabilities."""
    n_layers = len(weights) // 2
    activations = [x]
    for i in range(n_layers):
        z = activations[-1] @ weights[f"W{i}"] + weights[f"b{i}"]
        activations.append(relu(z) if i < n_layers - 1 else softmax(z))
    return activations


def cross_entropy(probs, y):
    return float(-np.log(probs[np.arange(len(y)), y] + 1e-12).mean())


def sgd_step(weights, velocity, x, y, lr, momentum):
    """One minibatch step of SGD with momentum on softmax cross-entropy; returns the batch loss."""
    acts = forward(weights, x)
    n_layers = len(weights) // 2
    delta = acts[-1].copy()
    delta[np.arange(len(y)), y] -= 1.0
    delta /= len(y)
    for i in reversed(range(n_layers)):
        grad_w = acts[i].T @ delta
        grad_b = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ weights[f"W{i}"].T) * (acts[i] > 0)
        for name, grad in ((f"W{i}", grad_w), (f"b{i}", grad_b)):
            velocity[name] = momentum * velocity[name] + grad
            weights[name] -= lr * velocity[name]
    return cross_entropy(acts[-1], y)


def accuracy(weights, x, y):
    return float((forward(weights, x)[-1].argmax(axis=1) == y).mean())


# --------------------------------------------------------------------------- training


def main():
    params = load_params()
    hidden_units = int(params["hidden_units"])
    hidden_layers = int(params["hidden_layers"])
    epochs = int(params["epochs"])
    lr = float(params["lr"])
    momentum = float(params["momentum"])
    batch_size = int(params["batch_size"])
    seed = int(params["seed"])

    digits = load_digits()
    x = digits.data / 16.0
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=42, stratify=digits.target
    )

    root = output_root()
    checkpoint = os.path.join(root, "checkpoints", "latest.npz")
    params_key = json.dumps(params, sort_keys=True)

    sizes = [x.shape[1]] + [hidden_units] * hidden_layers + [10]
    weights = init_weights(sizes, np.random.default_rng(seed))
    velocity = {name: np.zeros_like(w) for name, w in weights.items()}
    start_epoch = 1
    if os.path.exists(checkpoint):
        with np.load(checkpoint) as ckpt:
            if str(ckpt["params"]) == params_key:
                weights = {k: ckpt[k] for k in weights}
                velocity = {k: ckpt["v_" + k] for k in weights}
                done = int(ckpt["epoch"])
                start_epoch = done + 1
                print(f"resumed from checkpoint at epoch {done}", flush=True)
            else:
                print("checkpoint was made with other parameters; starting fresh", flush=True)

    steps_per_epoch = -(-len(x_train) // batch_size)
    total_steps = epochs * steps_per_epoch
    for epoch in range(start_epoch, epochs + 1):
        # A per-epoch seed keeps the shuffling identical whether or not the run was resumed.
        order = np.random.default_rng([seed, epoch]).permutation(len(x_train))
        losses = []
        for i, start in enumerate(range(0, len(order), batch_size)):
            step = (epoch - 1) * steps_per_epoch + i
            step_lr = lr * 0.5 * (1.0 + np.cos(np.pi * step / total_steps))  # cosine decay
            batch = order[start : start + batch_size]
            xb, yb = x_train[batch], y_train[batch]
            losses.append(sgd_step(weights, velocity, xb, yb, step_lr, momentum) * len(batch))
        loss = sum(losses) / len(order)
        acc = accuracy(weights, x_test, y_test)
        # Report first, then checkpoint: a death in between repeats this epoch instead of skipping it.
        print(f"epoch {epoch}/{epochs} accuracy={acc:.4f} loss={loss:.4f}", flush=True)
        atomic_write(
            checkpoint,
            lambda f: np.savez(
                f,
                epoch=epoch,
                params=params_key,
                **weights,
                **{"v_" + k: v for k, v in velocity.items()},
            ),
        )

    atomic_write(
        os.path.join(root, "model", "mlp.npz"),
        lambda f: np.savez(f, params=params_key, **weights),
    )
    print(f"final accuracy={accuracy(weights, x_test, y_test):.4f}", flush=True)


if __name__ == "__main__":
    main()
