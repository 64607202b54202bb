"""Parameter counts and multiply-adds of the published archs in ``nasforge.hub.archs``, next to
the papers' numbers (a markdown table; docs/hub.md holds its output).

    PYTHONPATH=src .venv/bin/python benchmarks/hub_counts.py
"""

from __future__ import annotations

import time

import torch

from nasforge.hub import archs
from nasforge.profile import count_flops, count_params

# name -> (published parameters in millions, published multiply-adds in millions or None, input)
PUBLISHED = {
    "DARTS_V1": (3.3, None, (1, 3, 32, 32)),
    "DARTS_V2": (3.3, None, (1, 3, 32, 32)),
    "NASNET_A": (3.3, None, (1, 3, 32, 32)),
    "AMOEBANET_A": (3.2, None, (1, 3, 32, 32)),
    "PNASNET_5": (3.2, None, (1, 3, 32, 32)),
    "ENAS": (4.6, None, (1, 3, 32, 32)),
    "MOBILENET_V3_LARGE": (5.4, 219, (1, 3, 224, 224)),
    "MOBILENET_V3_SMALL": (2.5, 56, (1, 3, 224, 224)),
    "MOBILENET_V2": (3.5, 300, (1, 3, 224, 224)),
    "DARTS_V1_RNN": (23, None, (1, 35)),
    "DARTS_V2_RNN": (23, None, (1, 35)),
}


def main() -> None:
    torch.set_num_threads(1)
    print("| arch | space | setting | params (M) | published (M) | diff | mult-adds (M) | published (M) | build s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, published in archs.ALL.items():
        p_params, p_macs, shape = PUBLISHED[name]
        t = time.perf_counter()
        net = published.build()
        built = time.perf_counter() - t
        n = count_params(net) / 1e6
        x = torch.randint(0, 10000, shape) if published.space.__name__ == "RnnCellSpace" else shape
        macs = count_flops(net, x) / 2e6
        setting = ", ".join(f"{k}={v}" for k, v in published.setting.items() if k in ("C", "layers", "width_mult", "hidden_size"))
        print(f"| {name} | {published.space.__name__} | {setting} | {n:.3f} | {p_params} | {100 * (n / p_params - 1):+.1f}% "
              f"| {macs:.1f} | {p_macs if p_macs is not None else '—'} | {built:.2f} |")


if __name__ == "__main__":
    main()
