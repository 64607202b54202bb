"""What every one-shot trainer shares: conversion, data split, batching, devices, logging."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch

from nasforge.oneshot.supernet import Supernet
from nasforge.space import Arch

__all__ = ["OneShotTrainer", "accuracy_metrics", "resolve_device"]

Batch = tuple[torch.Tensor, torch.Tensor]


def accuracy_metrics(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """The default ``metrics``: ``{"acc": top-1 accuracy}``."""
    return {"acc": float((output.argmax(1) == target).float().mean())}


def resolve_device(device: Any) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class _TensorBatches:
    """Batches of a dataset whose items are slices of two tensors (the fast path: no collation)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def batches(self, batch_size: int, generator: torch.Generator, device: torch.device) -> Iterator[Batch]:
        n = len(self.x)
        perm = torch.randperm(n, generator=generator)
        x, y = self.x, self.y
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            yield x[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True)


class _LoaderBatches:
    """Batches of a map-style dataset subset through a ``DataLoader``."""

    def __init__(self, dataset: Any, indices: list[int], workers: int):
        self.dataset, self.indices, self.workers = dataset, indices, workers

    def __len__(self) -> int:
        return len(self.indices)

    def batches(self, batch_size: int, generator: torch.Generator, device: torch.device) -> Iterator[Batch]:
        sampler = torch.utils.data.SubsetRandomSampler(self.indices, generator=generator)
        loader = torch.utils.data.DataLoader(self.dataset, batch_size=batch_size, sampler=sampler, num_workers=self.workers)
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def _split(dataset: Any, generator: torch.Generator, workers: int, fraction: float = 0.5):
    n = len(dataset)
    if n < 2:
        raise ValueError(f"the dataset must have at least 2 samples to split into train and validation halves, got {n}")
    perm = torch.randperm(n, generator=generator)
    cut = int(math.floor(n * fraction))
    cut = min(max(cut, 1), n - 1)
    train_idx, val_idx = perm[:cut], perm[cut:]
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, (tuple, list)) and len(tensors) == 2 and all(isinstance(t, torch.Tensor) for t in tensors):
        x, y = tensors
        return _TensorBatches(x[train_idx], y[train_idx]), _TensorBatches(x[val_idx], y[val_idx])
    return _LoaderBatches(dataset, train_idx.tolist(), workers), _LoaderBatches(dataset, val_idx.tolist(), workers)


class OneShotTrainer:
    """Base class of the one-shot trainers (see :class:`~nasforge.oneshot.DartsTrainer` for the arguments).

    Converts ``model`` in place into a supernet of the given ``style`` (see
    :class:`~nasforge.oneshot.supernet.Supernet`), splits ``dataset`` into a training half (weights)
    and a validation half (architecture), and restores the original choice modules when
    :meth:`fit` returns so ``model.freeze(trainer.export())`` works on the same object.

    ``history`` holds one dict of averaged metrics per epoch. ``lr_scheduler`` (optional, any
    ``torch.optim.lr_scheduler`` over the weight optimizer) is stepped once after every epoch, e.g.
    ``CosineAnnealingLR(optimizer, num_epochs)`` as in the DARTS / GDAS papers.
    """

    style = "sampled"
    logger_name = "nasforge.oneshot"

    def __init__(
        self,
        model: torch.nn.Module,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
        metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None,
        optimizer: torch.optim.Optimizer | None,
        num_epochs: int,
        dataset: Any,
        batch_size: int = 64,
        workers: int = 0,
        device: str | torch.device | None = None,
        log_frequency: int | None = None,
        grad_clip: float | None = 5.0,
        seed: int | None = None,
        lr_scheduler: Any = None,
    ):
        if not isinstance(num_epochs, int) or isinstance(num_epochs, bool) or num_epochs < 0:
            raise ValueError(f"num_epochs must be an int >= 0, got {num_epochs!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if dataset is None or not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"dataset must be a map-style torch Dataset (with __len__ and __getitem__), got {type(dataset).__name__}")
        self.logger = logging.getLogger(self.logger_name)
        self.model = model
        self.loss = loss if loss is not None else torch.nn.CrossEntropyLoss()
        self.metrics = metrics if metrics is not None else accuracy_metrics
        self.num_epochs = num_epochs
        self.batch_size = batch_size
        self.workers = workers
        self.device = resolve_device(device)
        self.log_frequency = log_frequency
        self.grad_clip = grad_clip
        self.seed = seed
        self.generator = torch.Generator()
        self.generator.manual_seed(seed if seed is not None else int(torch.randint(0, 2**31 - 1, ()).item()))
        self.model.to(self.device)
        self.supernet = Supernet(model, self.style)
        self.optimizer = optimizer if optimizer is not None else torch.optim.SGD(
            [p for p in model.parameters() if p.requires_grad], lr=0.025, momentum=0.9, weight_decay=3e-4
        )
        self.train_data, self.val_data = _split(dataset, self.generator, workers)
        self.history: list[dict[str, float]] = []
        self.epoch = 0
        self.lr_scheduler = lr_scheduler

    # -- helpers -------------------------------------------------------------------------------
    def _exclude_from_weight_optimizer(self, params: list[torch.nn.Parameter]) -> None:
        """Architecture parameters never belong to the weight optimizer (removed if a user put them there)."""
        ids = {id(p) for p in params}
        for group in self.optimizer.param_groups:
            if any(id(p) in ids for p in group["params"]):
                group["params"] = [p for p in group["params"] if id(p) not in ids]
        covered = {id(p) for g in self.optimizer.param_groups for p in g["params"]}
        missing = [n for n, p in self.model.named_parameters() if p.requires_grad and id(p) not in covered]
        if missing:
            self.logger.warning(
                "%d trainable parameter(s) of the model are not in the weight optimizer (e.g. %s); they will not be trained",
                len(missing), missing[0],
            )

    def _weight_params(self) -> list[torch.nn.Parameter]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _batches(self, which: str) -> Iterator[Batch]:
        data = self.train_data if which == "train" else self.val_data
        return data.batches(self.batch_size, self.generator, self.device)

    def _steps_per_epoch(self) -> int:
        return math.ceil(min(len(self.train_data), len(self.val_data)) / self.batch_size)

    def _log_step(self, epoch: int, step: int, total: int, values: dict[str, float]) -> None:
        if self.log_frequency and (step % self.log_frequency == 0 or step == total):
            text = "  ".join(f"{k} {v:.4f}" for k, v in values.items())
            self.logger.info("epoch [%d/%d] step [%d/%d]  %s", epoch + 1, self.num_epochs, step, total, text)

    # -- the public API --------------------------------------------------------------------------
    def fit(self) -> OneShotTrainer:
        """Train the supernet (and the architecture) for ``num_epochs``; returns ``self``."""
        self.supernet.install()
        self.model.train()
        try:
            self._before_fit()
            while self.epoch < self.num_epochs:
                record = self._train_epoch(self.epoch)
                record["epoch"] = self.epoch + 1
                self.history.append(record)
                self.logger.info("epoch %d/%d done: %s", self.epoch + 1, self.num_epochs,
                                 ", ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch"))
                self.epoch += 1
                if self.lr_scheduler is not None:
                    self.lr_scheduler.step()
                if self._should_stop():
                    self.logger.info("stopping early after epoch %d", self.epoch)
                    break
            self._after_fit()
        finally:
            self.supernet.restore()
        return self

    def _before_fit(self) -> None:
        pass

    def _after_fit(self) -> None:
        pass

    def _should_stop(self) -> bool:
        return False

    def _train_epoch(self, epoch: int) -> dict[str, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def export(self) -> Arch:  # pragma: no cover - abstract
        """The chosen architecture: a dict valid for ``model.space`` (freeze it with ``model.freeze``)."""
        raise NotImplementedError

    def arch_parameters(self) -> dict[str, torch.Tensor]:
        """Label -> the current architecture logits α (detached copies)."""
        return self.supernet.alphas()

    def arch_probabilities(self) -> dict[str, list[float]]:
        """Label -> softmax(α): how much each candidate currently weighs."""
        return self.supernet.probabilities()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_epochs={self.num_epochs}, device={str(self.device)!r}, labels={len(self.supernet.slots)})"


def clip(params: list[torch.nn.Parameter], grad_clip: float | None) -> None:
    if grad_clip is not None and grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
