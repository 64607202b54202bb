"""``Supervised``: train a frozen network on any supervised task and score it; ``Regression`` preset.

``Classification`` (in :mod:`nasforge.evaluate.classification`) is the other preset.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from nasforge.evaluate._data import Data, as_data, concat, describe_data, resolve_device
from nasforge.evaluate._hparams import HyperParameters
from nasforge.evaluate.base import Evaluator, TrialContextProtocol
from nasforge.profile import count_params
from nasforge.space import Space
from nasforge.trial import check_mode

__all__ = ["Regression", "Supervised"]

_GIVEN = "<data given>"  # stands in _sources for a split that was given (not a function)
_OPTIMIZERS = ("adamw", "adam", "sgd")
# Recipe arguments that may be value choices (searched jointly with the architecture).
HPARAM_ARGS = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "momentum", "scheduler",
               "warmup_epochs", "label_smoothing", "grad_clip")
_SCHEDULERS = ("cosine", None)
_LOSSES = ("cross_entropy", "mse", "mae", "huber", "bce")
_LOSS_ALIASES = {"ce": "cross_entropy", "crossentropy": "cross_entropy", "l1": "mae", "l2": "mse", "smooth_l1": "huber"}
#: built-in metrics and whether they are maximised
_METRICS = {"acc": "max", "mse": "min", "mae": "min", "rmse": "min", "r2": "max", "loss": "min"}
_METRIC_ALIASES = {"accuracy": "acc", "l1": "mae", "l2": "mse"}


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}.{name}" if module and module != "builtins" else name


_resolve_device = resolve_device  # the old private name (evaluate.classification re-exports it)


def _split_batch(batch: Any, where: str) -> tuple[Any, torch.Tensor]:
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        inputs = batch[0] if len(batch) == 2 else tuple(batch[:-1])
        return inputs, batch[-1]
    if isinstance(batch, dict):
        raise TypeError(
            f"{where}: a batch is a dict with keys {sorted(map(str, batch))}; Supervised needs (inputs, targets) "
            f"batches (or (input_1, …, input_n, targets), passed as model(input_1, …, input_n)); add a collate_fn"
        )
    raise TypeError(f"{where}: a batch must be a tuple (inputs, targets), got {type(batch).__name__}")


def _align(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1) outputs against (N,) targets (and the reverse) compare sample by sample, not broadcast."""
    if out.dim() == y.dim() + 1 and out.shape[-1] == 1:
        out = out.squeeze(-1)
    elif y.dim() == out.dim() + 1 and y.shape[-1] == 1:
        y = y.squeeze(-1)
    return out, y


class Supervised(Evaluator):
    """Train a frozen network with a sound recipe and score it on validation (and test) data.

    **Data** (``train_data``, ``val_data``, ``test_data``): ``(inputs, targets)`` tuples of
    tensors or numpy arrays (batched in memory by indexing, the fast path), ``TensorDataset``\\s,
    any map-style dataset (batched with a ``DataLoader`` of ``batch_size``), a ``DataLoader``
    (used as it is: its batch size, sampler, collate function and workers), or a *function of no
    arguments* returning one of these: it is called where the trial runs (in the worker
    process), once, so the data is built there instead of travelling with the evaluator. A batch
    is ``(inputs, targets)``, or ``(input_1, …, input_n, targets)`` for ``model(input_1, …)``.

    **Task**: ``loss`` is ``"cross_entropy"`` (class-index or class-probability targets),
    ``"mse"``, ``"mae"``, ``"huber"``, ``"bce"`` (binary, logits out) or a callable
    ``(outputs, targets) -> scalar tensor``. ``metric`` is the main metric: a built-in name
    (``"acc"``, ``"mse"``, ``"mae"``, ``"rmse"``, ``"r2"``, ``"loss"``) or a callable
    ``(outputs, targets) -> float`` computed on the whole split (its ``__name__`` names it; give
    ``mode``). ``mode`` (``"max"``/``"min"``) defaults to the built-in metric's direction.
    ``extra_metrics`` are also measured. The experiment's metric is ``val_<metric>``; the test
    metrics are ``test_<metric>``, ``test_loss`` and ``test_<extra>``.

    **Recipe**: ``optimizer`` (``"adamw"`` by default, ``"adam"``, ``"sgd"`` with Nesterov
    momentum, an optimizer class, or a callable ``params -> Optimizer``) with decoupled weight
    decay on weights only (not biases / norms), a per-step cosine schedule with optional linear
    warm-up, optional gradient clipping and ``train_transform`` (applied to training inputs).

    During search each epoch ``e`` (1-based: the step is the number of epochs completed, so
    ``SuccessiveHalving(min_step=1, max_step=epochs)`` counts in epochs) reports
    ``{"val_<metric>", "val_loss", "loss", "epoch", …}`` through ``ctx.report``; the trial returns
    the last epoch's values plus ``best_val_<metric>``, ``params`` and ``train_time``.
    :meth:`test` retrains a fresh network for ``final_epochs`` (default: ``epochs``) on train+val
    (``retrain=True``) or on train alone and measures it on ``test_data``.

    **Hyper-parameter search**: ``epochs``, ``batch_size``, ``optimizer``, ``lr``,
    ``weight_decay``, ``momentum``, ``scheduler``, ``warmup_epochs``, ``label_smoothing`` and
    ``grad_clip`` may be value choices (``lr=nn.choice([1e-3, 3e-3], label="lr")``); they join
    the experiment's space under their labels (an unlabelled one is named after its argument)
    and each trial trains with the values its arch chooses (:attr:`hyperparameters` is that space).

    Example::

        evaluator = Supervised(train_loader, val_loader, test_data=test_loader,
                               loss="mse", metric="mae", extra_metrics=("r2",), epochs=20)
    """

    uses_model = True

    def __init__(
        self,
        train_data: Any,
        val_data: Any,
        test_data: Any = None,
        *,
        loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "cross_entropy",
        metric: str | Callable[[torch.Tensor, torch.Tensor], float] = "acc",
        mode: str | None = None,
        extra_metrics: Sequence[str | Callable[[torch.Tensor, torch.Tensor], float]] = (),
        epochs: int = 10,
        batch_size: int = 128,
        optimizer: str | type | Callable[..., torch.optim.Optimizer] = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        momentum: float = 0.9,
        scheduler: str | None = "cosine",
        warmup_epochs: float = 0.0,
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
        self._hparams = HyperParameters(type(self).__name__, given, HPARAM_ARGS)
        defaults = {**given, **self._hparams.defaults()}
        for name in self._hparams.choices:  # every candidate must be a valid setting
            for value in self._hparams.candidates(name):
                _check_recipe(**{**defaults, name: value}, final_epochs=final_epochs, final_lr=final_lr,
                              eval_batch_size=eval_batch_size)
        _check_recipe(**defaults, final_epochs=final_epochs, final_lr=final_lr, eval_batch_size=eval_batch_size)
        (epochs, batch_size, optimizer, lr, weight_decay, momentum, scheduler, warmup_epochs, label_smoothing,
         grad_clip) = (defaults[k] for k in HPARAM_ARGS)
        self.loss_name = self._check_loss(loss)
        self.loss = loss if callable(loss) else self.loss_name
        self.metric_name, metric_fn, metric_mode = self._check_metric(metric, "metric")
        if mode is None and metric_mode is None:
            raise ValueError(f"metric {self.metric_name!r} is a custom function: give mode='max' or mode='min'")
        mode = check_mode(metric_mode if mode is None else mode)
        if isinstance(extra_metrics, (str, bytes)) or callable(extra_metrics):
            extra_metrics = (extra_metrics,)
        self._metric_fns: dict[str, Callable[..., float] | None] = {self.metric_name: metric_fn}
        for m in extra_metrics:
            name, fn, _ = self._check_metric(m, "extra_metrics")
            if name != "loss":
                self._metric_fns.setdefault(name, fn)
        if "acc" in self._metric_fns and self.loss_name not in ("cross_entropy", "bce", "custom"):
            raise ValueError(f"metric 'acc' needs a classification loss ('cross_entropy' or 'bce'), got loss={self.loss_name!r}")
        self.metric = f"val_{self.metric_name}"
        self.mode = mode
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer.lower() if isinstance(optimizer, str) else optimizer
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.momentum = float(momentum)
        self.scheduler = scheduler
        self.warmup_epochs = float(warmup_epochs)
        self.label_smoothing = float(label_smoothing)
        self.grad_clip = grad_clip
        self.train_transform = train_transform
        self.final_epochs = final_epochs
        self.final_lr = final_lr
        self.eval_batch_size = eval_batch_size
        self.device = device
        self.num_workers = num_workers
        _resolve_device(device)  # fail early on a bad device string
        self._sources = {"train_data": train_data, "val_data": val_data, "test_data": test_data}
        self._data: dict[str, Data | None] = {}
        for name, source in self._sources.items():
            if source is None:
                if name != "test_data":
                    raise TypeError(f"{name} is required (inputs and targets), got None")
                self._data[name] = None
            elif not self._is_factory(source):
                self._data[name] = as_data(source, name, num_workers, self._prepare_targets)
                self._sources[name] = _GIVEN  # the wrapped split is kept once, not twice

    @property
    def hyperparameters(self) -> Space:
        """The space of this evaluator's hyper-parameter choices (empty without any)."""
        return self._hparams.space

    def _for_arch(self, ctx: TrialContextProtocol) -> Supervised:
        """This evaluator with the hyper-parameter values ``ctx.arch`` chooses."""
        return self._hparams.resolved(self, getattr(ctx, "arch", {}) or {}, _normalise)

    # -- configuration helpers ------------------------------------------------------------------
    @staticmethod
    def _is_factory(source: Any) -> bool:
        return callable(source) and not isinstance(source, (Dataset, DataLoader, torch.Tensor, tuple, list))

    @staticmethod
    def _check_loss(loss: Any) -> str:
        if callable(loss):
            return "custom"
        if not isinstance(loss, str):
            raise TypeError(f"loss must be a name or a callable (outputs, targets) -> tensor, got {type(loss).__name__}")
        name = _LOSS_ALIASES.get(loss.lower(), loss.lower())
        if name not in _LOSSES:
            raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(map(repr, _LOSSES))} or a callable (outputs, targets) -> tensor")
        return name

    @staticmethod
    def _check_metric(metric: Any, what: str) -> tuple[str, Callable[..., float] | None, str | None]:
        if callable(metric):
            name = getattr(metric, "__name__", None)
            if not name or name == "<lambda>":
                raise ValueError(f"{what}: a custom metric function needs a name (def my_metric(outputs, targets): …), not a lambda")
            return name, metric, None
        if not isinstance(metric, str):
            raise TypeError(f"{what} must be a name or a function (outputs, targets) -> float, got {type(metric).__name__}")
        name = _METRIC_ALIASES.get(metric.lower(), metric.lower())
        if name not in _METRICS:
            raise ValueError(f"unknown {what} {metric!r}; valid: {', '.join(map(repr, _METRICS))} or a function (outputs, targets) -> float")
        return name, None, _METRICS[name]

    def _target_kind(self) -> str:
        """``"classes"`` (class indices / probabilities), ``"float"`` (numeric) or ``"raw"`` (a custom loss's own)."""
        if self.loss_name == "cross_entropy":
            return "classes"
        return "float" if self.loss_name in ("mse", "mae", "huber", "bce") else "raw"

    def _prepare_targets(self, y: torch.Tensor, name: str) -> torch.Tensor:
        """Targets of an in-memory split, checked and converted once for the loss."""
        kind = self._target_kind()
        if kind == "classes":
            if y.dtype == torch.bool:
                raise ValueError(f"{name}: targets are booleans; use loss='bce' for binary targets, or integer class indices")
            if y.dtype.is_floating_point:
                if y.dim() == 2:
                    return y.float()  # class probabilities (soft labels)
                if y.dim() == 1 and bool(torch.all(y == torch.round(y))) and bool(torch.all(y >= 0)):
                    return y.long()
                raise ValueError(
                    f"{name}: targets must be class indices (a 1-D integer tensor) or class probabilities of shape "
                    f"(N, classes); got dtype {y.dtype} and shape {tuple(y.shape)} with non-integer values "
                    f"(for numeric targets use Regression / loss='mse')"
                )
            if y.dim() != 1:
                raise ValueError(f"{name}: class-index targets must be 1-D, got shape {tuple(y.shape)}")
            return y.long()
        if kind == "float":
            return y.float() if (y.dtype != torch.float32) else y
        return y

    def _batch_targets(self, y: torch.Tensor) -> torch.Tensor:
        """The cheap per-batch version of :meth:`_prepare_targets` (datasets and DataLoaders)."""
        kind = self._target_kind()
        if kind == "classes":  # float 2-D: class probabilities; else class indices
            return y if y.dtype.is_floating_point and y.dim() != 1 else y.long()
        if kind == "float" and y.dtype != torch.float32:
            return y.float()
        return y

    def split(self, name: str) -> Data:
        """The split ``"train_data"`` / ``"val_data"`` / ``"test_data"``, building it from its function on first use."""
        if name not in self._data:
            source = self._sources[name]
            built = source()
            if self._is_factory(built):
                raise TypeError(f"{name}: the function {_qualname(source)} returned another function; return the data itself")
            self._data[name] = as_data(built, f"{name} (returned by {_qualname(source)})", self.num_workers, self._prepare_targets)
        data = self._data[name]
        if data is None:
            raise ValueError(f"{type(self).__name__} has no {name}; pass {name}=(inputs, targets)")
        return data

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        # data built by a function is rebuilt where the evaluator runs, never shipped
        state["_data"] = {k: v for k, v in self._data.items() if not self._is_factory(self._sources[k])}
        return state

    @property
    def reported_steps(self) -> int:
        """The last step reported during search (steps are epochs completed, 1 … ``epochs``)."""
        return self.epochs

    @property
    def test_epochs(self) -> int:
        return self.final_epochs or self.epochs

    def config(self) -> dict[str, Any]:
        """What decides the search scores (the experiment refuses to mix results when it changes)."""
        def name(v: Any) -> Any:  # functions and classes by name, not module (a script run as __main__ agrees)
            return v if v is None or isinstance(v, (str, int, float, bool)) else getattr(v, "__qualname__", type(v).__qualname__)

        return {
            "class": type(self).__qualname__,
            "loss": name(self.loss),
            "metric": self.metric_name if self._metric_fns[self.metric_name] is None else name(self._metric_fns[self.metric_name]),
            "mode": self.mode,
            **{arg: name(getattr(self, arg)) for arg in HPARAM_ARGS},
            "train_transform": name(self.train_transform),
            "hyperparameters": self._hparams.space.describe() if self._hparams else None,
            "train_data": self._describe("train_data"),
            "val_data": self._describe("val_data"),
        }

    def test_config(self) -> dict[str, Any]:
        """What decides the test scores (test rows are reused only when it is unchanged)."""
        return {
            **self.config(),
            "final_epochs": self.test_epochs,
            "final_lr": self.final_lr or self.lr,
            "extra_metrics": sorted(self._metric_fns),
            "test_data": self._describe("test_data"),
        }

    def _describe(self, split: str) -> Any:
        source = self._sources[split]
        if source is not None and self._is_factory(source):
            return describe_data(source)
        return describe_data(self._data.get(split))

    # -- the recipe ------------------------------------------------------------------------------
    def _loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        if callable(self.loss):
            return self.loss
        factories: dict[str, Callable[[], Callable[..., torch.Tensor]]] = {
            "cross_entropy": lambda: torch.nn.CrossEntropyLoss(label_smoothing=self.label_smoothing),
            "mse": torch.nn.MSELoss,
            "mae": torch.nn.L1Loss,
            "huber": torch.nn.HuberLoss,
            "bce": torch.nn.BCEWithLogitsLoss,
        }
        fn = factories[self.loss_name]()

        def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return fn(*_align(out, y))

        return loss

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

    def _to_device(self, inputs: Any, device: torch.device, dtype: torch.dtype | None) -> Any:
        if isinstance(inputs, torch.Tensor):
            if dtype is not None and inputs.dtype == torch.float64 and dtype == torch.float32:
                inputs = inputs.float()
            return inputs.to(device, non_blocking=True)
        if isinstance(inputs, (tuple, list)):
            return type(inputs)(self._to_device(v, device, dtype) for v in inputs)
        return inputs

    def _forward(self, model: torch.nn.Module, inputs: Any) -> torch.Tensor:
        return model(*inputs) if isinstance(inputs, tuple) else model(inputs)

    def _fit(
        self,
        model: torch.nn.Module,
        train: Data,
        epochs: int,
        lr: float,
        ctx: TrialContextProtocol,
        val: Data | None,
    ) -> dict[str, float]:
        device = _resolve_device(self.device)
        model.to(device)
        dtype = next((p.dtype for p in model.parameters()), None)
        optimizer = self._make_optimizer(model, lr)
        loss_fn = self._loss_fn()
        steps_per_epoch = train.num_batches(self.batch_size)
        schedule = None
        if self.scheduler == "cosine" or self.warmup_epochs:
            if steps_per_epoch is None:
                raise ValueError(
                    "train_data has no length (an iterable DataLoader), so the per-step learning-rate schedule cannot be "
                    "planned; pass scheduler=None and warmup_epochs=0, or a map-style dataset"
                )
            total = max(1, epochs * steps_per_epoch)
            warmup = int(self.warmup_epochs * steps_per_epoch)

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
        best: float | None = None
        start = time.perf_counter()
        for epoch in range(epochs):
            model.train()
            loss_sum = torch.zeros((), device=device)
            seen = 0
            for batch in train.batches(self.batch_size, True, generator):
                inputs, yb = _split_batch(batch, "train_data")
                inputs = self._to_device(inputs, device, dtype)
                yb = self._batch_targets(yb.to(device, non_blocking=True))
                if self.train_transform is not None:
                    inputs = self.train_transform(inputs)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(self._forward(model, inputs), yb)
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
                scores = self.score(model, val)
                value = scores[self.metric_name]
                if best is None or (value > best if self.mode == "max" else value < best):
                    best = value
                out.update({f"val_{k}": v for k, v in scores.items()})
            ctx.report(epoch + 1, out)
        out["train_time"] = time.perf_counter() - start
        if best is not None:
            out[f"best_val_{self.metric_name}"] = best
        return out

    @torch.inference_mode()
    def score(self, model: torch.nn.Module, data: Any) -> dict[str, float]:
        """``{"loss": …, <metric>: …, <extra>: …}`` of ``model`` on ``data`` (a split or any accepted form)."""
        if not isinstance(data, Data):
            data = as_data(data, "data", 0, self._prepare_targets)
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        dtype = next((p.dtype for p in model.parameters()), None)
        was_training = model.training
        model.eval()
        loss_fn = self._loss_fn()
        names = set(self._metric_fns)
        custom = {k: f for k, f in self._metric_fns.items() if f is not None}
        kept_out: list[torch.Tensor] = []
        kept_y: list[torch.Tensor] = []
        n = elements = correct = 0
        loss_sum = sq = ab = 0.0
        # per-column sums of the targets, their squares and the squared errors (for r2), in float64
        y_sum = y_sq = sse = torch.zeros((), dtype=torch.float64, device=device)
        for batch in data.batches(self.eval_batch_size, False, None):
            inputs, yb = _split_batch(batch, "evaluation data")
            inputs = self._to_device(inputs, device, dtype)
            yb = self._batch_targets(yb.to(device))
            out = self._forward(model, inputs)
            b = len(yb)
            n += b
            loss_sum += float(loss_fn(out, yb)) * b
            if "acc" in names:
                if self.loss_name == "bce":
                    o, t = _align(out, yb)
                    correct += int(((o > 0) == (t > 0.5)).sum())
                else:
                    target = yb.argmax(dim=1) if yb.dtype.is_floating_point and yb.dim() == 2 else yb
                    correct += int((out.argmax(dim=1) == target).sum())
            if names & {"mse", "mae", "rmse", "r2"}:
                o, t = _align(out, yb)
                o, t = o.double(), t.double().expand_as(o)
                err = o - t
                sq += float((err * err).sum())
                ab += float(err.abs().sum())
                elements += err.numel()
                flat_t = t.reshape(b, -1)
                flat_e = err.reshape(b, -1)
                y_sum = y_sum + flat_t.sum(0)
                y_sq = y_sq + (flat_t * flat_t).sum(0)
                sse = sse + (flat_e * flat_e).sum(0)
            if custom:
                kept_out.append(out.detach().cpu())
                kept_y.append(yb.detach().cpu())
        model.train(was_training)
        if n == 0:
            raise ValueError("the evaluation data yielded no samples")
        result = {"loss": loss_sum / n}
        if "acc" in names:
            result["acc"] = correct / n
        if elements:
            result["mse"] = sq / elements
            result["mae"] = ab / elements
            result["rmse"] = math.sqrt(sq / elements)
            sst = y_sq - y_sum * y_sum / n
            r2 = torch.where(sst > 0, 1 - sse / sst.clamp_min(1e-300), torch.zeros_like(sst))
            result["r2"] = float(r2.mean())
        for name, fn in custom.items():
            value = fn(torch.cat(kept_out), torch.cat(kept_y))
            result[name] = float(value.item() if hasattr(value, "item") else value)
        return {k: v for k, v in result.items() if k == "loss" or k in names}

    # -- the evaluator contract ----------------------------------------------------------------
    def evaluate(self, model: torch.nn.Module, ctx: TrialContextProtocol) -> dict[str, float]:
        return self._for_arch(ctx)._evaluate(model, ctx)

    def _evaluate(self, model: torch.nn.Module, ctx: TrialContextProtocol) -> dict[str, float]:
        train, val = self.split("train_data"), self.split("val_data")
        out = self._fit(model, train, self.epochs, self.lr, ctx, val)
        out["params"] = float(count_params(model, trainable_only=False))
        out.pop("epoch", None)
        return out

    def test(self, model: torch.nn.Module, ctx: TrialContextProtocol, retrain: bool = True) -> dict[str, float]:
        return self._for_arch(ctx)._test(model, ctx, retrain)

    def _test(self, model: torch.nn.Module, ctx: TrialContextProtocol, retrain: bool = True) -> dict[str, float]:
        if self._sources["test_data"] is None:
            raise ValueError(f"{type(self).__name__} has no test_data; pass test_data=(inputs, targets) to evaluate on a test set")
        train, val, test = self.split("train_data"), self.split("val_data"), self.split("test_data")
        epochs = self.test_epochs
        lr = self.final_lr or self.lr
        if retrain:
            out = self._fit(model, concat(train, val), epochs, lr, ctx, None)
        else:
            out = self._fit(model, train, epochs, lr, ctx, val)
        out.update({f"test_{k}": v for k, v in self.score(model, test).items()})
        out["params"] = float(count_params(model, trainable_only=False))
        out["epochs"] = float(epochs)
        out.pop("epoch", None)
        return out

    def __repr__(self) -> str:
        def size(split: str) -> Any:
            if self._is_factory(self._sources[split]):
                return _qualname(self._sources[split]) + "()"
            data = self._data.get(split)
            if data is None:
                return None
            try:
                return len(data)
            except TypeError:
                return "?"

        return (
            f"{type(self).__name__}(train={size('train_data')}, val={size('val_data')}, test={size('test_data')}, "
            f"loss={self.loss_name!r}, metric={self.metric!r}, mode={self.mode!r}, epochs={self.epochs}, "
            f"batch_size={self.batch_size}, optimizer={self.optimizer if isinstance(self.optimizer, str) else _qualname(self.optimizer)!r}, "
            f"lr={self.lr}{''.join(f', {k}={v!r}' for k, v in self._hparams.choices.items())})"
        )


def _check_recipe(epochs: Any, batch_size: Any, optimizer: Any, lr: Any, weight_decay: Any, momentum: Any, scheduler: Any,
                  warmup_epochs: Any, label_smoothing: Any, grad_clip: Any, final_epochs: Any, final_lr: Any,
                  eval_batch_size: Any) -> None:
    """Clear errors for a bad training recipe (every candidate of a hyper-parameter choice is checked)."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if final_epochs is not None and (isinstance(final_epochs, bool) or not isinstance(final_epochs, int) or final_epochs < 1):
        raise ValueError(f"final_epochs must be a positive int or None, got {final_epochs!r}")
    if isinstance(optimizer, str) and optimizer.lower() not in _OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; valid: {', '.join(map(repr, _OPTIMIZERS))}, an optimizer class or a callable")
    if not isinstance(optimizer, str) and not callable(optimizer):
        raise TypeError(f"optimizer must be a name, an optimizer class or a callable, got {type(optimizer).__name__}")
    if scheduler not in _SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; valid: 'cosine', None")
    for name, value in (("lr", lr), ("final_lr", final_lr)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value))):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")


def _normalise(name: str, value: Any) -> Any:
    if name == "optimizer" and isinstance(value, str):
        return value.lower()
    if name in ("lr", "weight_decay", "momentum", "warmup_epochs", "label_smoothing"):
        return float(value)
    return value


class Regression(Supervised):
    """:class:`Supervised` preset for numeric targets: ``loss="mse"`` (or ``"mae"``, ``"huber"``),
    main metric = the loss's name (``"mse"`` / ``"mae"``; ``"rmse"`` and ``"r2"`` also work),
    ``mode="min"`` (``"max"`` for ``r2``), ``mse`` and ``mae`` always measured.

    Targets may be ``(N,)`` or ``(N, k)`` floats (integers are converted); a network that ends in
    ``Linear(…, 1)`` is compared sample by sample with ``(N,)`` targets (no silent broadcasting).

    Example::

        evaluator = Regression((x_train, y_train), (x_val, y_val), test_data=(x_test, y_test),
                               loss="mse", epochs=50, lr=3e-3)
        # trials report val_mse (minimised), val_mae and val_loss every epoch
    """

    def __init__(
        self,
        train_data: Any,
        val_data: Any,
        test_data: Any = None,
        *,
        loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "mse",
        metric: str | Callable[[torch.Tensor, torch.Tensor], float] | None = None,
        mode: str | None = None,
        extra_metrics: Sequence[str | Callable[[torch.Tensor, torch.Tensor], float]] = ("mse", "mae"),
        **kwargs: Any,
    ):
        loss_name = self._check_loss(loss)
        if loss_name in ("cross_entropy", "bce"):
            raise ValueError(f"Regression takes a regression loss ('mse', 'mae', 'huber' or a callable), got {loss!r}; use Classification")
        if metric is None:
            metric = loss_name if loss_name in ("mse", "mae") else "mse"
        super().__init__(train_data, val_data, test_data, loss=loss, metric=metric, mode=mode, extra_metrics=extra_metrics, **kwargs)
