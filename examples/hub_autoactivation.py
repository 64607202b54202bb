"""Search an activation function (``nasforge.hub.AutoActivation``) inside a small MLP on
scikit-learn's digits with TPE, through the experiment loop; the found function is printed.

    PYTHONPATH=src .venv/bin/python examples/hub_autoactivation.py            # a minute on a CPU
    PYTHONPATH=src .venv/bin/python examples/hub_autoactivation.py --quick    # seconds (run by the tests)
"""

from __future__ import annotations

import argparse

import torch
from _hub_data import digits

import nasforge.nn as nn
from nasforge import Experiment
from nasforge.evaluate import Classification
from nasforge.hub import AutoActivation
from nasforge.strategy import TPE


class ActNet(nn.ModelSpace):
    """An MLP on 8×8 digits whose hidden activation is searched."""

    def __init__(self, hidden: int = 64, unit_num: int = 1):
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.act = AutoActivation(unit_num=unit_num, label="act")
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x.flatten(1))))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="TPE over AutoActivation (digits)")
    parser.add_argument("--quick", action="store_true", help="a few one-epoch trials (for the tests)")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    trials, epochs, limit = (4, 1, 64) if args.quick else (args.trials, args.epochs, None)
    train_set, test_set = digits(size=8, channels=1, limit=limit)
    n = len(train_set)
    train_part = torch.utils.data.TensorDataset(*(t[: n * 3 // 4] for t in train_set.tensors))
    val_part = torch.utils.data.TensorDataset(*(t[n * 3 // 4:] for t in train_set.tensors))

    exp = Experiment(ActNet(), TPE(n_startup_trials=min(10, trials)),
                     Classification(train_part, val_part, epochs=epochs, batch_size=64),
                     max_trials=trials, executor="inline", seed=0, progress=False)
    exp.run()
    best = exp.best(1)[0]
    a = best.arch
    print(f"best: binary_0({a['act.unary_0']}(x), {a['act.unary_1']}(x)) = {a['act.binary_0']}; "
          f"val metrics {best.metrics}")
    return {"arch": a, "metrics": best.metrics}


if __name__ == "__main__":
    main()
