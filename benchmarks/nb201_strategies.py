"""Benchmark nasforge's multi-trial strategies on the NAS-Bench-201 table.

Every strategy is driven in-process (ask -> table look-up -> tell) for ``--queries`` queries
and ``--seeds`` seeds; a query is one arch looked up (a strategy proposing an arch it already
saw would pay again; ours de-duplicate). Plain Optuna TPE, driven directly through
``study.optimize``, is the peer baseline.

Reports per strategy the mean ± std over seeds of the best test accuracy after 25, 50, 100,
150 and 300 queries, the median number of queries to reach the table's optimum, and the wall
time per query; optionally writes JSON and a PNG of the mean best-so-far curves.

    python benchmarks/nb201_strategies.py --dataset cifar10 --seeds 100 --queries 300 \
        --json nb201.json --plot docs/nb201_strategies.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from multiprocessing import get_context

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from nasforge.benchmarks.nasbench201 import LABELS, OPS, NasBench201Table, nasbench201_space  # noqa: E402
from nasforge.strategy import (  # noqa: E402
    TPE,
    GridSearch,
    LocalSearch,
    PolicyBasedRL,
    PredictorBased,
    Progressive,
    Random,
    RegularizedEvolution,
)
from nasforge.strategy.testing import run_ask_tell  # noqa: E402

MILESTONES = (25, 50, 100, 150, 300)

# name -> factory; the settings are part of the result, so they are spelled out here.
STRATEGIES = {
    "Random": lambda: Random(dedup=False),
    "Random (dedup)": lambda: Random(dedup=True),
    "GridSearch (shuffled)": lambda: GridSearch(shuffle=True),
    "RegularizedEvolution": lambda: RegularizedEvolution(population_size=10, sample_size=3),
    "PolicyBasedRL (REINFORCE)": lambda: PolicyBasedRL(algorithm="reinforce", learning_rate=0.02),
    "PolicyBasedRL (PPO)": lambda: PolicyBasedRL(algorithm="ppo", learning_rate=0.02, batch_size=5),
    "TPE": lambda: TPE(),
    "PredictorBased": lambda: PredictorBased(num_init=10, acquisition="its"),
    "Progressive": lambda: Progressive(beam_size=10, order=list(reversed(LABELS))),
    "LocalSearch": lambda: LocalSearch(),
}
OPTUNA = "Optuna TPE (raw)"

_TABLE: NasBench201Table | None = None


def _init(path: str | None, dataset: str) -> None:
    global _TABLE
    _TABLE = NasBench201Table(path, dataset)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def _run_one(job: tuple[str, int, int]) -> tuple[str, int, list[float], float]:
    name, seed, queries = job
    table = _TABLE
    assert table is not None
    t0 = time.perf_counter()
    if name == OPTUNA:
        scores = _run_optuna(table, seed, queries)
    else:
        trials = run_ask_tell(STRATEGIES[name](), nasbench201_space(), table.lookup, budget=queries, seed=seed)
        scores = [t.score if t.score is not None else -np.inf for t in trials]
    elapsed = time.perf_counter() - t0
    curve = np.maximum.accumulate(np.asarray(scores, dtype=float)).tolist()
    curve += [curve[-1]] * (queries - len(curve))  # a strategy that ran out keeps its best
    return name, seed, curve, elapsed / max(1, len(scores))


def _run_optuna(table: NasBench201Table, seed: int, queries: int) -> list[float]:
    import logging

    import optuna

    logging.getLogger("optuna").setLevel(logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(
        lambda trial: table.lookup({label: trial.suggest_categorical(label, OPS) for label in LABELS}),
        n_trials=queries,
    )
    return [t.value for t in study.trials]


def summarise(curves: dict[str, list[list[float]]], times: dict[str, list[float]], optimum: float, queries: int) -> dict:
    out = {}
    for name, cs in curves.items():
        arr = np.asarray(cs)
        row: dict[str, object] = {}
        for m in MILESTONES:
            if m <= queries:
                vals = arr[:, m - 1]
                row[f"at_{m}"] = [float(vals.mean()), float(vals.std())]
        hit = [int(np.argmax(c >= optimum - 1e-9)) + 1 if c[-1] >= optimum - 1e-9 else None for c in arr]
        reached = sorted(h if h is not None else np.inf for h in hit)
        med = float(np.median(reached))
        row["median_queries_to_optimum"] = None if not np.isfinite(med) else med
        row["reached_optimum"] = sum(h is not None for h in hit)
        row["ms_per_query"] = 1000 * float(np.mean(times[name]))
        row["mean_curve"] = arr.mean(axis=0).tolist()
        out[name] = row
    return out


def format_table(summary: dict, table: NasBench201Table, queries: int, n_seeds: int) -> str:
    ms = [m for m in MILESTONES if m <= queries]
    head = "| strategy | " + " | ".join(f"@{m}" for m in ms) + " | median queries to optimum | ms/query |"
    lines = [head, "|" + "---|" * (len(ms) + 3)]
    for name, row in summary.items():
        cells = [f"{row[f'at_{m}'][0]:.2f} ± {row[f'at_{m}'][1]:.2f}" for m in ms]
        med = row["median_queries_to_optimum"]
        med_s = f"{med:.0f}" if med is not None else f">{queries}"
        med_s += f" ({row['reached_optimum']}/{n_seeds} reach it)"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {med_s} | {row['ms_per_query']:.1f} |")
    expected = [f"{table.expected_best_of_random(m):.2f}" for m in ms]
    lines.append("| *Random, analytic E[best of N uniform draws]* | " + " | ".join(expected) + " | | |")
    return "\n".join(lines)


def plot(summary: dict, table: NasBench201Table, queries: int, path: str, dataset: str, n_seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    x = np.arange(1, queries + 1)
    for name, row in summary.items():
        ax.plot(x, row["mean_curve"], label=name, lw=1.4, ls="--" if name == OPTUNA else "-")
    ax.plot(x, [table.expected_best_of_random(int(n)) for n in x], color="k", lw=0.8, ls=":", label="Random (analytic)")
    ax.axhline(table.optimum(), color="grey", lw=0.6)
    lo = table.expected_best_of_random(10) - 0.5
    ax.set_ylim(lo, table.optimum() + 0.1)
    ax.set_xscale("log")
    ax.set_xlabel("queries")
    ax.set_ylabel(f"best test accuracy so far (%), mean of {n_seeds} seeds")
    ax.set_title(f"NAS-Bench-201 {dataset}")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100", "imagenet16_120"])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--table", default=None, help="path of the CSV (default: ../shared/data/...)")
    p.add_argument("--strategies", default=None, help="comma-separated subset of: " + ", ".join([*STRATEGIES, OPTUNA]))
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--json", dest="json_out", default=None)
    p.add_argument("--plot", default=None)
    args = p.parse_args(argv)
    names = [*STRATEGIES, OPTUNA] if args.strategies is None else [s.strip() for s in args.strategies.split(",")]
    unknown = [n for n in names if n != OPTUNA and n not in STRATEGIES]
    if unknown:
        p.error(f"unknown strategies {unknown}; valid: {[*STRATEGIES, OPTUNA]}")
    table = NasBench201Table(args.table, args.dataset)
    jobs = [(n, s, args.queries) for n in names for s in range(args.seeds)]
    curves: dict[str, list[list[float]]] = {n: [None] * args.seeds for n in names}  # type: ignore[list-item]
    times: dict[str, list[float]] = {n: [] for n in names}
    t0 = time.time()
    with get_context("fork" if sys.platform != "win32" else "spawn").Pool(
        args.workers, initializer=_init, initargs=(args.table, args.dataset)
    ) as pool:
        for name, seed, curve, per_query in pool.imap_unordered(_run_one, jobs, chunksize=1):
            curves[name][seed] = curve
            times[name].append(per_query)
    summary = summarise(curves, times, table.optimum(), args.queries)
    print(f"NAS-Bench-201 {args.dataset}: {args.seeds} seeds, {args.queries} queries, "
          f"optimum {table.optimum():.2f}, {time.time() - t0:.0f} s total")
    print(format_table(summary, table, args.queries, args.seeds))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"dataset": args.dataset, "seeds": args.seeds, "queries": args.queries,
                       "optimum": table.optimum(), "strategies": summary}, f, indent=1)
    if args.plot:
        plot(summary, table, args.queries, args.plot, args.dataset, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
