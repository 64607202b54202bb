"""``Classification``: train a frozen network on a labelled dataset and score it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from nasforge.evaluate._hparams import HyperParameters
from nasforge.evaluate.base import Evaluator, TrialContextProtocol
from nasforge.space import Space

__all__ = ["Classification"]

_OPTIMIZERS = ("adamw", "adam", "sgd")
_SCHEDULERS = ("cosine", None)
# Recipe arguments that may be value choices (searched jointly with the architecture).
HPARAM_ARGS = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "momentum", "scheduler",
               "warmup_epochs", "label_smoothing", "grad_clip")


class _Tensors:
    """An in-memory ``(X, y)`` pair batched by indexing (no DataLoader overhead)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x = x
        self.y = y

    def __len__(self) -> int:
        return len(self.y)

    def batches(self, batch_size: int, shuffle: bool, generator: torch.Generator | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.y)
        if shuffle:
            order = torch.randperm(n, generator=generator)
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                yield self.x[idx], self.y[idx]
        else:
            for i in range(0, n, batch_size):
                yield self.x[i : i + batch_size], self.y[i : i + batch_size]

    def concat(self, other: _Tensors) -> _Tensors:
        return _Tensors(torch.cat([self.x, other.x]), torch.cat([self.y, other.y]))


class _MapDataset:
    """Any map-style dataset, batched with a DataLoader."""

    def __init__(self, dataset: Any, num_workers: int = 0):
        self.dataset = dataset
        self.num_workers = num_workers

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self, batch_size: int, shuffle: bool, generator: torch.Generator | None) -> Iterator[Any]:
        from torch.utils.data import DataLoader

        loader = DataLoader(self.dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=self.num_workers)
        yield from loader

    def concat(self, other: _Tensors | _MapDataset) -> _MapDataset:
        from torch.utils.data import ConcatDataset, TensorDataset

        theirs = other.dataset if isinstance(other, _MapDataset) else TensorDataset(other.x, other.y)
        return _MapDataset(ConcatDataset([self.dataset, theirs]), self.num_workers)


def _as_data(data: Any, name: str, num_workers: int) -> _Tensors | _MapDataset:
    from torch.utils.data import TensorDataset

    if isinstance(data, TensorDataset):
        if len(data.tensors) != 2:
            raise ValueError(f"{name}: a TensorDataset must hold exactly (inputs, labels), it holds {len(data.tensors)} tensors")
        data = tuple(data.tensors)
    if isinstance(data, (tuple, list)) and len(data) == 2 and _array_like(data[0]) and _array_like(data[1]):
        x, y = (torch.as_tensor(v) for v in data)
        if len(x) != len(y):
            raise ValueError(f"{name}: inputs and labels differ in length ({len(x)} vs {len(y)})")
        if len(y) == 0:
            raise ValueError(f"{name} is empty")
        if y.dtype.is_floating_point or y.dtype == torch.bool or y.dim() != 1:
            raise ValueError(f"{name}: labels must be a 1-D integer tensor of class indices, got dtype {y.dtype} and shape {tuple(y.shape)}")
        if x.dtype == torch.float64:
            x = x.float()
        return _Tensors(x.contiguous(), y.long())
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        if len(data) == 0:
            raise ValueError(f"{name} is empty")
        return _MapDataset(data, num_workers)
    raise TypeError(
        f"{name} must be a tuple (inputs, labels) of tensors / arrays, a TensorDataset or a map-style "
        f"dataset (with __getitem__ and __len__), got {type(data).__name__}"
    )


def _array_like(value: Any) -> bool:
    return isinstance(value, torch.Tensor) or hasattr(value, "__array__")


def _resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: the trial's GPU when its worker has one, else the CPU.

    Executors hand GPUs out per worker through ``CUDA_VISIBLE_DEVICES``
    (``LocalExecutor(gpus=[...])``, ``RayExecutor(num_gpus_per_trial=...)``, which hides every GPU
    from a trial that asked for none), so the first visible device is the assigned one.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; valid: 'auto', 'cpu', 'cuda', 'cuda:0', …") from None


class Classification(Evaluator):
    """Train a frozen network with a sound recipe and score it on validation (and test) data.

    Datasets are ``(inputs, labels)`` tuples of tensors or numpy arrays (batched in memory by
    indexing, the fast path), ``TensorDataset``s, or any map-style dataset (batched with a
    ``DataLoader``). Labels are class indices. The recipe: ``optimizer`` (``"adamw"`` by
    default, ``"adam"``, ``"sgd"`` with Nesterov momentum, an optimizer class, or a callable
    ``params -> Optimizer``) with decoupled weight decay on weights only (not biases / norms),
    a per-step cosine schedule with optional linear warm-up, cross-entropy with optional label
    smoothing, optional gradient clipping.

    During search each epoch reports ``{"val_acc", "val_loss", "loss"}`` through ``ctx.report``
    (so a strategy can stop a poor trial early) and the trial returns ``val_acc`` (main metric,
    maximised), ``val_loss``, ``loss``, ``best_val_acc``, ``params`` and ``train_time``.

    ``device="auto"`` trains on the GPU the executor assigned to the trial's worker (see
    ``LocalExecutor(gpus=...)`` and ``RayExecutor(num_gpus_per_trial=...)``), else on the CPU.

    :meth:`test` (used by ``Experiment.test``) retrains a fresh network for ``final_epochs``
    (default: ``epochs``) on train+val (``retrain=True``) or on train alone and returns
    ``test_acc`` and ``test_loss``.

    **Hyper-parameter search**: ``epochs``, ``batch_size``, ``optimizer``, ``lr``,
    ``weight_decay``, ``momentum``, ``scheduler``, ``warmup_epochs``, ``label_smoothing`` and
    ``grad_clip`` may be value choices; they join the experiment's space under their labels
    (an unlabelled one is named after its argument) and each trial trains with the values its
    arch chooses (:attr:`hyperparameters` is that space).

    Example::

        evaluator = Classification((x_train, y_train), (x_val, y_val), test_data=(x_test, y_test),
                                   epochs=5, batch_size=128, lr=3e-3, final_epochs=60)
        joint = Classification(train, val, lr=nn.choice([1e-3, 3e-3], label="lr"), batch_size=nn.choice([64, 128]))
    """

    uses_model = True
    metric = "val_acc"
    mode = "max"

    def __init__(
        self,
        train_data: Any,
        val_data: Any,
        test_data: Any = None,
        *,
        epochs: int = 10,
        batch_size: int = 128,
        optimizer: str | type | Callable[..., torch.optim.Optimizer] = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        momentum: float = 0.9,
        scheduler: str | None = "cosine",
        warmup_epochs: float = 0.0,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        label_smoothing: float = 0.0,
        grad_clip: float | None = None,
        train_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        final_epochs: int | None = None,
        final_lr: float | None = None,
        eval_batch_size: int = 1024,
        device: str | torch.device = "auto",
        num_workers: int = 0,
    ):
        given = dict(epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
                     momentum=momentum, scheduler=scheduler, warmup_epochs=warmup_epochs,
                     label_smoothing=label_smoothing, grad_clip=grad_clip)
        self._hparams = HyperParameters("Classification", given, HPARAM_ARGS)
        defaults = {**given, **self._hparams.defaults()}
        for name in self._hparams.choices:  # every candidate must be a valid setting
            for value in self._hparams.candidates(name):
                self._check_recipe(**{**defaults, name: value, "final_epochs": final_epochs, "loss": loss,
                                      "eval_batch_size": eval_batch_size})
        self._check_recipe(**defaults, final_epochs=final_epochs, loss=loss, eval_batch_size=eval_batch_size)
        (epochs, batch_size, optimizer, lr, weight_decay, momentum, scheduler, warmup_epochs, label_smoothing,
         grad_clip) = (defaults[k] for k in HPARAM_ARGS)
        self.train_data = _as_data(train_data, "train_data", num_workers)
        self.val_data = _as_data(val_data, "val_data", num_workers)
        self.test_data = None if test_data is None else _as_data(test_data, "test_data", num_workers)
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer.lower() if isinstance(optimizer, str) else optimizer
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.momentum = float(momentum)
        self.scheduler = scheduler
        self.warmup_epochs = float(warmup_epochs)
        self.loss = loss
        self.label_smoothing = float(label_smoothing)
        self.grad_clip = grad_clip
        self.train_transform = train_transform
        self.final_epochs = final_epochs
        self.final_lr = final_lr
        self.eval_batch_size = eval_batch_size
        self.device = device
        _resolve_device(device)  # fail early on a bad device string

    @property
    def hyperparameters(self) -> Space:
        """The space of this evaluator's hyper-parameter choices (empty without any)."""
        return self._hparams.space

    def _for_arch(self, ctx: TrialContextProtocol) -> Classification:
        """This evaluator with the hyper-parameter values ``ctx.arch`` chooses."""
        return self._hparams.resolved(self, getattr(ctx, "arch", {}) or {}, _normalise)

    @staticmethod
    def _check_recipe(epochs, batch_size, optimizer, lr, weight_decay, momentum, scheduler, warmup_epochs,
                      label_smoothing, grad_clip, final_epochs, loss, eval_batch_size) -> None:
        for name, value in (("epochs", epochs), ("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if final_epochs is not None and (not isinstance(final_epochs, int) or final_epochs < 1):
            raise ValueError(f"final_epochs must be a positive int or None, got {final_epochs!r}")
        if isinstance(optimizer, str) and optimizer.lower() not in _OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; valid: {', '.join(map(repr, _OPTIMIZERS))}, an optimizer class or a callable")
        if not isinstance(optimizer, str) and not callable(optimizer):
            raise TypeError(f"optimizer must be a name, an optimizer class or a callable, got {type(optimizer).__name__}")
        if scheduler not in _SCHEDULERS:
            raise ValueError(f"unknown scheduler {scheduler!r}; valid: 'cosine', None")
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        if loss is not None and not callable(loss):
            raise TypeError(f"loss must be callable (logits, labels) -> tensor, got {type(loss).__name__}")

    # -- the recipe ------------------------------------------------------------------------------
    def _loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        if self.loss is not None:
            return self.loss
        return torch.nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)

    def _make_optimizer(self, model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError(f"the model {type(model).__name__} has no trainable parameters")
        if callable(self.optimizer) and not isinstance(self.optimizer, type):
            return self.optimizer(params)
        decay = [p for p in params if p.dim() > 1]
        no_decay = [p for p in params if p.dim() <= 1]
        groups = [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]
        if isinstance(self.optimizer, type):
            return self.optimizer(groups, lr=lr)
        if self.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=lr)
        if self.optimizer == "adam":
            return torch.optim.Adam(groups, lr=lr)
        return torch.optim.SGD(groups, lr=lr, momentum=self.momentum, nesterov=self.momentum > 0)

    def _fit(
        self,
        model: torch.nn.Module,
        train: _Tensors | _MapDataset,
        epochs: int,
        lr: float,
        ctx: TrialContextProtocol,
        val: _Tensors | _MapDataset | None,
    ) -> dict[str, float]:
        device = _resolve_device(self.device)
        model.to(device)
        optimizer = self._make_optimizer(model, lr)
        loss_fn = self._loss_fn()
        steps_per_epoch = math.ceil(len(train) / self.batch_size)
        total = max(1, epochs * steps_per_epoch)
        warmup = int(self.warmup_epochs * steps_per_epoch)
        schedule = None
        if self.scheduler == "cosine" or warmup:

            def factor(step: int) -> float:
                if step < warmup:
                    return (step + 1) / warmup
                if self.scheduler != "cosine":
                    return 1.0
                progress = (step - warmup) / max(1, total - warmup)
                return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

            schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        generator = torch.Generator()
        generator.manual_seed(int(getattr(ctx, "seed", None) or 0) + 7919 * int(getattr(ctx, "trial_id", 0) or 0))
        out: dict[str, float] = {}
        best = -math.inf
        start = time.perf_counter()
        for epoch in range(epochs):
            model.train()
            loss_sum = torch.zeros((), device=device)
            seen = 0
            for xb, yb in train.batches(self.batch_size, True, generator):
                xb = xb.to(device, non_blocking=True)
                yb = yb.to(device, non_blocking=True)
                if self.train_transform is not None:
                    xb = self.train_transform(xb)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
                if self.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
                optimizer.step()
                if schedule is not None:
                    schedule.step()
                loss_sum += loss.detach() * len(yb)
                seen += len(yb)
            out = {"loss": float(loss_sum) / max(1, seen), "epoch": epoch + 1}
            if val is not None:
                acc, vloss = self.accuracy(model, val)
                best = max(best, acc)
                out.update(val_acc=acc, val_loss=vloss)
            ctx.report(epoch, out)
        out["train_time"] = time.perf_counter() - start
        if val is not None:
            out["best_val_acc"] = best
        return out

    @torch.inference_mode()
    def accuracy(self, model: torch.nn.Module, data: Any) -> tuple[float, float]:
        """``(accuracy, mean loss)`` of ``model`` on ``data`` (any form the constructor accepts)."""
        if not isinstance(data, (_Tensors, _MapDataset)):
            data = _as_data(data, "data", 0)
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        was_training = model.training
        model.eval()
        loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
        correct = 0
        loss_sum = 0.0
        for xb, yb in data.batches(self.eval_batch_size, False, None):
            xb = xb.to(device)
            yb = yb.to(device)
            logits = model(xb)
            loss_sum += float(loss_fn(logits, yb))
            correct += int((logits.argmax(dim=1) == yb).sum())
        model.train(was_training)
        n = len(data)
        return correct / n, loss_sum / n

    # -- the evaluator contract ----------------------------------------------------------------
    def evaluate(self, model: torch.nn.Module, ctx: TrialContextProtocol) -> dict[str, float]:
        if self._hparams:
            return self._for_arch(ctx)._evaluate(model, ctx)
        return self._evaluate(model, ctx)

    def _evaluate(self, model: torch.nn.Module, ctx: TrialContextProtocol) -> dict[str, float]:
        out = self._fit(model, self.train_data, self.epochs, self.lr, ctx, self.val_data)
        out["params"] = float(sum(p.numel() for p in model.parameters()))
        out.pop("epoch", None)
        return out

    def test(self, model: torch.nn.Module, ctx: TrialContextProtocol, retrain: bool = True) -> dict[str, float]:
        if self._hparams:
            return self._for_arch(ctx)._test(model, ctx, retrain)
        return self._test(model, ctx, retrain)

    def _test(self, model: torch.nn.Module, ctx: TrialContextProtocol, retrain: bool = True) -> dict[str, float]:
        if self.test_data is None:
            raise ValueError("Classification has no test_data; pass test_data=(inputs, labels) to evaluate on a test set")
        epochs = self.final_epochs or self.epochs
        lr = self.final_lr or self.lr
        if retrain:
            out = self._fit(model, self.train_data.concat(self.val_data), epochs, lr, ctx, None)
        else:
            out = self._fit(model, self.train_data, epochs, lr, ctx, self.val_data)
        acc, loss = self.accuracy(model, self.test_data)
        out.update(test_acc=acc, test_loss=loss, params=float(sum(p.numel() for p in model.parameters())))
        out["epochs"] = float(epochs)
        out.pop("epoch", None)
        return out

    def __repr__(self) -> str:
        hp = "".join(f", {name}={expr!r}" for name, expr in self._hparams.choices.items())
        return (
            f"Classification(train={len(self.train_data)}, val={len(self.val_data)}, "
            f"test={len(self.test_data) if self.test_data is not None else None}, epochs={self.epochs}, "
            f"batch_size={self.batch_size}, optimizer={self.optimizer!r}, lr={self.lr}{hp})"
        )


def _normalise(name: str, value: Any) -> Any:
    if name == "optimizer" and isinstance(value, str):
        return value.lower()
    if name in ("lr", "weight_decay", "momentum", "warmup_epochs", "label_smoothing"):
        return float(value)
    return value
