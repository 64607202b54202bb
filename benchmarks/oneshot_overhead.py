"""Overhead of ``DartsTrainer`` against a minimal hand-written DARTS loop for the same network.

The network is the seed model (``nasforge.benchmarks.seed_model``: NNI's doc model, two conv LayerChoices
and an InputChoice, 3×32×32 input, 10 classes). The hand-written version defines the same
mixed network with its own α tensors and runs the same first-order DARTS step (an α step with
Adam(3e-4, betas (0.5, 0.999), wd 1e-3) on a validation batch, then an SGD weight step with
gradient-norm clipping on a training batch), on the same data (scikit-learn digits, resized to
32×32 and repeated to 3 channels, split into halves, shuffled tensor batches of 64), with the
same thread count. Epochs of the two are interleaved, and the ratio of median epoch times is
reported. Then the end-to-end time of a fresh process running one epoch (imports, data,
model, one epoch) is compared the same way.

    .venv/bin/python benchmarks/oneshot_overhead.py                # 7 interleaved epochs, 3 processes each
    .venv/bin/python benchmarks/oneshot_overhead.py --rounds 11 --procs 5
    .venv/bin/python benchmarks/oneshot_overhead.py --only-gloo       # 2 gloo ranks on half the data vs 1 rank

The data-parallel measurement runs the seed model's DARTS search in fresh processes: 1 rank on
all the data (batch 64) against 2 gloo ranks (``torch.distributed``, one process each) on half
the data each (batch 32 per rank, the same global batches), 1 thread per rank; the epoch times
(from the trainer's per-epoch log, rank 0) after the first epoch are compared (ideal ratio 0.5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMON = r'''
import time, sys
T0 = time.perf_counter()
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
torch.set_num_threads({threads})

def digits(n):
    d = load_digits()
    x = torch.tensor(d.images[:n], dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1).contiguous()
    return x, torch.tensor(d.target[:n], dtype=torch.long)
'''

HAND = r'''
class HandNet(torch.nn.Module):
    """The seed model's DARTS supernet, written by hand."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.ModuleList([torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.Conv2d(3, 6, 5, padding=2)])
        self.pool = torch.nn.MaxPool2d(2, 2)
        self.conv2 = torch.nn.ModuleList([torch.nn.Conv2d(6, 16, 3, padding=1), torch.nn.Conv2d(6, 16, 5, padding=2)])
        self.conv3 = torch.nn.Conv2d(16, 16, 1)
        self.bn = torch.nn.BatchNorm2d(16)
        self.gap = torch.nn.AdaptiveAvgPool2d(4)
        self.fc1 = torch.nn.Linear(256, 120)
        self.fc2 = torch.nn.Linear(120, 84)
        self.fc3 = torch.nn.Linear(84, 10)
        self.alphas = [torch.nn.Parameter(torch.randn(2) * 1e-3) for _ in range(3)]

    def forward(self, x):
        bs = x.size(0)
        w1, w2, w3 = (F.softmax(a, -1) for a in self.alphas)
        x = w1[0] * self.conv1[0](x) + w1[1] * self.conv1[1](x)
        x = self.pool(F.relu(x))
        x0 = F.relu(w2[0] * self.conv2[0](x) + w2[1] * self.conv2[1](x))
        x1 = F.relu(self.conv3(x0))
        x1 = w3[0] * x1 + w3[1] * (x1 + x0)
        x = self.pool(self.bn(x1))
        x = self.gap(x).view(bs, -1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class HandLoop:
    def __init__(self, x, y, batch_size=64, seed=0):
        torch.manual_seed(seed)
        self.model = HandNet()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
        self.arch_opt = torch.optim.Adam(self.model.alphas, 3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        self.loss = torch.nn.CrossEntropyLoss()
        self.gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(x), generator=self.gen)
        half = len(x) // 2
        self.train = (x[perm[:half]], y[perm[:half]])
        self.val = (x[perm[half:]], y[perm[half:]])
        self.batch_size = batch_size

    def batches(self, data):
        x, y = data
        perm = torch.randperm(len(x), generator=self.gen)
        for s in range(0, len(x), self.batch_size):
            idx = perm[s:s + self.batch_size]
            yield x[idx], y[idx]

    def epoch(self):
        model, params = self.model, list(self.model.parameters())
        model.train()
        for (tx, ty), (vx, vy) in zip(self.batches(self.train), self.batches(self.val)):
            grads = torch.autograd.grad(self.loss(model(vx), vy), model.alphas)
            for a, g in zip(model.alphas, grads):
                a.grad = g
            self.arch_opt.step()
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss(model(tx), ty)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            self.opt.step()
'''

OURS = r'''
def make_ours(x, y, batch_size=64, seed=0):
    from nasforge.benchmarks.seed_model import Net
    from nasforge.oneshot import DartsTrainer
    torch.manual_seed(seed)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    return DartsTrainer(model, torch.nn.CrossEntropyLoss(), None, opt, 0, torch.utils.data.TensorDataset(x, y),
                        batch_size=batch_size, arc_learning_rate=3e-4, seed=seed, threads=0)
'''

SCRIPT_OURS = COMMON + r'''
from nasforge.oneshot import DartsTrainer
from nasforge.benchmarks.seed_model import Net
x, y = digits({n})
torch.manual_seed(0)
model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
DartsTrainer(model, torch.nn.CrossEntropyLoss(), None, opt, 1, torch.utils.data.TensorDataset(x, y), batch_size=64, seed=0,
             threads=0).fit()
print(time.perf_counter() - T0)
'''

SCRIPT_HAND = COMMON + HAND + r'''
x, y = digits({n})
HandLoop(x, y).epoch()
print(time.perf_counter() - T0)
'''


SCRIPT_GLOO = COMMON + r'''
import logging, os, statistics, socket
import torch.distributed as dist
from nasforge.benchmarks.seed_model import Net
from nasforge.oneshot import DartsTrainer

class Stamps(logging.Handler):
    def __init__(self):
        super().__init__()
        self.times = []
    def emit(self, record):
        if "done" in record.getMessage():
            self.times.append(time.perf_counter())

def run(rank, world, port, epochs, n, out):
    os.environ["LOCAL_WORLD_SIZE"] = str(world)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{{port}}", rank=rank, world_size=world)
    x, y = digits(n)
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    stamps = Stamps()
    log = logging.getLogger("nasforge.oneshot.darts")
    log.addHandler(stamps)
    log.setLevel(logging.INFO)
    trainer = DartsTrainer(model, torch.nn.CrossEntropyLoss(), None, opt, epochs, torch.utils.data.TensorDataset(x, y),
                           batch_size=64 // world, seed=0, threads={threads})
    start = time.perf_counter()
    trainer.fit()
    if rank == 0:
        t = [start] + stamps.times
        with open(out, "w") as f:
            f.write(" ".join(str(b - a) for a, b in zip(t, t[1:])))
    if world > 1:
        dist.destroy_process_group()

if __name__ == "__main__":
    world, epochs, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    if world == 1:
        run(0, 1, port, epochs, {n}, out)
    else:
        torch.multiprocessing.start_processes(run, args=(world, port, epochs, {n}, out), nprocs=world, start_method="spawn")
'''


def gloo(epochs: int, n: int, threads: int, repeats: int) -> dict[str, list[float]]:
    """Median epoch time (after the first) of 1 rank on all the data and 2 gloo ranks on half each, alternated."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out: dict[str, list[float]] = {"1 rank": [], "2 ranks": []}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "gloo.py")
        script.write_text(SCRIPT_GLOO.format(threads=threads, n=n))
        for r in range(repeats):
            for world in ((1, 2) if r % 2 == 0 else (2, 1)):
                res = Path(tmp, f"w{world}.txt")
                done = subprocess.run([sys.executable, str(script), str(world), str(epochs), str(res)], env=env,
                                      capture_output=True, text=True)
                if done.returncode != 0:  # show why the run failed, not just that it did
                    raise RuntimeError(f"the {world}-rank run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
                times = [float(v) for v in res.read_text().split()]
                out[f"{world} rank" + ("s" if world > 1 else "")].append(statistics.median(times[1:] or times))
    return out


def in_process(rounds: int, n: int, threads: int) -> tuple[list[float], list[float]]:
    ns: dict = {}
    exec(COMMON.format(threads=threads) + HAND + OURS, ns)  # noqa: S102 - our own code
    x, y = ns["digits"](n)
    hand = ns["HandLoop"](x, y)
    trainer = ns["make_ours"](x, y)
    hand.epoch()  # warm-up both (allocator, kernels)
    trainer.num_epochs += 1
    trainer.fit()
    t_ours, t_hand = [], []
    for r in range(rounds):
        order = ("ours", "hand") if r % 2 == 0 else ("hand", "ours")
        for who in order:
            start = time.perf_counter()
            if who == "ours":
                trainer.num_epochs += 1
                trainer.fit()
                t_ours.append(time.perf_counter() - start)
            else:
                hand.epoch()
                t_hand.append(time.perf_counter() - start)
    return t_ours, t_hand


def fresh_processes(procs: int, n: int, threads: int) -> tuple[list[float], list[float]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as tmp:
        ours = Path(tmp, "ours.py")
        hand = Path(tmp, "hand.py")
        ours.write_text(SCRIPT_OURS.format(threads=threads, n=n))
        hand.write_text(SCRIPT_HAND.format(threads=threads, n=n))
        t_ours, t_hand = [], []
        for r in range(procs):
            order = (ours, hand) if r % 2 == 0 else (hand, ours)
            for script in order:
                start = time.perf_counter()
                subprocess.run([sys.executable, str(script)], check=True, env=env, capture_output=True, text=True)
                (t_ours if script == ours else t_hand).append(time.perf_counter() - start)
    return t_ours, t_hand


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved epochs of each")
    parser.add_argument("--procs", type=int, default=3, help="fresh processes of each")
    parser.add_argument("--samples", type=int, default=1024, help="digits used (half train, half val)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gloo-epochs", type=int, default=4, help="epochs per gloo run (the first is not timed)")
    parser.add_argument("--gloo-repeats", type=int, default=3, help="alternated runs of 1 and 2 ranks")
    parser.add_argument("--only-gloo", action="store_true", help="only the data-parallel measurement")
    args = parser.parse_args()
    if not args.only_gloo:
        overhead(args)
    g = gloo(args.gloo_epochs, args.samples, args.threads, args.gloo_repeats)
    one, two = statistics.median(g["1 rank"]), statistics.median(g["2 ranks"])
    print(f"data-parallel DARTS on the seed model (gloo, {args.threads} thread(s) per rank, {args.samples} digits, "
          f"global batch 64), median epoch time over {args.gloo_repeats} runs of {args.gloo_epochs} epochs")
    print(f"  1 rank, all the data        {one * 1000:8.1f} ms/epoch  (runs: {', '.join(f'{v * 1000:.0f}' for v in g['1 rank'])})")
    print(f"  2 ranks, half the data each {two * 1000:8.1f} ms/epoch  (runs: {', '.join(f'{v * 1000:.0f}' for v in g['2 ranks'])})")
    print(f"  ratio 2 ranks / 1 rank      {two / one:.3f}   (ideal 0.5)")


def overhead(args: argparse.Namespace) -> None:
    t_ours, t_hand = in_process(args.rounds, args.samples, args.threads)
    mo, mh = statistics.median(t_ours), statistics.median(t_hand)
    steps = (args.samples // 2 + 63) // 64
    print(f"seed model, DARTS epoch = {steps} steps of batch 64, {args.threads} thread(s), {args.rounds} interleaved rounds")
    print(f"  DartsTrainer     median {mo * 1000:8.1f} ms/epoch  (min {min(t_ours) * 1000:.1f})")
    print(f"  hand-written     median {mh * 1000:8.1f} ms/epoch  (min {min(t_hand) * 1000:.1f})")
    print(f"  ratio (median)   {mo / mh:.3f}   ratio (min) {min(t_ours) / min(t_hand):.3f}")
    p_ours, p_hand = fresh_processes(args.procs, args.samples, args.threads)
    po, ph = statistics.median(p_ours), statistics.median(p_hand)
    print(f"fresh process, import + data + one epoch, {args.procs} interleaved runs each")
    print(f"  nasforge script  median {po:6.2f} s")
    print(f"  hand-written     median {ph:6.2f} s")
    print(f"  ratio            {po / ph:.3f}")


if __name__ == "__main__":
    main()
