"""Sample + freeze time of the seed model space against constructing the same network by hand.

Usage: python benchmarks/space_overhead.py [--repeats 3000]

Both run in the same process, interleaved, on one thread; medians are printed as a table.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn as tnn

import nasforge
from nasforge.benchmarks.seed_model import Net


class HandWritten(tnn.Module):
    """The seed model's network for one fixed arch, written in plain PyTorch."""

    def __init__(self, k1: int, k2: int):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 6, k1, padding=k1 // 2)
        self.pool = tnn.MaxPool2d(2, 2)
        self.conv2 = tnn.Conv2d(6, 16, k2, padding=k2 // 2)
        self.conv3 = tnn.Conv2d(16, 16, 1)
        self.bn = tnn.BatchNorm2d(16)
        self.gap = tnn.AdaptiveAvgPool2d(4)
        self.fc1 = tnn.Linear(16 * 4 * 4, 120)
        self.fc2 = tnn.Linear(120, 84)
        self.fc3 = tnn.Linear(84, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    space_model = Net()
    space = space_model.space
    rng = np.random.default_rng(0)
    timings: dict[str, list[float]] = {k: [] for k in ("plain", "freeze", "freeze_reinit", "fixed_arch")}
    for _ in range(args.repeats):
        arch = space.sample(rng)
        k1, k2 = (3, 5)[arch["conv1"]], (3, 5)[arch["conv2"]]
        t0 = time.perf_counter()
        HandWritten(k1, k2)
        t1 = time.perf_counter()
        space_model.freeze(space.sample(rng))
        t2 = time.perf_counter()
        space_model.freeze(space.sample(rng), reinit=True)
        t3 = time.perf_counter()
        with nasforge.fixed_arch(space.sample(rng)):
            Net()
        t4 = time.perf_counter()
        timings["plain"].append(t1 - t0)
        timings["freeze"].append(t2 - t1)
        timings["freeze_reinit"].append(t3 - t2)
        timings["fixed_arch"].append(t4 - t3)
    plain = statistics.median(timings["plain"])
    print(f"seed model, {args.repeats} interleaved repeats, torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, 1 thread")
    print(f"| {'what':<44} | {'median ms':>9} | {'ratio':>5} |")
    print(f"|{'-' * 46}|{'-' * 11}|{'-' * 7}|")
    rows = [
        ("plain PyTorch construction (reference)", "plain"),
        ("sample + freeze(arch)  (copies weights)", "freeze"),
        ("sample + freeze(arch, reinit=True)", "freeze_reinit"),
        ("sample + construct under fixed_arch(arch)", "fixed_arch"),
    ]
    for label, key in rows:
        med = statistics.median(timings[key])
        print(f"| {label:<44} | {med * 1e3:>9.3f} | {med / plain:>5.2f} |")


if __name__ == "__main__":
    main()
