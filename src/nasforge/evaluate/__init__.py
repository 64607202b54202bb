"""Evaluators: how a candidate becomes scores.

* :class:`FunctionEvaluator` — any ``fn(model, ctx)`` (or ``fn(arch, ctx)`` with
  ``uses_model=False``, never building the network);
* :class:`Supervised` — a training recipe for any supervised task (a loss, a metric, a
  direction) on tensors, datasets, ``DataLoader``\\s or functions returning them; its presets
  :class:`Classification` (cross-entropy, accuracy, max) and :class:`Regression` (MSE / MAE, min);
* :class:`ZeroCostEvaluator` — zero-cost proxies of an untrained network
  (:mod:`nasforge.evaluate.proxies`).

The torch-based evaluators import torch on first use; ``FunctionEvaluator`` never does.
"""

from __future__ import annotations

from nasforge._lazy import lazy_attributes
from nasforge.evaluate.base import (
    Evaluator,
    ResultError,
    TrialContext,
    TrialContextProtocol,
    evaluator_config,
    normalize_metrics,
)
from nasforge.evaluate.function import FunctionEvaluator

__all__ = [
    "Classification",
    "Evaluator",
    "FunctionEvaluator",
    "Regression",
    "ResultError",
    "Supervised",
    "TrialContext",
    "TrialContextProtocol",
    "evaluator_config",
    "normalize_metrics",
    "ZeroCostEvaluator",
]

_LAZY = {
    "Classification": "nasforge.evaluate.classification",
    "Regression": "nasforge.evaluate.supervised",
    "Supervised": "nasforge.evaluate.supervised",
    "ZeroCostEvaluator": "nasforge.evaluate.proxies",
}
__getattr__ = lazy_attributes(__name__, _LAZY)
