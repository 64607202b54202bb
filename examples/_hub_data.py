"""Small offline datasets for the hub examples: scikit-learn's digits and MNIST-1D."""

from __future__ import annotations

import argparse

import torch
from torch.utils.data import TensorDataset


def oneshot_parser(description: str, epochs: int, retrain_epochs: int) -> argparse.ArgumentParser:
    """The options every one-shot hub example takes: ``--quick`` (for the tests), search epochs and
    retraining epochs of the exported network."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one epoch (for the tests)")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--retrain-epochs", type=int, default=retrain_epochs)
    return parser


def digits(size: int = 8, channels: int = 3, limit: int | None = None, seed: int = 0):
    """scikit-learn's 1,797 8×8 digit scans as (train, test) TensorDatasets (1,200 / 597), resized
    to ``size``×``size`` and repeated to ``channels`` channels; ``limit`` keeps that many of each."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if size != 8:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = ((x - 0.3) / 0.4).repeat(1, channels, 1, 1).contiguous()
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    x, y = x[perm], y[perm]
    train, test = (x[:1200], y[:1200]), (x[1200:], y[1200:])
    if limit is not None:
        train, test = (train[0][:limit], train[1][:limit]), (test[0][:limit], test[1][:limit])
    return TensorDataset(*train), TensorDataset(*test)


def mnist1d(limit: int | None = None):
    """MNIST-1D (generated offline): (train, test) TensorDatasets of [40] signals, 10 classes."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    data = make_dataset(args)
    xtr, ytr = torch.tensor(data["x"], dtype=torch.float32), torch.tensor(data["y"], dtype=torch.long)
    xte, yte = torch.tensor(data["x_test"], dtype=torch.float32), torch.tensor(data["y_test"], dtype=torch.long)
    if limit is not None:
        xtr, ytr, xte, yte = xtr[:limit], ytr[:limit], xte[:limit], yte[:limit]
    return TensorDataset(xtr, ytr), TensorDataset(xte, yte)


def _device(net: torch.nn.Module) -> torch.device:
    p = next(net.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def accuracy(net: torch.nn.Module, data: TensorDataset) -> float:
    net.eval()
    x, y = (t.to(_device(net)) for t in data.tensors)
    with torch.no_grad():
        return float((net(x).argmax(1) == y).float().mean())


def train(net: torch.nn.Module, data: TensorDataset, epochs: int, lr: float = 3e-3, batch_size: int = 64, seed: int = 0) -> None:
    """A plain AdamW + cosine loop (the examples' retraining of the found arch)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(epochs, 1))
    x, y = (t.to(_device(net)) for t in data.tensors)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(y), generator=g).to(x.device).split(batch_size):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
        sched.step()
