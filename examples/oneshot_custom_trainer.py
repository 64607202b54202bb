"""A one-shot trainer of your own, on nasforge's scaffold: subclass ``OneShotTrainer``, write an
epoch and an export. It passes the shipped conformance suite (``nasforge.oneshot.testing``).

``RoundRobinTrainer`` trains single paths in which every candidate of a choice is trained equally
often (the strict-fairness schedule of FairNAS, Chu et al. 2021, here one weight step per path),
and exports per label the candidate whose paths had the lowest mean validation loss.

    .venv/bin/python examples/oneshot_custom_trainer.py

The demo runs 3 epochs on scikit-learn's digits with the conformance suite's tiny space (8
channels): it shows the mechanics (equal path counts, a valid export), not a good architecture;
the tiny space barely learns in that budget (training loss 2.32 -> 2.30).
"""

from __future__ import annotations

import torch

from nasforge.oneshot import OneShotTrainer


class RoundRobinTrainer(OneShotTrainer):
    style = "sampled"  # run only the chosen candidate of each choice (a key of nasforge.oneshot.supernet.STYLES)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)  # converts the model into a supernet, splits the data, seeds self.generator
        self.path_counts = {label: [0] * slot.n for label, slot in self.supernet.slots.items()}
        self.val_loss = {label: [0.0] * slot.n for label, slot in self.supernet.slots.items()}
        self._queues: dict[str, list[int]] = {}

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        meter, total = self._meter(), self._steps_per_epoch()
        for step, ((x, y), (vx, vy)) in enumerate(zip(self._batches("train"), self._batches("val")), 1):
            for label, slot in self.supernet.slots.items():  # the next candidate of a shuffled round per label
                queue = self._queues.get(label) or torch.randperm(slot.n, generator=self.generator).tolist()
                slot.index, slot.gate, slot.paths = queue.pop(), None, None
                self._queues[label] = queue
                self.path_counts[label][slot.index] += 1
            self._weight_step(x, y, meter, (epoch, step, total))  # optimizer step, clipping, metrics, logging
            self.model.eval()
            with torch.no_grad():
                val = float(self.loss(self.model(vx), vy))
            self.model.train()
            for label, slot in self.supernet.slots.items():
                self.val_loss[label][slot.index] += val
        return meter.result()

    def _export(self):
        def mean_loss(label: str, k: int) -> float:
            return self.val_loss[label][k] / max(self.path_counts[label][k], 1)

        return {label: slot.key(min(range(slot.n), key=lambda k: mean_loss(label, k))) for label, slot in self.supernet.slots.items()}


if __name__ == "__main__":
    from sklearn.datasets import load_digits

    from nasforge.oneshot.testing import ContractSpace

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1).repeat(1, 3, 1, 1) / 16.0
    data = torch.utils.data.TensorDataset(x, torch.tensor(digits.target))
    model = ContractSpace(classes=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    trainer = RoundRobinTrainer(model, torch.nn.CrossEntropyLoss(), None, optimizer, 3, data, batch_size=64, seed=0)
    arch = trainer.fit().export()
    print("training loss per epoch:", [round(h["loss"], 3) for h in trainer.history])
    print("paths per candidate:", trainer.path_counts)
    print("export:", arch, "->", type(model.freeze(arch)).__name__)
