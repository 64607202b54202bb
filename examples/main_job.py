"""The main job: a real architecture search on MNIST-1D, on CPU, in under 10 minutes.

1. MNIST-1D is generated offline (``mnist1d.data.make_dataset``; 4,000 train / 1,000 test
   signals of length 40); the train split is cut into 3,000 train / 1,000 validation.
2. A model space with convolutional (width, depth via ``Repeat``, kernel sizes, batch norm,
   residual connections, pooling), recurrent (GRU / LSTM) and fully connected families
   (``examples/mnist1d_space.py``) is searched by regularized evolution on 2 worker processes;
   each candidate gets a short proxy training (a few epochs) and is scored on validation.
3. The best candidates (by validation accuracy) are retrained from scratch on train+val with
   the full recipe and measured once on the test split.

Writes to ``--out`` (default ``runs/main``): ``search.db`` (every trial, resumable),
``best_arch.json`` (loadable with ``nasforge.fixed_arch``), ``best_weights.pt`` (the retrained
network's state dict; build it with ``Mnist1dSpace().freeze(arch)``), ``history.png``
(best-so-far over trials), ``results.json`` and ``report/`` (``nasforge report``: PNG plots and
``report.html``).

Run: ``bash scripts/main.sh`` (or ``.venv/bin/python examples/main_job.py --help``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mnist1d_space import Mnist1dSpace  # noqa: E402

from nasforge import Experiment  # noqa: E402
from nasforge.evaluate import Classification  # noqa: E402
from nasforge.strategy import RegularizedEvolution  # noqa: E402
from nasforge.viz import plot_history  # noqa: E402


def load_mnist1d(seed: int = 0, n_val: int = 1000):
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())  # procedural, offline (never the downloading loader)
    x = torch.tensor(data["x"], dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data["y"], dtype=torch.long)
    x_test = torch.tensor(data["x_test"], dtype=torch.float32).unsqueeze(1)
    y_test = torch.tensor(data["y_test"], dtype=torch.long)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val]), (x_test, y_test)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/main", help="output folder (default: runs/main)")
    parser.add_argument("--trials", type=int, default=80, help="max candidates to evaluate (default: 80)")
    parser.add_argument("--search-time", type=float, default=240, help="search time budget in seconds (default: 240)")
    parser.add_argument("--proxy-epochs", type=int, default=5, help="training epochs per candidate (default: 5)")
    parser.add_argument("--final-epochs", type=int, default=50, help="epochs of the final retraining (default: 50)")
    parser.add_argument("--top-k", type=int, default=2, help="candidates retrained and tested (default: 2)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default: 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true",
                        help="continue the search stored in --out (after an interruption) instead of starting afresh")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    t0 = time.time()
    if not args.resume and os.path.isdir(args.out):
        shutil.rmtree(args.out)  # a fresh search each time, unless asked to resume
    os.makedirs(args.out, exist_ok=True)
    train, val, test = load_mnist1d(args.seed)
    print(f"MNIST-1D: {len(train[1])} train / {len(val[1])} val / {len(test[1])} test signals of length {train[0].shape[-1]}")

    space = Mnist1dSpace()
    print(f"model space: {len(space.space)} choices, {space.space.size:,} distinct networks "
          f"({space.space.full_size:,} assignments of every label; the labels of unused branches are inactive)")
    evaluator = Classification(
        train,
        val,
        test_data=test,
        epochs=args.proxy_epochs,
        batch_size=128,
        optimizer="adamw",
        lr=3e-3,
        weight_decay=0.05,
        scheduler="cosine",
        label_smoothing=0.05,
        final_epochs=args.final_epochs,
    )
    exp = Experiment(
        space,
        RegularizedEvolution(population_size=16, sample_size=4),
        evaluator,
        max_trials=args.trials,
        max_time=args.search_time,
        concurrency=args.workers,
        trial_timeout=120,
        store=os.path.join(args.out, "search.db"),
        name="mnist1d",
        seed=args.seed,
        executor="local",
    )
    summary = exp.run()
    search_time = time.time() - t0
    print(f"\nsearch: {summary.n_trials} candidates evaluated, {summary.counts}, stopped by {summary.stop_reason}, "
          f"{search_time:.0f} s so far")

    trials = exp.trials()
    # Archs are canonical (inactive labels dropped), so one key per network.
    distinct = len({json.dumps(space.space.canonical(t.arch), sort_keys=True) for t in trials})
    print(f"distinct networks evaluated: {distinct} in {len(trials)} trials"
          + ("" if distinct == len(trials) else "  (SOME NETWORK WAS TRAINED TWICE)"))
    top = exp.best(10)
    print("\nleaderboard (validation accuracy after the proxy training):")
    print(f"{'rank':>4} {'trial':>5} {'val_acc':>8} {'params':>8} {'time':>6}  arch")
    for rank, t in enumerate(top, 1):
        print(f"{rank:>4} {t.id:>5} {t.metrics['val_acc']:>8.4f} {int(t.metrics.get('params', 0)):>8} "
              f"{t.duration or 0:>5.1f}s  {json.dumps(t.arch)}")

    arch = exp.export(os.path.join(args.out, "best_arch.json"))
    plot_history(trials, os.path.join(args.out, "history.png"), metric="val_acc",
                 title=f"MNIST-1D search: best validation accuracy over {len(trials)} candidates")

    print(f"\nretraining the top {args.top_k} from scratch on train+val for {args.final_epochs} epochs …")
    results = exp.test(top_k=args.top_k, retrain=True, weights_dir=os.path.join(args.out, "weights"))
    for r in results:
        print(f"  trial {r.trial_id}: test_acc {r.metrics.get('test_acc', float('nan')):.4f} "
              f"({int(r.metrics.get('params', 0))} params)" + (f"  FAILED: {r.error}" if r.status != "SUCCEEDED" else ""))
    chosen = results[0]  # the search's pick (best validation accuracy); the test set picks nothing
    if chosen.weights:
        shutil.copyfile(chosen.weights, os.path.join(args.out, "best_weights.pt"))
    wall = time.time() - t0
    out = {
        "dataset": f"MNIST-1D (mnist1d.make_dataset defaults): {len(train[1])} train / {len(val[1])} val / {len(test[1])} test",
        "candidates_evaluated": summary.n_trials,
        "distinct_networks_evaluated": distinct,
        "status_counts": summary.counts,
        "best_trial": top[0].id if top else None,
        "best_val_acc_proxy": top[0].metrics["val_acc"] if top else None,
        "best_arch": arch,
        "test_acc": chosen.metrics.get("test_acc"),
        "test_params": chosen.metrics.get("params"),
        "tested": [r.to_dict() for r in results],
        "wall_time_s": round(wall, 1),
        "search_time_s": round(search_time, 1),
        "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}",
    }
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(out, f, indent=2)
    print(f"\nfound architecture (trial {out['best_trial']}): {json.dumps(arch)}")
    print(f"TEST ACCURACY of the found architecture: {100 * (out['test_acc'] or 0):.2f}%  "
          f"({summary.n_trials} candidates, total wall time {wall:.0f} s)")
    print(f"wrote {args.out}/best_arch.json, best_weights.pt, history.png, results.json, search.db")
    from nasforge.dashboard import write_report  # PNG plots + one self-contained HTML page

    report = write_report(os.path.join(args.out, "search.db"), os.path.join(args.out, "report"))
    print(f"report: {report[-1]} ({len(report) - 1} plots); live view: nasforge dashboard {args.out}/search.db")
    return out


if __name__ == "__main__":
    main()
