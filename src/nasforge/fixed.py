"""``fixed_arch``: construct a model space directly as the frozen network of one arch.

Torch-free: it only keeps the arch in a context variable that ``nasforge.nn`` consults.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["fixed_arch", "current_fixed_arch", "load_arch"]

_FIXED: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("nasforge_fixed_arch", default=None)


def load_arch(arch_or_path: Mapping[str, Any] | str | os.PathLike) -> dict[str, Any]:
    """An arch dict from a dict or from the path of its JSON file (as written by ``export``)."""
    if isinstance(arch_or_path, (str, os.PathLike)):
        with open(arch_or_path) as f:
            arch = json.load(f)
    elif isinstance(arch_or_path, Mapping):
        arch = dict(arch_or_path)
    else:
        raise TypeError(f"fixed_arch takes an arch dict or the path of its JSON file, got {type(arch_or_path).__name__}")
    if not isinstance(arch, dict):
        raise ValueError(f"the arch JSON must hold an object of label -> value, got {type(arch).__name__}")
    return arch


@contextlib.contextmanager
def fixed_arch(arch: Mapping[str, Any] | str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Within this block, constructing a model space builds the frozen network of ``arch``.

    Example::

        with nasforge.fixed_arch("best.json"):
            net = Net()          # a plain torch module; no choice left in it
    """
    token = _FIXED.set(load_arch(arch))
    try:
        yield _FIXED.get()
    finally:
        _FIXED.reset(token)


def current_fixed_arch() -> dict[str, Any] | None:
    return _FIXED.get()
