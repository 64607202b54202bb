"""What every one-shot trainer shares: conversion, data split, batching, devices, logging."""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypedDict, cast

import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from nasforge.evaluate._data import MapDataset, Tensors, resolve_device
from nasforge.oneshot.parallel import (
    DistContext,
    allreduce_mean_,
    allreduce_sum,
    broadcast_,
    broadcast_object,
    default_threads,
)
from nasforge.oneshot.supernet import Supernet
from nasforge.space import Arch

__all__ = ["OneShotTrainer", "TrainerOptions", "accuracy_metrics", "batchnorm_snapshot", "resolve_device"]

Batch = tuple[torch.Tensor, torch.Tensor]
Split = Tensors | MapDataset  # a half of the dataset: in-memory tensors (the fast path) or a map-style dataset


class TrainerOptions(TypedDict, total=False):
    """The keyword arguments every trainer takes after ``dataset`` (see :class:`OneShotTrainer`)."""

    batch_size: int
    workers: int
    device: str | torch.device | None
    log_frequency: int | None
    grad_clip: float | None
    seed: int | None
    lr_scheduler: Any
    threads: int | None
    distributed: bool | None
    cost_table: Mapping[str, list[float]] | None
    cost_weight: float


def accuracy_metrics(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """The default ``metrics``: ``{"acc": top-1 accuracy}``."""
    return {"acc": float((output.argmax(1) == target).float().mean())}


def _split(dataset: Any, generator: torch.Generator, workers: int, fraction: float = 0.5) -> tuple[Split, Split]:
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
        return Tensors(x[train_idx], y[train_idx]), Tensors(x[val_idx], y[val_idx])
    subset = torch.utils.data.Subset
    return MapDataset(subset(dataset, train_idx.tolist()), workers), MapDataset(subset(dataset, val_idx.tolist()), workers)


def shard_batches(data: Split, batch_size: int, generator: torch.Generator, device: torch.device,
                  rank: int = 0, world_size: int = 1) -> Iterator[Batch]:
    """One epoch of ``data`` (in-memory tensors or a map-style dataset), this rank's shard of one shuffled
    order, on ``device``. The shuffle and a loader's seed are drawn from ``generator`` now (never the global RNG)."""
    # the same order on every rank (the trainer's generator advances identically everywhere); the
    # shard is padded so every rank gets as many items
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    sampler: DistributedSampler[int] = DistributedSampler(
        cast(Any, range(len(data))), world_size, rank, shuffle=True, seed=seed, drop_last=False
    )
    batches = data.ordered_batches(list(sampler), batch_size, generator)
    return ((x.to(device, non_blocking=True), y.to(device, non_blocking=True)) for x, y in batches)


def batchnorms(model: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    """The batch-norm layers of ``model`` that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def _bn_state(bn: torch.nn.modules.batchnorm._BatchNorm) -> list[torch.Tensor]:
    return [t for t in (bn.running_mean, bn.running_var, bn.num_batches_tracked) if t is not None]


@contextmanager
def batchnorm_snapshot(model: torch.nn.Module) -> Iterator[list[torch.nn.modules.batchnorm._BatchNorm]]:
    """Save the running statistics of every batch norm of ``model``; put them back on exit (even on error)."""
    bns = batchnorms(model)
    saved = [[t.clone() for t in _bn_state(bn)] for bn in bns]
    try:
        yield bns
    finally:
        for bn, state in zip(bns, saved):
            for t, v in zip(_bn_state(bn), state):
                t.copy_(v)


class _EpochMeter:
    """Averages the loss and ``metrics(output, target)`` over every weight step of an epoch."""

    def __init__(self, metrics: Callable[[torch.Tensor, torch.Tensor], Mapping[str, float]], device: torch.device):
        self.metrics = metrics
        self.loss_sum = torch.zeros((), device=device)
        self.sums: dict[str, float] = {}
        self.steps = 0

    def add(self, loss: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        self.loss_sum += loss.detach()
        self.steps += 1
        values = self.metrics(output.detach(), target)
        if not isinstance(values, Mapping):
            raise TypeError(f"metrics must return a dict of name -> float, got {type(values).__name__}")
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        return dict(values)

    def result(self) -> dict[str, float]:
        n = max(self.steps, 1)
        return {"loss": float(self.loss_sum) / n, **{k: v / n for k, v in self.sums.items()}}


class OneShotTrainer(ABC):
    """Base class of the one-shot trainers (see :class:`~nasforge.oneshot.DartsTrainer` for the arguments).

    Converts ``model`` in place into a supernet of the given ``style`` (see
    :class:`~nasforge.oneshot.supernet.Supernet`), splits ``dataset`` into a training half (weights)
    and a validation half (architecture), and restores the original choice modules when
    :meth:`fit` returns so ``model.freeze(trainer.export())`` works on the same object.

    Arguments every trainer takes:

    * ``metrics``: ``metrics(output, target) -> {name: float}`` (default: ``{"acc": top-1 accuracy}``),
      computed on every weight step's training batch and averaged over the epoch into
      ``trainer.history`` (one dict per epoch, with ``loss``, ``epoch`` and the epoch's
      ``arch_probabilities`` where the method has a distribution); ``log_frequency``
      only controls how often a step is also logged.
    * ``seed``: seeds the trainer's own ``torch.Generator`` (data split, data order, α
      initialisation, sampled paths, controller initialisation); the global torch RNG is never
      seeded or advanced by a trainer with a seed. Same seed, same initial weights, same machine
      and thread count: same arch.
    * ``lr_scheduler``: any ``torch.optim.lr_scheduler`` over the weight optimizer, stepped once
      after every epoch (e.g. ``CosineAnnealingLR(optimizer, num_epochs)`` as in DARTS / GDAS).
    * ``threads``: torch's intra-op thread count while :meth:`fit` runs (restored afterwards);
      default (None) :func:`~nasforge.oneshot.parallel.default_threads`, the physical cores this
      process may use divided by the ranks on this machine; ``0`` leaves torch's setting alone.
    * ``distributed``: data-parallel training over the default ``torch.distributed`` process group
      (see :mod:`nasforge.oneshot.parallel`); None (default) turns it on when a group with more
      than one rank is initialised. ``batch_size`` is then per rank.
    * ``cost_table`` / ``cost_weight``: a per-candidate cost (label -> one number per candidate:
      FLOPs, parameters or latency, e.g. from :func:`measure_cost_table`) and its weight λ; gradient
      methods add the differentiable expected cost ``λ · E[cost] / ref_cost`` to the architecture loss
      (``ref_cost``: the sum over labels of the mean candidate cost, so λ is scale-free); sampling
      methods subtract ``λ · cost(path) / ref_cost`` from the reward or score of a path.
    """

    #: the supernet modules the trainer trains: a key of :data:`nasforge.oneshot.supernet.STYLES`
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
        *,
        batch_size: int = 64,
        workers: int = 0,
        device: str | torch.device | None = None,
        log_frequency: int | None = None,
        grad_clip: float | None = 5.0,
        seed: int | None = None,
        lr_scheduler: Any = None,
        threads: int | None = None,
        distributed: bool | None = None,
        cost_table: Mapping[str, list[float]] | None = None,
        cost_weight: float = 0.0,
    ):
        if not isinstance(num_epochs, int) or isinstance(num_epochs, bool) or num_epochs < 0:
            raise ValueError(f"num_epochs must be an int >= 0, got {num_epochs!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if dataset is None or not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"dataset must be a map-style torch Dataset (with __len__ and __getitem__), got {type(dataset).__name__}")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 0):
            raise ValueError(f"threads must be None (default), 0 (leave torch's setting) or an int >= 1, got {threads!r}")
        if metrics is not None and not callable(metrics):
            raise TypeError(f"metrics must be a callable (output, target) -> dict of floats, got {type(metrics).__name__}")
        self.logger = logging.getLogger(self.logger_name)
        self.dist = DistContext.detect(distributed)
        self.model = model
        # the plain-data space, read before the choices become supernet modules: exports are canonical
        self._space = getattr(model, "space", None)
        self.loss = loss if loss is not None else torch.nn.CrossEntropyLoss()
        self.metrics = metrics if metrics is not None else accuracy_metrics
        self.num_epochs = num_epochs
        self.batch_size = batch_size
        self.workers = workers
        self.device = resolve_device(device)
        self.log_frequency = log_frequency
        self.grad_clip = grad_clip
        self.threads = default_threads() if threads is None else threads
        self.seed = seed  # None: a seed is drawn from the global RNG (rank 0's on every rank)
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
            if self.dist.enabled:
                seed = int(broadcast_object(seed))
        self.generator = torch.Generator().manual_seed(seed)
        self.model.to(self.device)
        self.supernet = Supernet(model, self.style)
        self.optimizer = optimizer if optimizer is not None else torch.optim.SGD(
            [p for p in model.parameters() if p.requires_grad], lr=0.025, momentum=0.9, weight_decay=3e-4
        )
        self.train_data, self.val_data = _split(dataset, self.generator, workers)
        self.history: list[dict[str, float]] = []
        self.epoch = 0
        self.lr_scheduler = lr_scheduler
        self._ddp: torch.nn.Module | None = None
        self._final_arch: Arch | None = None
        self.cost_weight = float(cost_weight)
        self.cost_table = self._check_cost_table(cost_table, "cost_table")
        self._cost = {k: torch.tensor(v, dtype=torch.float32, device=self.device) for k, v in self.cost_table.items()}
        self.ref_cost = float(sum(t.mean() for t in self._cost.values())) if self._cost else 1.0
        if self.cost_weight and not self._cost:
            raise ValueError("cost_weight > 0 needs a cost_table (label -> one cost per candidate; see measure_cost_table)")

    def _check_cost_table(self, table: Mapping[str, Any] | None, name: str) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for label, values in (table or {}).items():
            slot = self.supernet.slots.get(label)
            if slot is None:
                raise ValueError(f"{name} has label {label!r}, which is not a choice of the space; labels are {list(self.supernet.slots)[:8]}")
            values = [float(v) for v in values]
            if len(values) != slot.n:
                raise ValueError(f"{name}[{label!r}] lists {len(values)} costs; the choice has {slot.n} candidates")
            out[label] = values
        return out

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

    def _batches(self, which: str, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """One epoch of the ``"train"`` or ``"val"`` half (this rank's shard; order from ``generator``, default the trainer's)."""
        data = self.train_data if which == "train" else self.val_data
        return shard_batches(data, self.batch_size, generator or self.generator, self.device, self.dist.rank, self.dist.world_size)

    def _weight_step(self, x: torch.Tensor, y: torch.Tensor, meter: _EpochMeter | None = None,
                     where: tuple[int, int, int] | None = None) -> torch.Tensor:
        """One step of the weight optimizer on a training batch through the supernet's current path / mixture
        (gradient norm clipped to ``grad_clip``); the loss and ``metrics`` go into ``meter``, and the step is
        logged at ``where = (epoch, step, steps in the epoch)`` every ``log_frequency`` steps. Returns the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        out = self.model(x) if self._ddp is None else self._ddp(x)  # DDP when data-parallel
        loss = self.loss(out, y)
        loss.backward()
        clip(self._weight_params(), self.grad_clip)
        self.optimizer.step()
        if meter is not None:
            values = meter.add(loss, out, y)
            if self.log_frequency and where is not None:
                self._log_step(*where, {"loss": float(loss.detach()), **values})
        return loss

    @contextmanager
    def _supernet_installed(self) -> Iterator[list[torch.nn.modules.batchnorm._BatchNorm]]:
        """The supernet swapped in (and swapped back out if it was not) with batch-norm statistics restored on exit."""
        was = self.supernet.installed
        self.supernet.install()
        try:
            with batchnorm_snapshot(self.model) as bns:
                yield bns
        finally:
            if not was:
                self.supernet.restore()

    def _steps_per_epoch(self, n: int | None = None) -> int:
        """Batches in this rank's shard of ``n`` samples (default: the shorter half's)."""
        n = min(len(self.train_data), len(self.val_data)) if n is None else n
        return math.ceil(math.ceil(n / self.dist.world_size) / self.batch_size)

    def _log_step(self, epoch: int, step: int, total: int, values: dict[str, float]) -> None:
        if self.log_frequency and self.dist.is_main and (step % self.log_frequency == 0 or step == total):
            text = "  ".join(f"{k} {v:.4f}" for k, v in values.items())
            self.logger.info("epoch [%d/%d] step [%d/%d]  %s", epoch + 1, self.num_epochs, step, total, text)

    def _meter(self) -> _EpochMeter:
        return _EpochMeter(self.metrics, self.device)

    def _arch_tensors(self) -> list[torch.Tensor]:
        """The architecture parameters (α, concentrations, controller weights): kept identical on every rank."""
        return [s.alpha for s in self.supernet.slots.values() if s.alpha is not None]

    def _arch_update(self, params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None],
                     optimizer: torch.optim.Optimizer) -> None:
        """Set ``grads`` as the gradients of the architecture ``params`` (zeros where None), average them over
        ranks and take a step of ``optimizer``."""
        for p, g in zip(params, grads):
            p.grad = g if g is not None else torch.zeros_like(p)
        self._sync_grads(params)
        optimizer.step()

    def _sync_grads(self, params: Sequence[torch.Tensor]) -> None:
        """Average the gradients of architecture parameters over ranks (no-op in a single process)."""
        if not self.dist.enabled:
            return
        grads = []
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        allreduce_mean_(grads)

    def _sum_over_ranks(self, values: list[float]) -> list[float]:
        return allreduce_sum(values, self.device) if self.dist.enabled else list(values)

    def _eval_sums(self, batches: Iterable[Batch], with_loss: bool = False) -> list[float]:
        """``[correct top-1 predictions, summed loss (if with_loss, else 0), samples]`` of the model
        over ``batches``, without gradients, summed over ranks."""
        correct = loss_sum = total = 0.0
        with torch.no_grad():
            for x, y in batches:
                out = self.model(x)
                correct += int((out.argmax(1) == y).sum())
                if with_loss:
                    loss_sum += float(self.loss(out, y)) * len(y)
                total += len(y)
        return self._sum_over_ranks([correct, loss_sum, total])

    def _reduce_record(self, record: dict[str, float]) -> dict[str, float]:
        if not self.dist.enabled:
            return record
        keys = sorted(record)
        sums = allreduce_sum([record[k] for k in keys], self.device)
        return {k: v / self.dist.world_size for k, v in zip(keys, sums)}

    def arch_distribution(self, slot: Any) -> torch.Tensor:
        """The architecture's probabilities over a slot's candidates (differentiable): softmax(α) here."""
        return F.softmax(slot.alpha, -1)

    def expected_cost(self, table: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """E[cost] under :meth:`arch_distribution`, summed over the labels of ``table`` (default: ``cost_table``)."""
        total = torch.zeros((), device=self.device)
        for label, cost in (self._cost if table is None else table).items():
            total = total + (self.arch_distribution(self.supernet.slots[label]) * cost).sum()
        return total

    def cost_penalty(self) -> torch.Tensor | float:
        """``cost_weight · E[cost] / ref_cost`` (0 without a cost table)."""
        if not self.cost_weight or not self._cost:
            return 0.0
        return self.cost_weight * self.expected_cost() / self.ref_cost

    def path_cost(self, indices: Mapping[str, int]) -> float:
        """The cost of one path (label -> candidate index) under ``cost_table``."""
        return sum(self.cost_table[label][int(indices[label])] for label in self.cost_table if label in indices)

    # -- the public API --------------------------------------------------------------------------
    def fit(self) -> OneShotTrainer:
        """Train the supernet (and the architecture) for ``num_epochs``; returns ``self``."""
        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        self.supernet.install()
        self.model.train()
        self._final_arch = None
        try:
            if self.dist.enabled:
                broadcast_(self._arch_tensors())
                ids = [self.device.index] if self.device.type == "cuda" and self.device.index is not None else None
                self._ddp = torch.nn.parallel.DistributedDataParallel(
                    self.model, device_ids=ids, find_unused_parameters=not self.supernet.family.mixes)
            self._before_fit()
            while self.epoch < self.num_epochs:
                record: dict[str, Any] = self._reduce_record(self._train_epoch(self.epoch))
                record["epoch"] = self.epoch + 1
                if self.dist.is_main:
                    self.logger.info("epoch %d/%d done: %s", self.epoch + 1, self.num_epochs,
                                     ", ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch"))
                probs = self.arch_probabilities()  # identical on every rank
                if probs:
                    record["arch_probabilities"] = probs
                self.history.append(record)
                self.epoch += 1
                if self.lr_scheduler is not None:
                    self.lr_scheduler.step()
                if self._should_stop():
                    if self.dist.is_main:
                        self.logger.info("stopping early after epoch %d", self.epoch)
                    break
            self._after_fit()
            if self.dist.enabled:  # rank 0 decides; every rank returns the same arch
                self._final_arch = broadcast_object(self._export() if self.dist.is_main else None)
        finally:
            self._ddp = None
            self.supernet.restore()
            if self.threads:
                torch.set_num_threads(old_threads)
        return self

    def _before_fit(self) -> None:  # noqa: B027 - an optional hook
        """Called when :meth:`fit` starts (supernet installed, data-parallel set up)."""

    def _after_fit(self) -> None:  # noqa: B027 - an optional hook
        """Called after the last epoch, before the export is fixed (e.g. a search over sub-networks)."""

    def _should_stop(self) -> bool:
        return False

    @abstractmethod
    def _train_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch (weights, and the architecture where the method learns one); returns the epoch's
        averages (``self._meter().result()`` plus the method's own entries)."""

    def export(self) -> Arch:
        """The chosen architecture: a dict valid for ``model.space`` (freeze it with ``model.freeze``).

        After a data-parallel :meth:`fit` this is rank 0's export on every rank.
        """
        arch = dict(self._final_arch) if self._final_arch is not None else self._export()
        # one arch, one network: labels inside branches the arch does not take are left out
        return self._space.canonical(arch) if self._space is not None else arch

    @abstractmethod
    def _export(self) -> Arch:
        """The chosen arch, label -> value (:meth:`export` makes it canonical and handles data-parallel runs)."""

    def arch_parameters(self) -> dict[str, torch.Tensor]:
        """Label -> the current architecture logits α (detached copies)."""
        return self.supernet.alphas()

    def arch_probabilities(self) -> dict[str, dict[Any, float]]:
        """Label -> {candidate: probability} under the current architecture distribution.

        Candidates are keyed as the arch writes them: the op names of a ``LayerChoice`` with named
        candidates (a dict, or NAS-Bench-201's op names), else indices (input indices for a DARTS
        multi-input ``InputChoice``).
        """
        out: dict[str, dict[Any, float]] = {}
        with torch.no_grad():
            for label, slot in self.supernet.slots.items():
                if slot.alpha is None:
                    continue
                p = self.arch_distribution(slot).detach().cpu().tolist()
                named = slot.n == len(slot.categorical)
                out[label] = {(_plain_key(slot.key(k)) if named else k): p[k] for k in range(slot.n)}
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_epochs={self.num_epochs}, device={str(self.device)!r}, labels={len(self.supernet.slots)})"


def _plain_key(key: Any) -> Any:
    """A dict key that survives JSON (names and indices stay; a combination of inputs becomes its string)."""
    return key if isinstance(key, (str, int, float, bool)) or key is None else str(list(key) if isinstance(key, tuple) else key)


def clip(params: list[torch.nn.Parameter], grad_clip: float | None) -> None:
    if grad_clip is not None and grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
