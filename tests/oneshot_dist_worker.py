"""Worker processes of the data-parallel (gloo) one-shot tests; see tests/test_oneshot_distributed.py."""

from __future__ import annotations

import os
import socket

import torch
import torch.nn.functional as F

import nasforge.nn as nn
from nasforge.benchmarks.seed_model import Net

TRAINERS = ["darts", "gdas", "drnas", "enas", "proxyless", "spos"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Small(nn.Module):
    """A few choices of each kind the sampled and mixed supernets handle; no batch norm."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 1)
        self.a = nn.LayerChoice({"conv3": nn.Conv2d(8, 8, 3, padding=1), "conv5": nn.Conv2d(8, 8, 5, padding=2),
                                 "pool": nn.AvgPool2d(3, 1, 1)}, label="a")
        self.b = nn.LayerChoice([nn.Conv2d(8, 8, 3, padding=1), nn.Identity()], label="b")
        self.skip = nn.InputChoice(n_candidates=2, label="skip")
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        a = self.a(F.relu(self.stem(x)))
        b = F.relu(self.b(a))
        h = self.skip([b, b + a])
        return self.fc(h.mean((2, 3)))


def tiny_data(n: int = 64, size: int = 8, seed: int = 0) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = torch.randn(n, 3, size, size, generator=g) + y.view(-1, 1, 1, 1) * 0.3
    return torch.utils.data.TensorDataset(x, y)


def digits(n: int, size: int = 32) -> torch.utils.data.TensorDataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images[:n], dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = ((x - 0.3) / 0.4).repeat(1, 3, 1, 1).contiguous()
    return torch.utils.data.TensorDataset(x, torch.tensor(d.target[:n], dtype=torch.long))


def make_trainer(name: str, model: torch.nn.Module, data, batch_size: int, epochs: int = 2, **kw):
    from nasforge.oneshot import (
        DartsTrainer,
        DrNasTrainer,
        EnasTrainer,
        GumbelDartsTrainer,
        ProxylessTrainer,
        RandomOneShotTrainer,
    )

    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss = torch.nn.CrossEntropyLoss()
    common = dict(batch_size=batch_size, seed=0, threads=1, **kw)
    if name == "darts":
        return DartsTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=0.05, **common)
    if name == "gdas":
        return GumbelDartsTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=0.05, **common)
    if name == "drnas":
        return DrNasTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=0.05, progressive=True, **common)
    if name == "enas":
        return EnasTrainer(model, loss, None, None, opt, epochs, data, ctrl_steps_aggregate=2, **common)
    if name == "proxyless":
        return ProxylessTrainer(model, loss, None, opt, epochs, data, arc_learning_rate=0.05, **common)
    if name == "spos":
        return RandomOneShotTrainer(model, loss, None, opt, epochs, data, search_samples=6, population_size=4,
                                    top_k=2, **common)
    raise ValueError(name)


def seed_model_run(batch_size: int, n: int = 384, epochs: int = 3, size: int = 32, **kw):
    """DARTS on the seed model (NNI's doc model) over the first ``n`` digits (``size``², 3 channels); returns (arch, α)."""
    from nasforge.oneshot import DartsTrainer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = DartsTrainer(model, torch.nn.CrossEntropyLoss(), None, opt, epochs, digits(n, size), batch_size=batch_size,
                           seed=0, threads=1, **{"arc_learning_rate": 0.05, **kw})
    trainer.fit()
    return trainer.export(), {k: v.tolist() for k, v in trainer.arch_parameters().items()}


EXACT = ["darts", "drnas", "gdas", "proxyless"]
SEED_MODEL = {"n": 256, "epochs": 4, "arc_learning_rate": 0.15, "size": 16}


def small_model(seed: int = 1) -> Small:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Small()


def half_batch_run(name: str, batch_size: int):
    """A trainer on the batch-norm-free model over 128 samples, 3 epochs; returns (arch, α)."""
    model = small_model()
    trainer = make_trainer(name, model, tiny_data(n=128), batch_size=batch_size, epochs=3)
    trainer.fit()
    return trainer.export(), {k: v.tolist() for k, v in trainer.arch_parameters().items()}


def worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    os.environ["LOCAL_WORLD_SIZE"] = str(world)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        results = {}
        for name in TRAINERS:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(1 + rank)  # different initial weights per rank: DDP must broadcast rank 0's
                model = Small()
            trainer = make_trainer(name, model, tiny_data(), batch_size=8)
            assert trainer.dist.enabled and trainer.dist.world_size == world
            trainer.fit()
            results[name] = {
                "arch": trainer.export(),
                "alpha": {k: v.tolist() for k, v in trainer.arch_parameters().items()},
                "controller": [p.detach().clone() for p in trainer.controller.parameters()] if name == "enas" else None,
                "weights": {k: v.detach().clone() for k, v in model.state_dict().items()},
                "history": trainer.history,
                "threads_during_fit": trainer.threads,
            }
        # half the data per rank (per-rank batch = half the 1-rank batch): the same global batches
        results["half"] = {name: half_batch_run(name, batch_size=8) for name in EXACT}
        results["seed_model"] = seed_model_run(batch_size=16, **SEED_MODEL)
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
