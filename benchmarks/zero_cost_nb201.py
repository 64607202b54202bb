"""Zero-cost proxies on NAS-Bench-201: Spearman rank correlation with the table's accuracies.

Scores a seeded uniform sample of ``--archs`` distinct NAS-Bench-201 archs on the real
:class:`~nasforge.benchmarks.nasbench201.NasBench201Space` network (C=16, N=5, 10 classes, fresh
initialisation from ``--seed`` for every arch) with each proxy of ``nasforge.evaluate.proxies``,
and prints the Spearman ρ of every proxy against the table's CIFAR-10, CIFAR-100 and
ImageNet16-120 test accuracy, with the mean time per arch.

Data-free proxies (synflow, zen, params, flops) use only the input shape (3×32×32). The
data-using ones (naswot, jacob_cov, snip, grad_norm) need a minibatch; no CIFAR is available
offline here, so they are scored on a **stand-in minibatch**: ``--batch`` scikit-learn digits
(8×8 grey, upsampled to 32×32, repeated on 3 channels, standardised) with their labels. The
papers' numbers use real CIFAR-10 images (NASWOT: batch 128).

    python benchmarks/zero_cost_nb201.py --archs 1000 --data-archs 250 --json zc.json

The data-using proxies cost 4-10× more per arch on this CPU, so they are scored on the first
``--data-archs`` archs of the same seeded sample (the table states the number of archs per proxy).

Results are appended to ``--json`` as they come (a rerun with the same file resumes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nasforge.benchmarks.nasbench201 import (  # noqa: E402
    NasBench201Space,
    NasBench201Table,
    arch_to_string,
    nasbench201_space,
)
from nasforge.evaluate.proxies import DATA_FREE, PROXIES, score  # noqa: E402

PUBLISHED_C10 = {"synflow": 0.74, "params": 0.72, "flops": 0.69, "naswot": 0.77}
DATASETS = ("cifar10", "cifar100", "imagenet16_120")


def stand_in_batch(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` scikit-learn digits as a 3×32×32 image batch (a stand-in: no CIFAR offline)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(d.images), size=n, replace=False)
    x = torch.tensor(d.images[idx], dtype=torch.float32)[:, None]
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    x = (x - x.mean()) / x.std()
    return x, torch.tensor(d.target[idx], dtype=torch.long)


def rank(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ (Pearson correlation of the tie-averaged ranks) over the pairs where both are finite."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(rank(a[ok]), rank(b[ok]))[0, 1])


def sample_archs(n: int, seed: int) -> list[dict]:
    space = nasbench201_space()
    rng = np.random.default_rng(seed)
    seen: dict[str, dict] = {}
    while len(seen) < n:
        arch = space.sample(rng)
        seen.setdefault(arch_to_string(arch), arch)
    return list(seen.values())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=16, help="stand-in minibatch size of the data-using proxies")
    p.add_argument("--data-archs", type=int, default=None,
                   help="score the data-using proxies on the first N archs only (default: all)")
    p.add_argument("--proxies", default=",".join(PROXIES), help="comma-separated subset of: " + ", ".join(PROXIES))
    p.add_argument("--json", default=None, help="per-arch scores (appended as they come; resumes)")
    p.add_argument("--table", default=None, help="NAS-Bench-201 CSV (default: the copy shipped with nasforge)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    names = [s.strip() for s in args.proxies.split(",") if s.strip()]
    bad = [n for n in names if n not in PROXIES]
    if bad:
        p.error(f"unknown proxies {bad}; valid: {list(PROXIES)}")
    tables = {d: NasBench201Table(args.table, d) for d in DATASETS}
    archs = sample_archs(args.archs, args.seed)
    model_space = NasBench201Space(C=16, N=5, num_classes=10)
    x, y = stand_in_batch(args.batch, args.seed)
    rows: dict[str, dict] = {}
    if args.json and os.path.exists(args.json):
        with open(args.json) as f:
            for line in f:
                r = json.loads(line)
                rows[r["arch"]] = r
    out = open(args.json, "a") if args.json else None
    t0 = time.time()
    for i, arch in enumerate(archs):
        s = arch_to_string(arch)
        wanted = [n for n in names if n in DATA_FREE or args.data_archs is None or i < args.data_archs]
        old = rows.get(s, {"scores": {}, "seconds": {}, "cpu_seconds": {}})
        todo = [n for n in wanted if n not in old["scores"]]
        if not todo:
            continue
        net = model_space.freeze(arch)
        scores, secs, cpu = dict(old["scores"]), dict(old["seconds"]), dict(old.get("cpu_seconds", {}))
        for n in todo:
            start, start_cpu = time.perf_counter(), time.process_time()
            data = (1, 3, 32, 32) if n in DATA_FREE else (x, y)
            scores[n] = score(n, net, data, seed=args.seed)
            secs[n] = time.perf_counter() - start
            cpu[n] = time.process_time() - start_cpu
        rows[s] = {"arch": s, "scores": scores, "seconds": secs, "cpu_seconds": cpu}
        if out is not None:
            out.write(json.dumps(rows[s]) + "\n")
            out.flush()
        if (i + 1) % 50 == 0:
            print(f"{i + 1}/{len(archs)} archs, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    if out is not None:
        out.close()
    all_keys = [arch_to_string(a) for a in archs]
    print(f"NAS-Bench-201, {len(all_keys)} archs (seed {args.seed}), NasBench201Space(C=16, N=5), "
          f"data-using proxies on a stand-in minibatch of {args.batch} digits (not CIFAR)")
    print()
    print("| proxy | data | archs | Spearman ρ CIFAR-10 | CIFAR-100 | ImageNet16-120 | published (CIFAR-10) | CPU ms / arch |")
    print("|---|---|---|---|---|---|---|---|")
    for n in names:
        keys = [k for k in all_keys if n in rows[k]["scores"]]
        acc = {d: np.array([tables[d].lookup_string(k) for k in keys]) for d in DATASETS}
        v = np.array([rows[k]["scores"][n] for k in keys], dtype=np.float64)
        # CPU time of the process (one thread): wall time on a shared machine says more about the neighbours
        timed = [rows[k]["cpu_seconds"][n] for k in keys if n in rows[k].get("cpu_seconds", {})]
        ms = f"{1000 * float(np.mean(timed)):.0f}" if timed else "—"
        rhos = " | ".join(f"{spearman(v, acc[d]):.3f}" for d in DATASETS)
        data = "free" if n in DATA_FREE else f"stand-in batch {args.batch}"
        print(f"| {n} | {data} | {len(keys)} | {rhos} | {PUBLISHED_C10.get(n, '—')} | {ms} |")
    print("\nnon-finite scores: " + ", ".join(
        f"{n} {sum(not np.isfinite(rows[k]['scores'][n]) for k in all_keys if n in rows[k]['scores'])}" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
