"""Argument checks and small helpers shared by the strategies. Torch-free; private to
:mod:`nasforge.strategy`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["check_positive_int", "check_fraction", "check_choice", "topk_keys"]


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_fraction(name: str, value: Any, low: float = 0.0, high: float = 1.0) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}") from None
    if not (low <= v <= high) or math.isnan(v):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return v


def check_choice(name: str, value: Any, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ValueError(f"{name} must be one of {', '.join(repr(v) for v in valid)}; got {value!r}")
    return value


def topk_keys(scores: Mapping[str, float], k: int) -> list[str]:
    """Keys of the ``k`` best scores, best first (ties broken by insertion order)."""
    items = list(scores.items())
    order = sorted(range(len(items)), key=lambda i: (-items[i][1], i))
    return [items[i][0] for i in order[:k]]
