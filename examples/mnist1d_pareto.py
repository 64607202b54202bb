"""Multi-objective search on MNIST-1D: validation accuracy vs number of parameters.

The main job's model space (``examples/mnist1d_space.py``: CNN / RNN / MLP families) is searched
by regularized evolution in its multi-objective mode (NSGA-II selection) with
``objectives=[("val_acc", "max"), ("params", "min")]`` and an optional parameter budget
(``--max-params``: archs over it are rejected before training). Prints the Pareto front and
writes a plot of every trial and the front (``--plot``).

    python examples/mnist1d_pareto.py --trials 60 --epochs 3 --plot docs/mnist1d_pareto.png

``--quick`` shrinks everything (a few hundred signals, 1 epoch, in-process) for the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from main_job import load_mnist1d  # noqa: E402
from mnist1d_space import Mnist1dSpace  # noqa: E402

from nasforge import Experiment  # noqa: E402
from nasforge.evaluate import Classification  # noqa: E402
from nasforge.strategy import RegularizedEvolution  # noqa: E402
from nasforge.viz import plot_pareto  # noqa: E402

OBJECTIVES = [("val_acc", "max"), ("params", "min")]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=60)
    p.add_argument("--epochs", type=int, default=3, help="training epochs per candidate")
    p.add_argument("--max-params", type=float, default=None, help="reject archs with more parameters (before training)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--store", default=None, help="SQLite store (default: in memory)")
    p.add_argument("--plot", default=None, help="PNG of the trials and the Pareto front")
    p.add_argument("--json", default=None, help="the front as JSON")
    p.add_argument("--quick", action="store_true", help="tiny data, 1 epoch, in-process (tests)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    train, val, _ = load_mnist1d(args.seed)
    if args.quick:
        train = (train[0][:300], train[1][:300])
        val = (val[0][:200], val[1][:200])
    evaluator = Classification(train, val, epochs=1 if args.quick else args.epochs, batch_size=128, lr=3e-3,
                               weight_decay=0.05, label_smoothing=0.05)
    exp = Experiment(
        Mnist1dSpace(),
        # population: at most half the budget, so NSGA-II selection gets to act
        RegularizedEvolution(population_size=max(2, min(16, args.trials // 2)), sample_size=2 if args.quick else 3),
        evaluator,
        objectives=OBJECTIVES,
        constraints={"params": args.max_params} if args.max_params else None,
        max_trials=args.trials,
        concurrency=1 if args.quick else args.workers,
        executor="inline" if args.quick else "local",
        seed=args.seed,
        store=args.store,
        name="mnist1d-pareto",
    )
    t0 = time.time()
    summary = exp.run()
    front = exp.pareto()
    print(f"{summary.n_trials} trials ({summary.counts}) in {time.time() - t0:.0f} s; "
          f"Pareto front of val_acc (max) vs params (min): {len(front)} archs")
    print(f"{'trial':>5} {'val_acc':>8} {'params':>8}  arch")
    for t in front:
        # archs are canonical: the labels of unused branches are not in them
        print(f"{t.id:>5} {t.metrics['val_acc']:>8.4f} {int(t.metrics['params']):>8}  {json.dumps(t.arch)}")
    if args.plot:
        os.makedirs(os.path.dirname(os.path.abspath(args.plot)), exist_ok=True)
        plot_pareto(exp.trials(), args.plot, OBJECTIVES, log_x=True,
                    title=f"MNIST-1D: val_acc vs params, {summary.n_trials} trials (NSGA-II evolution)")
        print(f"wrote {args.plot}")
    out = {
        "trials": summary.n_trials,
        "counts": summary.counts,
        "front": [{"trial": t.id, "val_acc": t.metrics["val_acc"], "params": t.metrics["params"], "arch": t.arch} for t in front],
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
