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
        path = os.fspath(arch_or_path)
        hint = "an arch file is the JSON object of label -> value written by Experiment.export / nasforge export"
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError:
            raise ValueError(f"arch file {path!r} is not text (binary content); {hint}") from None
        if not text.strip():
            raise ValueError(f"arch file {path!r} is empty; {hint}")
        try:
            arch = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"arch file {path!r} is not valid JSON ({exc}); {hint}") from None
        if not isinstance(arch, dict):
            raise ValueError(
                f"arch file {path!r} must hold an object of label -> value, "
                f"got {type(arch).__name__}"
            )
    elif isinstance(arch_or_path, Mapping):
        arch = dict(arch_or_path)
    else:
        raise TypeError(f"fixed_arch takes an arch dict or the path of its JSON file, got {type(arch_or_path).__name__}")
    return arch


@contextlib.contextmanager
def fixed_arch(arch: Mapping[str, Any] | str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Within this block, constructing a model space builds the frozen network of ``arch``.

    Example::

        with nasforge.fixed_arch("best.json"):
            net = Net()          # a plain torch module; no choice left in it
    """
    fixed = load_arch(arch)
    token = _FIXED.set(fixed)
    try:
        yield fixed
    finally:
        _FIXED.reset(token)


def current_fixed_arch() -> dict[str, Any] | None:
    return _FIXED.get()
