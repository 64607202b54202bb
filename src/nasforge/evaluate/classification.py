"""``Classification``: the :class:`~nasforge.evaluate.Supervised` preset for classifiers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from nasforge.evaluate.supervised import Supervised, _resolve_device  # noqa: F401 - the old import path stays valid

__all__ = ["Classification"]


class Classification(Supervised):
    """Train a frozen classifier with a sound recipe and score it on validation (and test) data.

    A preset of :class:`~nasforge.evaluate.Supervised` (same data forms — tensors, datasets,
    ``DataLoader``\\s or functions returning them — and the same recipe) with cross-entropy
    (optional ``label_smoothing``) and accuracy as the main metric, maximised. Targets are class
    indices (integers, or floats holding whole numbers) or class probabilities of shape
    ``(N, classes)``.

    During search each epoch reports ``{"val_acc", "val_loss", "loss", "epoch"}`` through
    ``ctx.report`` (step = epochs completed) and the trial returns ``val_acc`` (main metric),
    ``val_loss``, ``loss``, ``best_val_acc``, ``params`` and ``train_time``. :meth:`test` (used by
    ``Experiment.test``) retrains a fresh network for ``final_epochs`` (default: ``epochs``) on
    train+val (``retrain=True``) or on train alone and returns ``test_acc`` and ``test_loss``.
    Recipe arguments may be value choices, searched jointly with the architecture (see
    :class:`~nasforge.evaluate.Supervised`).

    Example::

        evaluator = Classification((x_train, y_train), (x_val, y_val), test_data=(x_test, y_test),
                                   epochs=5, batch_size=128, lr=3e-3, final_epochs=60)
        joint = Classification(train, val, lr=nn.choice([1e-3, 3e-3], label="lr"), batch_size=nn.choice([64, 128]))
    """

    def __init__(
        self,
        train_data: Any,
        val_data: Any,
        test_data: Any = None,
        *,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        metric: str | Callable[[torch.Tensor, torch.Tensor], float] = "acc",
        mode: str | None = None,
        extra_metrics: Sequence[str | Callable[[torch.Tensor, torch.Tensor], float]] = (),
        **kwargs: Any,
    ):
        if loss is not None and not callable(loss):
            raise TypeError(f"loss must be callable (logits, labels) -> tensor, got {type(loss).__name__}")
        super().__init__(train_data, val_data, test_data, loss=loss if loss is not None else "cross_entropy",
                         metric=metric, mode=mode, extra_metrics=extra_metrics, **kwargs)

    def _target_kind(self) -> str:
        return "classes"  # a custom classification loss gets class-index targets too

    def accuracy(self, model: torch.nn.Module, data: Any) -> tuple[float, float]:
        """``(accuracy, mean loss)`` of ``model`` on ``data`` (any form the constructor accepts)."""
        scores = self.score(model, data)
        if "acc" not in scores:
            saved = self._metric_fns
            self._metric_fns = {**saved, "acc": None}
            try:
                scores = self.score(model, data)
            finally:
                self._metric_fns = saved
        return scores["acc"], scores["loss"]
