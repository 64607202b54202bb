"""Architecture search for a regression task: scikit-learn's diabetes data (offline, 442 patients).

1. The 10 standardised features predict disease progression one year later (a number); the
   data is split 60 / 20 / 20 into train / validation / test (seeded), and features and target
   are standardised with the train split's statistics.
2. A small MLP space (depth via ``Repeat``, width, activation, dropout, a linear skip) is
   searched by regularized evolution with ``Regression`` (MSE loss; each trial reports
   ``val_mse`` — the main metric, minimised — ``val_mae`` and ``val_r2`` every epoch).
3. The best archs are retrained on train+val with several seeds and measured on the test split:
   mean ± std of the test MSE / MAE / R², next to ordinary least squares on the same split.

Run: ``.venv/bin/python examples/regression_diabetes.py`` (``--quick`` for a seconds-long smoke
run, ``--help`` for the options). Writes ``--out`` (default ``runs/diabetes``): ``search.db``,
``best_arch.json``, ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

import nasforge.nn as nn
from nasforge import Experiment
from nasforge.evaluate import Regression
from nasforge.strategy import RegularizedEvolution


class DiabetesSpace(nn.ModelSpace):
    """``(batch, 10)`` features -> ``(batch, 1)`` prediction."""

    def __init__(self, n_features: int = 10):
        super().__init__()
        width = nn.ValueChoice([16, 32, 64, 128], label="width")
        dropout = nn.ValueChoice([0.0, 0.1, 0.3], label="dropout")
        self.inp = nn.Linear(n_features, width)
        self.act = nn.LayerChoice({"relu": nn.ReLU(), "gelu": nn.GELU(), "tanh": nn.Tanh()}, label="act")
        self.blocks = nn.Repeat(
            lambda i: nn.Sequential(nn.Linear(width, width), nn.LayerChoice({"relu": nn.ReLU(), "gelu": nn.GELU(), "tanh": nn.Tanh()}, label="act"), nn.Dropout(dropout)),
            (0, 3),
            label="depth",
        )
        self.out = nn.Linear(width, 1)
        # a linear path from the features, added or not: the space contains plain linear regression plus an MLP
        self.linear = nn.LayerChoice({"yes": nn.Linear(n_features, 1), "no": _Zero()}, label="linear_skip")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.act(self.inp(x)))) + self.linear(x)


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], 1)


def load_diabetes_splits(seed: int = 0):
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    n_train, n_val = int(0.6 * len(y)), int(0.2 * len(y))
    parts = np.split(order, [n_train, n_train + n_val])
    mu, sd = x[parts[0]].mean(0), x[parts[0]].std(0)
    y_mu, y_sd = y[parts[0]].mean(), y[parts[0]].std()

    def split(idx):
        return torch.tensor((x[idx] - mu) / sd, dtype=torch.float32), torch.tensor((y[idx] - y_mu) / y_sd, dtype=torch.float32)

    return split(parts[0]), split(parts[1]), split(parts[2]), float(y_sd)


def least_squares(train, val, test) -> dict[str, float]:
    """Ordinary least squares fitted on train+val, scored on test (the classical baseline)."""
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    x = torch.cat([train[0], val[0]]).numpy()
    y = torch.cat([train[1], val[1]]).numpy()
    pred = LinearRegression().fit(x, y).predict(test[0].numpy())
    truth = test[1].numpy()
    return {"test_mse": float(mean_squared_error(truth, pred)), "test_mae": float(mean_absolute_error(truth, pred)),
            "test_r2": float(r2_score(truth, pred))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/diabetes", help="output folder (default: runs/diabetes)")
    parser.add_argument("--trials", type=int, default=40, help="candidates to evaluate (default: 40)")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs per candidate (default: 60)")
    parser.add_argument("--final-epochs", type=int, default=100, help="epochs of the final retraining (default: 100)")
    parser.add_argument("--top-k", type=int, default=2, help="candidates retrained and tested (default: 2)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per tested candidate (default: 3)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the search (default: 0)")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run (3 trials, 2 epochs, 2 seeds, inline)")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.epochs, args.final_epochs, args.top_k, args.seeds, args.workers = 3, 2, 2, 1, 2, 0
    os.makedirs(args.out, exist_ok=True)
    train, val, test, y_sd = load_diabetes_splits(args.seed)
    print(f"diabetes: {len(train[1])} train / {len(val[1])} val / {len(test[1])} test patients, {train[0].shape[1]} features")
    evaluator = Regression(train, val, test_data=test, loss="mse", extra_metrics=("mse", "mae", "r2"),
                           epochs=args.epochs, batch_size=32, lr=3e-3, weight_decay=1e-2, final_epochs=args.final_epochs)
    exp = Experiment(
        DiabetesSpace(), RegularizedEvolution(population_size=10, sample_size=4), evaluator,
        max_trials=args.trials, concurrency=max(1, args.workers), executor="local" if args.workers else "inline",
        store=os.path.join(args.out, "search.db"), name=f"diabetes-e{args.epochs}", seed=args.seed,
    )
    start = time.time()
    summary = exp.run()
    print(summary)
    print("\nleaderboard (validation MSE on standardised targets, lower is better):")
    for rank, t in enumerate(exp.best(5), 1):
        print(f"  {rank}. trial {t.id}: val_mse {t.metrics['val_mse']:.4f}  val_r2 {t.metrics['val_r2']:.3f}  "
              f"params {t.metrics.get('params', 0):.0f}  {json.dumps(t.arch)}")
    exp.export(os.path.join(args.out, "best_arch.json"))
    results = exp.test(top_k=args.top_k, retrain=True, seeds=args.seeds)
    baseline = least_squares(train, val, test)
    print(f"\ntest set ({args.seeds} seeds each, retrained on train+val for {args.final_epochs} epochs):")
    for r in results:
        print(f"  {r}")
        print(f"      RMSE in the target's units: {np.sqrt(r.metrics['test_mse']) * y_sd:.1f}")
    print(f"  least squares (baseline): test_mse {baseline['test_mse']:.4f}, test_mae {baseline['test_mae']:.4f}, "
          f"test_r2 {baseline['test_r2']:.4f}; RMSE {np.sqrt(baseline['test_mse']) * y_sd:.1f}")
    chosen = results[0]  # the search's pick; the test set chooses nothing
    out = {
        "arch": chosen.arch,
        "test": chosen.metrics,
        "test_std": chosen.std,
        "seeds": args.seeds,
        "least_squares": baseline,
        "candidates_evaluated": summary.n_trials,
        "seconds": time.time() - start,
    }
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(out, f, indent=2)
    print(f"\nTEST R2 of the found architecture: {chosen.metrics['test_r2']:.3f} ± {chosen.std.get('test_r2', 0.0):.3f} "
          f"(least squares: {baseline['test_r2']:.3f})")
    return out


if __name__ == "__main__":
    main()
