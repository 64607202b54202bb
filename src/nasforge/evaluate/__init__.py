"""Evaluators: how a candidate becomes scores.

* :class:`FunctionEvaluator` — any ``fn(model, ctx)`` (or ``fn(arch, ctx)`` with
  ``uses_model=False``, never building the network);
* :class:`Classification` — a training recipe for classifiers with validation and test sets;
* :class:`ZeroCostEvaluator` — zero-cost proxies of an untrained network
  (:mod:`nasforge.evaluate.proxies`).

``Classification`` imports torch on first use; ``FunctionEvaluator`` never does.
"""

from __future__ import annotations

from typing import Any

from nasforge.evaluate.base import Evaluator, TrialContextProtocol
from nasforge.evaluate.function import FunctionEvaluator

__all__ = ["Classification", "Evaluator", "FunctionEvaluator", "TrialContextProtocol", "ZeroCostEvaluator"]


def __getattr__(name: str) -> Any:
    if name == "Classification":
        from nasforge.evaluate.classification import Classification

        return Classification
    if name == "ZeroCostEvaluator":
        from nasforge.evaluate.proxies import ZeroCostEvaluator

        return ZeroCostEvaluator
    raise AttributeError(f"module 'nasforge.evaluate' has no attribute {name!r}")
