"""Regularized evolution on the NAS-Bench-101 cell space (``nasforge.hub.NasBench101Space``)
through the experiment loop, on scikit-learn's digits: invalid cells (no input-output path, more
than 9 edges) fail as trials with the reason, the search goes on.

    PYTHONPATH=src .venv/bin/python examples/hub_nasbench101.py            # minutes on a CPU
    PYTHONPATH=src .venv/bin/python examples/hub_nasbench101.py --quick    # seconds (run by the tests)
"""

from __future__ import annotations

import argparse
import json

import torch
from _hub_data import digits

from nasforge import Experiment, TrialStatus
from nasforge.evaluate import Classification
from nasforge.hub import NasBench101Space
from nasforge.hub.nasbench101 import arch_to_spec, prune
from nasforge.strategy import RegularizedEvolution


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Evolution on NasBench101Space (digits)")
    parser.add_argument("--quick", action="store_true", help="a few one-epoch trials (for the tests)")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    trials, epochs, limit = (4, 1, 64) if args.quick else (args.trials, args.epochs, None)
    train_set, test_set = digits(size=8, limit=limit)
    n = len(train_set)
    train_part = torch.utils.data.TensorDataset(*(t[: n * 3 // 4] for t in train_set.tensors))
    val_part = torch.utils.data.TensorDataset(*(t[n * 3 // 4:] for t in train_set.tensors))

    model = NasBench101Space(stem_channels=16, num_stacks=2, num_modules_per_stack=1)
    exp = Experiment(model, RegularizedEvolution(population_size=8, sample_size=3),
                     Classification(train_part, val_part, test_data=test_set, epochs=epochs, batch_size=64),
                     max_trials=trials, executor="inline", seed=0, progress=False)
    exp.run()
    failed = [t for t in exp.trials() if t.status == TrialStatus.FAILED]
    print(f"{len(exp.trials())} trials, {len(failed)} invalid cells failed, e.g. {failed[0].error.splitlines()[-1] if failed else '-'}")
    best = exp.best(1)
    if not best:
        print("no valid cell among the trials; run more trials")
        return {"arch": None, "failed": len(failed)}
    arch = best[0].arch
    matrix, op_list = prune(*arch_to_spec(arch))
    print("best cell:", op_list, "\n", matrix)
    print("best arch:", json.dumps(arch), "val metrics:", best[0].metrics)
    return {"arch": arch, "metrics": best[0].metrics, "failed": len(failed)}


if __name__ == "__main__":
    main()
