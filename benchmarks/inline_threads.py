"""Time one training trial in the inline executor under different torch thread counts.

Each round trains the same small CNN on 8x8 digits for a fixed number of steps through
``InlineExecutor(threads=...)`` for every setting (interleaved, so a change in the machine's load
hits all settings alike), optionally while ``--busy`` other processes keep cores busy, and prints
the median seconds per setting. ``torch default`` is what torch picks on its own (every core).

    .venv/bin/python benchmarks/inline_threads.py --rounds 5 --busy 1
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

import torch


def _spin(stop) -> None:  # noqa: ANN001 - a busy neighbour: a tight matmul loop
    a = torch.randn(256, 256)
    torch.set_num_threads(1)
    while not stop.is_set():
        a = (a @ a).tanh()


def _trial(args, channel) -> float:  # noqa: ANN001
    steps, seed = args
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3, padding=1),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10))
    opt = torch.optim.AdamW(net.parameters(), 1e-3)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(y), (128,))
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    from nasforge.execution import InlineExecutor
    from nasforge.execution.inline import default_inline_threads

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--busy", type=int, default=1, help="busy neighbour processes (default: 1)")
    args = parser.parse_args()
    settings = {"1 thread": 1, f"auto ({default_inline_threads()})": "auto", f"torch default ({torch.get_num_threads()})": None}
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    times: dict[str, list[float]] = {k: [] for k in settings}
    try:
        for r in range(args.rounds):
            for name, threads in settings.items():
                ex = InlineExecutor(threads=threads)
                ex.register("t", _trial)
                ex.submit(0, "t", (args.steps, r))
                (c,) = ex.poll(None, lambda *a: False)
                times[name].append(c.value)
    finally:
        stop.set()
        for p in spinners:
            p.join(5)
    print(f"{args.steps} training steps, {args.rounds} rounds, {args.busy} busy neighbour process(es)")
    print(f"{'threads':<22} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, ts in times.items():
        print(f"{name:<22} {statistics.median(ts):9.2f} {min(ts):7.2f} {max(ts):7.2f}")


if __name__ == "__main__":
    main()
