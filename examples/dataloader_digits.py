"""Architecture search fed by ``DataLoader``\\s: scikit-learn's 8×8 digits as an image dataset.

The data is a map-style ``Dataset`` of ``(1, 8, 8)`` images with a random-shift augmentation
for training, served by ``DataLoader``\\s. The evaluator receives *functions* that build the
loaders (``train_loader``, …): each worker process calls them once, so neither the data nor the
loaders travel with the evaluator, and a real dataset on disk would be opened where it is read.

A small CNN space (channels, kernel size, depth via ``Repeat``, pooling) is searched with
``Classification`` on 2 worker processes; the best arch is retrained on train+val (a merged
loader with the train loader's settings) with several seeds and measured on the test split.

Run: ``.venv/bin/python examples/dataloader_digits.py`` (``--quick`` for a smoke run). Writes
``--out`` (default ``runs/digits``): ``search.db``, ``best_arch.json``, ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

import nasforge.nn as nn
from nasforge import Experiment
from nasforge.evaluate import Classification
from nasforge.strategy import RegularizedEvolution

SPLIT_SEED = 0


class Digits(Dataset):
    """The 1,797 digits of ``sklearn.datasets.load_digits`` as ``(1, 8, 8)`` float images in [0, 1]."""

    def __init__(self, part: str, augment: bool = False):
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
        n_train, n_val = 1000, 300
        idx = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}[part]
        self.x = torch.tensor(x[idx] / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
        self.y = torch.tensor(y[idx], dtype=torch.long)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        image = self.x[i]
        if self.augment:  # shift by up to one pixel, as a real pipeline would transform on the fly
            dx, dy = np.random.randint(-1, 2, size=2)
            image = torch.roll(image, shifts=(int(dy), int(dx)), dims=(1, 2))
        return image, self.y[i]


# functions the evaluator calls in each worker (module level, so they travel by name)
def train_loader() -> DataLoader:
    return DataLoader(Digits("train", augment=True), batch_size=64, shuffle=True)


def val_loader() -> DataLoader:
    return DataLoader(Digits("val"), batch_size=256)


def test_loader() -> DataLoader:
    return DataLoader(Digits("test"), batch_size=256)


class DigitsSpace(nn.ModelSpace):
    def __init__(self):
        super().__init__()
        channels = nn.ValueChoice([8, 16, 32], label="channels")
        kernel = nn.ValueChoice([3, 5], label="kernel")
        self.stem = nn.Sequential(nn.Conv2d(1, channels, kernel, padding=kernel // 2), nn.ReLU())
        self.blocks = nn.Repeat(
            lambda i: nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU()),
            (0, 2),
            label="depth",
        )
        self.pool = nn.LayerChoice({"max": nn.AdaptiveMaxPool2d(1), "avg": nn.AdaptiveAvgPool2d(1)}, label="pool")
        self.head = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.blocks(self.stem(x))).flatten(1))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/digits", help="output folder (default: runs/digits)")
    parser.add_argument("--trials", type=int, default=16, help="candidates to evaluate (default: 16)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs per candidate (default: 8)")
    parser.add_argument("--final-epochs", type=int, default=20, help="epochs of the final retraining (default: 20)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the final test (default: 3)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default: 2)")
    parser.add_argument("--quick", action="store_true", help="a smoke run (2 trials, 1 epoch, 2 seeds, 1 worker)")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.epochs, args.final_epochs, args.seeds, args.workers = 2, 1, 1, 2, 1
    os.makedirs(args.out, exist_ok=True)
    print(f"digits: {len(Digits('train'))} train / {len(Digits('val'))} val / {len(Digits('test'))} test images of 8x8")
    evaluator = Classification(train_loader, val_loader, test_data=test_loader, epochs=args.epochs, lr=3e-3,
                               final_epochs=args.final_epochs)
    exp = Experiment(DigitsSpace(), RegularizedEvolution(population_size=8, sample_size=3), evaluator,
                     max_trials=args.trials, concurrency=args.workers, executor="local",
                     store=os.path.join(args.out, "search.db"), name=f"digits-e{args.epochs}", seed=0)
    start = time.time()
    summary = exp.run()
    print(summary)
    exp.export(os.path.join(args.out, "best_arch.json"))
    (result,) = exp.test(top_k=1, retrain=True, seeds=args.seeds)
    print(f"\ntest set: {result}")
    out = {"arch": result.arch, "test": result.metrics, "test_std": result.std, "seeds": args.seeds,
           "candidates_evaluated": summary.n_trials, "seconds": time.time() - start}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(out, f, indent=2)
    print(f"TEST ACCURACY of the found architecture: {100 * result.metrics['test_acc']:.2f}% "
          f"± {100 * result.std.get('test_acc', 0.0):.2f} ({args.seeds} seeds)")
    return out


if __name__ == "__main__":
    main()
