"""The acceptance path: NNI's doc model + DartsTrainer on a real image set, on CPU.

scikit-learn's digits (1,797 real 8×8 scans) are resized to 32×32 and repeated to 3 channels
so the seed model (3×32×32 input, 10 classes) takes them unchanged. DARTS searches on the
first 1,200 images (split by the trainer into weight / architecture halves); the exported arch
is frozen with fresh weights, retrained on the same 1,200 images and tested on the 597 it
never saw.

    .venv/bin/python examples/darts_seed_model.py --epochs 5 --retrain-epochs 15
"""

from __future__ import annotations

import argparse
import logging
import time

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from nasforge.benchmarks.seed_model import Net  # the model of NNI's documentation
from nasforge.oneshot import DartsTrainer


def digits32() -> tuple[torch.Tensor, torch.Tensor]:
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    x = ((x - 0.3) / 0.4).repeat(1, 3, 1, 1).contiguous()
    return x, torch.tensor(d.target, dtype=torch.long)


def accuracy(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    return {"acc": float((output.argmax(1) == target).float().mean())}


def retrain(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), 64):
            idx = perm[s:s + 64]
            opt.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
        sched.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--retrain-epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x, y = digits32()
    x_search, y_search, x_test, y_test = x[:1200], y[:1200], x[1200:], y[1200:]

    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    trainer = DartsTrainer(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        metrics=accuracy,
        optimizer=optimizer,
        num_epochs=args.epochs,
        dataset=torch.utils.data.TensorDataset(x_search, y_search),
        batch_size=64,
        log_frequency=5,
        arc_learning_rate=3e-3,
        seed=args.seed,
    )
    start = time.perf_counter()
    trainer.fit()
    search_s = time.perf_counter() - start
    arch = trainer.export()
    print(f"search: {args.epochs} DARTS epochs in {search_s:.1f} s")
    print("softmax(alpha):", {k: [round(p, 3) for p in v] for k, v in trainer.arch_probabilities().items()})
    print("exported arch:", arch)

    net = model.freeze(arch, reinit=True)  # the plain network, fresh weights
    start = time.perf_counter()
    retrain(net, x_search, y_search, args.retrain_epochs, args.seed)
    net.eval()
    with torch.no_grad():
        acc = float((net(x_test).argmax(1) == y_test).float().mean())
    print(f"retrained from scratch for {args.retrain_epochs} epochs in {time.perf_counter() - start:.1f} s")
    print(f"test accuracy on {len(y_test)} held-out digits: {acc:.4f}")


if __name__ == "__main__":
    main()
