"""One-shot methods on NAS-Bench-201: search on a small real image set, look the export up.

Each method searches ``NasBench201Space(C, N)`` (nasforge.benchmarks) on scikit-learn's digits
(8×8 grey images, bilinearly resized to ``--size``², repeated to 3 channels), never seeing the
table. The exported arch is then looked up in the NAS-Bench-201 table (CIFAR-10 test accuracy
after 200 epochs) and printed next to the benchmark paper's numbers.

    .venv/bin/python benchmarks/oneshot_nb201.py                      # all methods, seed 0
    .venv/bin/python benchmarks/oneshot_nb201.py --methods darts gdas --seeds 0 1 2 --epochs 20
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from nasforge.benchmarks.nasbench201 import NasBench201Space, NasBench201Table, arch_to_string
from nasforge.oneshot import (
    DartsTrainer,
    EnasTrainer,
    GumbelDartsTrainer,
    ProxylessTrainer,
    RandomOneShotTrainer,
)

PAPER = {  # NAS-Bench-201 paper (Dong & Yang, ICLR 2020), Table 5, CIFAR-10 test accuracy
    "darts": "54.30 (DARTS-V1 / V2)",
    "darts_beta": "—",
    "darts_pt": "— (DARTS-PT paper: 88.11)",
    "gdas": "93.51 (GDAS)",
    "enas": "54.30 (ENAS)",
    "spos": "87.66 (RSPS, random weight-sharing)",
    "proxyless": "—",
}


def digits(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = (x - x.mean()) / x.std()
    return x.repeat(1, 3, 1, 1).contiguous(), torch.tensor(d.target, dtype=torch.long)


def make_trainer(method: str, model, data, epochs: int, seed: int, batch_size: int):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    loss = torch.nn.CrossEntropyLoss()
    common = dict(batch_size=batch_size, seed=seed)
    if method == "darts":
        return DartsTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=3e-3, **common)
    if method == "darts_beta":
        return DartsTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=3e-3, regularization="beta",
                            reg_weight=50.0, warmup_epochs=5, **common)
    if method == "darts_pt":
        return DartsTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=3e-3, selection="perturbation",
                            pt_tune_epochs=1, **common)
    if method == "gdas":
        return GumbelDartsTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=3e-3, **common)
    if method == "enas":
        return EnasTrainer(model, loss, None, None, opt, epochs, data, ctrl_steps_aggregate=2, ctrl_lr=3.5e-3, **common)
    if method == "spos":
        return RandomOneShotTrainer(model, loss, None, opt, epochs, data, search_samples=60, **common)
    if method == "proxyless":
        return ProxylessTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=3e-3, **common)
    raise ValueError(method)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["darts", "darts_beta", "darts_pt", "gdas", "enas", "spos", "proxyless"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--C", type=int, default=8)
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    x, y = digits(args.size)
    # the search sees the first 1500 digits only (split into weight / architecture halves)
    data = torch.utils.data.TensorDataset(x[:1500], y[:1500])
    table = NasBench201Table(dataset="cifar10")
    rows = []
    print(f"NAS-Bench-201 space C={args.C} N={args.N}, digits {args.size}x{args.size}, {args.epochs} epochs, "
          f"table optimum {table.optimum():.2f}, mean {float(np.mean(table.accuracies)):.2f}")
    print(f"{'method':<11} {'seed':>4} {'time s':>7} {'CIFAR-10':>8}  {'paper':<36} arch")
    for method in args.methods:
        for seed in args.seeds:
            torch.manual_seed(seed)
            model = NasBench201Space(C=args.C, N=args.N, num_classes=10)
            trainer = make_trainer(method, model, data, args.epochs, seed, args.batch_size)
            start = time.perf_counter()
            trainer.fit()
            arch = trainer.export()
            elapsed = time.perf_counter() - start
            acc = table.lookup(arch)
            s = arch_to_string(arch)
            rows.append({"method": method, "seed": seed, "seconds": round(elapsed, 1), "cifar10": acc, "arch": s,
                         "epochs_run": trainer.epoch})
            print(f"{method:<11} {seed:>4} {elapsed:>7.1f} {acc:>8.2f}  {PAPER[method]:<36} {s}", flush=True)
    print()
    print(f"{'method':<11} {'mean CIFAR-10':>13} {'best':>6}  runs")
    for method in args.methods:
        accs = [r["cifar10"] for r in rows if r["method"] == method]
        print(f"{method:<11} {np.mean(accs):>13.2f} {max(accs):>6.2f}  {len(accs)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
