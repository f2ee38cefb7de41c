"""Small convolutional network on the 8x8 digits data set, with PyTorch (CPU).

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
  * Torch uses $MLOPS_CPUS threads (default 1).
"""

import json
import os
import sys
import tempfile

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

DEFAULTS = {
    "conv_layers": 2,
    "filters": 16,
    "epochs": 6,
    "lr": 0.005,
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


class DigitsCNN(nn.Module):
    """`conv_layers` 3x3 conv + ReLU blocks (2x2 max-pool while the map is larger than 2x2)."""

    def __init__(self, conv_layers, filters):
        super().__init__()
        blocks, channels, size = [], 1, 8
        for _ in range(conv_layers):
            blocks += [nn.Conv2d(channels, filters, kernel_size=3, padding=1), nn.ReLU()]
            if size > 2:
                blocks.append(nn.MaxPool2d(2))
                size //= 2
            channels = filters
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(channels * size * size, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    return (model(x).argmax(dim=1) == y).float().mean().item()


# --------------------------------------------------------------------------- training


def main():
    params = load_params()
    conv_layers = int(params["conv_layers"])
    filters = int(params["filters"])
    epochs = int(params["epochs"])
    batch_size = int(params["batch_size"])
    seed = int(params["seed"])
    torch.set_num_threads(max(1, int(float(os.environ.get("MLOPS_CPUS") or 1))))

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images / 16.0, digits.target, test_size=0.25, random_state=42, stratify=digits.target
    )
    x_train = torch.tensor(x_train, dtype=torch.float32).unsqueeze(1)  # (N, 1, 8, 8)
    x_test = torch.tensor(x_test, dtype=torch.float32).unsqueeze(1)
    y_train, y_test = torch.tensor(y_train), torch.tensor(y_test)

    root = output_root()
    checkpoint = os.path.join(root, "checkpoints", "latest.pt")
    params_key = json.dumps(params, sort_keys=True)

    torch.manual_seed(seed)
    model = DigitsCNN(conv_layers, filters)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(params["lr"]))
    loss_fn = nn.CrossEntropyLoss()

    start_epoch = 1
    if os.path.exists(checkpoint):
        state = torch.load(checkpoint, map_location="cpu")
        if state["params"] == params_key:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch = state["epoch"] + 1
            print(f"resumed from checkpoint at epoch {state['epoch']}", flush=True)
        else:
            print("checkpoint was made with other parameters; starting fresh", flush=True)

    for epoch in range(start_epoch, epochs + 1):
        model.train()
        # A per-epoch seed keeps the shuffling identical whether or not the run was resumed.
        shuffle = torch.Generator().manual_seed(seed * 1000 + epoch)
        order = torch.randperm(len(x_train), generator=shuffle)
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        acc = accuracy(model, x_test, y_test)
        state = {
            "epoch": epoch,
            "params": params_key,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
        }
        loss = total / len(order)
        # Report first, then checkpoint: a death in between repeats this epoch (which the tool
        # de-duplicates) instead of skipping it.
        print(f"epoch {epoch}/{epochs} accuracy={acc:.4f} loss={loss:.4f}", flush=True)
        atomic_write(checkpoint, lambda f: torch.save(state, f))

    final = os.path.join(root, "model", "cnn.pt")
    atomic_write(final, lambda f: torch.save(model.state_dict(), f))
    print(f"final accuracy={accuracy(model, x_test, y_test):.4f}", flush=True)


if __name__ == "__main__":
    main()
