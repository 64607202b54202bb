"""One-shot methods on NAS-Bench-201: search on a small real image set, look the export up.

Each method searches ``NasBench201Space(C, N)`` (nasforge.benchmarks) on scikit-learn's digits
(8×8 grey images, bilinearly resized to ``--size``², repeated to 3 channels), never seeing the
table. The exported arch is then looked up in the NAS-Bench-201 table (CIFAR-10 test accuracy
after 200 epochs) and printed next to the benchmark paper's numbers.

    .venv/bin/python benchmarks/oneshot_nb201.py                      # all methods, seed 0, 16x16, C=8
    .venv/bin/python benchmarks/oneshot_nb201.py --methods darts gdas --seeds 0 1 2 --epochs 20
    .venv/bin/python benchmarks/oneshot_nb201.py --seeds 0 1 2 --epochs 15 --size 8 --C 16   # docs/oneshot.md table

Methods: ``darts`` (plain argmax), ``darts_ez`` (DARTS' "strongest non-zero op" derivation rule;
also prints the same search's plain argmax), ``darts_beta``, ``darts_pt``, ``drnas`` (DrNAS: Dirichlet
KL anchor 1e-3, progressive pruning to 3 ops per edge after half the epochs, DARTS' derivation rule),
``gdas``, ``gdas_ez``, ``gdas_ref`` (GDAS with the authors' code gradient), ``enas``, ``spos``,
``proxyless`` (5 weight-only warm-up epochs, as the paper warms the supernet up), ``drnas_paper``
(``drnas`` with the papers' α learning rate 3e-4), ``darts_guard`` (``darts_ez`` with DARTS+ early
stopping: after an epoch whose export has more than 2 parameter-free edges of 6, stop and export
the previous epoch's arch), ``darts_pdarts`` (``darts_ez`` with P-DARTS' architecture refinement: at
most 2 of the 6 edges may export a parameter-free op; also prints the same search's uncapped
``darts_ez`` export as ``(no cap)``), ``darts_pdarts_warm`` (``darts_pdarts`` whose first 5 epochs
train the weights only, so α is learned on trained convolutions).

Protocol of the 10-seed table (docs/oneshot.md): ``--seeds 0 1 2 3 4 5 6 7 8 9`` with every other
setting at its default, fixed before any table score of the run is seen; the summary prints
mean ± standard deviation (ddof=1), worst and best per method. Every search is deterministic for a
seed on one machine (trainer-owned generators, 1 thread).
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
    DrNasTrainer,
    EnasTrainer,
    GumbelDartsTrainer,
    ProxylessTrainer,
    RandomOneShotTrainer,
)

PAPER = {  # NAS-Bench-201 paper (Dong & Yang, ICLR 2020), Table 5, CIFAR-10 test accuracy
    "darts": "54.30 (DARTS-V1 / V2)",
    "darts_beta": "—",
    "darts_pt": "— (DARTS-PT paper: 88.11)",
    "darts_ez": "54.30 (DARTS-V1 / V2)",
    "drnas": "94.36 (DrNAS paper)",
    "drnas_paper": "94.36 (DrNAS paper)",
    "darts_guard": "—",
    "darts_pdarts": "— (P-DARTS paper, DARTS space)",
    "darts_pdarts_warm": "— (P-DARTS paper, DARTS space)",
    "gdas": "93.51 (GDAS)",
    "gdas_ez": "93.51 (GDAS)",
    "gdas_ref": "93.51 (GDAS)",
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


class ShiftedDigits(torch.utils.data.Dataset):
    """Digits with a random translation of up to ``shift`` pixels per draw (zero padding, random crop).

    A standard augmentation (the DARTS / GDAS CIFAR pipelines pad 4 and crop); it makes the proxy
    task less trivially solved by pooling, and every epoch sees new versions of each image.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, shift: int, seed: int = 0):
        self.x, self.y, self.shift = x, y, shift
        self.pad = F.pad(x, (shift, shift, shift, shift), value=float(x.min()))
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        s, size = self.shift, self.x.shape[-1]
        dy, dx = (int(v) for v in torch.randint(0, 2 * s + 1, (2,), generator=self.gen))
        return self.pad[i, :, dy:dy + size, dx:dx + size], self.y[i]


def make_trainer(method: str, model, data, epochs: int, seed: int, batch_size: int, args=None):
    lr = args.lr if args is not None else 0.05
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=3e-4)
    loss = torch.nn.CrossEntropyLoss()
    common = dict(batch_size=batch_size, seed=seed, threads=args.threads if args is not None else 1)
    if args is not None and args.cosine:
        common["lr_scheduler"] = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(epochs, 1), eta_min=1e-3)
    arc_lr = args.arc_lr if args is not None else 3e-3
    if method == "darts_ez":  # DARTS' own derivation rule: the strongest non-zero op per edge
        return DartsTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=arc_lr, exclude_zero=True, **common)
    if method in ("gdas", "gdas_ez", "gdas_ref"):  # GDAS: τ 10 -> 0.1 linear, α Adam (0.5, 0.999), wd 1e-3
        return GumbelDartsTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=arc_lr,
                                  exclude_zero=method == "gdas_ez", reference_gradient=method == "gdas_ref", **common)
    if method == "spos" and args is not None:
        return RandomOneShotTrainer(model, loss, None, opt, epochs, data, search_samples=args.spos_samples,
                                    population_size=args.spos_population, top_k=args.spos_top_k,
                                    eval_batches=None if args.spos_eval_all else 4, score=args.spos_score,
                                    calib_batches=args.spos_calib, **common)
    if method == "drnas":  # DrNAS: KL anchor 1e-3 (authors' code), progressive pruning, DARTS' derivation rule
        return DrNasTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=arc_lr, reg_scale=1e-3,
                            progressive=True, exclude_zero=True, **common)
    if method == "drnas_paper":  # the same with the papers' α learning rate 3e-4 instead of the table's 3e-3
        return DrNasTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=3e-4, reg_scale=1e-3,
                            progressive=True, exclude_zero=True, **common)
    if method == "darts_pdarts":  # darts_ez + P-DARTS' refinement: at most 2 parameter-free edges at export
        return DartsTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=arc_lr, exclude_zero=True,
                            export_max_param_free=2, **common)
    if method == "darts_pdarts_warm":  # darts_pdarts + 5 weight-only warm-up epochs (α decided on trained convolutions)
        return DartsTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=arc_lr, exclude_zero=True,
                            export_max_param_free=2, warmup_epochs=min(5, epochs // 3), **common)
    if method == "darts_guard":  # darts_ez + DARTS+ collapse guard: stop when > 2 of the 6 edges are parameter-free
        return DartsTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=arc_lr, exclude_zero=True,
                            max_param_free=2, **common)
    if method == "darts":
        return DartsTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=3e-3, **common)
    if method == "darts_beta":
        return DartsTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=3e-3, regularization="beta",
                            reg_weight=50.0, warmup_epochs=5, **common)
    if method == "darts_pt":
        return DartsTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=3e-3, selection="perturbation",
                            pt_tune_epochs=1, **common)
    if method == "enas":
        return EnasTrainer(model, loss, None, None, opt, epochs, data, ctrl_steps_aggregate=2, ctrl_lr=3.5e-3, **common)
    if method == "spos":
        return RandomOneShotTrainer(model, loss, None, opt, epochs, data, search_samples=60, **common)
    if method == "proxyless":
        return ProxylessTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=3e-3,
                                warmup_epochs=min(5, epochs // 3), **common)
    raise ValueError(method)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["darts", "darts_ez", "darts_beta", "darts_pt", "drnas", "gdas",
                                                         "gdas_ez", "enas", "spos", "proxyless"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--size", type=int, default=8, help="digits resized to size x size (8: native)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shift", type=int, default=0, help="augment: random translation of up to this many pixels")
    parser.add_argument("--lr", type=float, default=0.05, help="weight SGD learning rate")
    parser.add_argument("--cosine", action="store_true", help="cosine-anneal the weight learning rate over the epochs")
    parser.add_argument("--arc-lr", type=float, default=3e-3, help="architecture Adam learning rate (DARTS family, GDAS)")
    parser.add_argument("--spos-samples", type=int, default=60, help="SPOS: sub-networks scored by the evolution")
    parser.add_argument("--spos-population", type=int, default=16)
    parser.add_argument("--spos-top-k", type=int, default=6)
    parser.add_argument("--spos-score", choices=["accuracy", "loss"], default="accuracy")
    parser.add_argument("--spos-calib", type=int, default=4, help="SPOS: batch-norm recalibration batches")
    parser.add_argument("--spos-eval-all", action="store_true", help="SPOS: score on the whole validation half")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    x, y = digits(args.size)
    # the search sees the first 1500 digits only (split into weight / architecture halves)
    if args.shift:
        data = ShiftedDigits(x[:1500], y[:1500], args.shift)
    else:
        data = torch.utils.data.TensorDataset(x[:1500], y[:1500])
    table = NasBench201Table(dataset="cifar10")
    rows = []
    print(f"NAS-Bench-201 space C={args.C} N={args.N}, digits {args.size}x{args.size} (shift {args.shift}), {args.epochs} epochs, "
          f"table optimum {table.optimum():.2f}, mean {float(np.mean(table.accuracies)):.2f}")
    print(f"{'method':<11} {'seed':>4} {'time s':>7} {'CIFAR-10':>8}  {'paper':<36} arch")
    for method in args.methods:
        for seed in args.seeds:
            if isinstance(data, ShiftedDigits):
                data.gen.manual_seed(seed)
            with torch.random.fork_rng(devices=[]):  # the network's initial weights: fixed by the seed
                torch.manual_seed(seed)
                model = NasBench201Space(C=args.C, N=args.N, num_classes=10)
            trainer = make_trainer(method, model, data, args.epochs, seed, args.batch_size, args)
            start = time.perf_counter()
            trainer.fit()
            arch = trainer.export()
            elapsed = time.perf_counter() - start
            acc = table.lookup(arch)
            s = arch_to_string(arch)
            rows.append({"method": method, "seed": seed, "seconds": round(elapsed, 1), "cifar10": acc, "arch": s,
                         "epochs_run": trainer.epoch})
            try:  # the final architecture distribution, so other export rules can be checked offline
                rows[-1]["arch_probabilities"] = trainer.arch_probabilities()
            except Exception:  # noqa: BLE001 - SPOS has no distribution
                pass
            print(f"{method:<11} {seed:>4} {elapsed:>7.1f} {acc:>8.2f}  {PAPER[method]:<36} {s}", flush=True)
            if getattr(trainer, "export_max_param_free", None) is not None and trainer._exported is None:
                nocap = trainer.supernet.export_from_alphas(True)
                rows[-1]["no_cap"] = {"cifar10": table.lookup(nocap), "arch": arch_to_string(nocap)}
                print(f"{'  (no cap)':<11} {seed:>4} {'':>7} {table.lookup(nocap):>8.2f}  {'':<36} {arch_to_string(nocap)}",
                      flush=True)
            if getattr(trainer, "exclude_zero", False) and trainer._exported is None:
                # the same search exported by plain argmax (zero op allowed), for comparison
                plain = trainer.supernet.export_from_alphas()
                rows[-1]["plain_argmax"] = {"cifar10": table.lookup(plain), "arch": arch_to_string(plain)}
                print(f"{'  (argmax)':<11} {seed:>4} {'':>7} {table.lookup(plain):>8.2f}  {'':<36} {arch_to_string(plain)}",
                      flush=True)
    print()
    print(f"{'method':<11} {'mean ± std CIFAR-10':>20} {'worst':>6} {'best':>6}  runs  seeds")
    for method in args.methods:
        accs = [r["cifar10"] for r in rows if r["method"] == method]
        std = float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0
        print(f"{method:<11} {np.mean(accs):>12.2f} ± {std:<5.2f} {min(accs):>6.2f} {max(accs):>6.2f}  {len(accs):>4}  "
              f"{' '.join(str(r['seed']) for r in rows if r['method'] == method)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
