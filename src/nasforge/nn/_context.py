"""Construction-time state shared by the nn modules (context variables, no torch)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")

# How many ModelSpace __init__ calls are on the stack: the outermost one finalises the space.
init_depth: contextvars.ContextVar[int] = contextvars.ContextVar("nasforge_init_depth", default=0)
# Prefix for automatic labels when a sub-module is rebuilt on its own at freeze time.
label_prefix: contextvars.ContextVar[str] = contextvars.ContextVar("nasforge_label_prefix", default="")
# True while freezing rebuilds a module under the arch (labels outside it are expected).
rebuilding: contextvars.ContextVar[bool] = contextvars.ContextVar("nasforge_rebuilding", default=False)
# Free-standing choices used as concrete values by the model-space __init__ calls on the stack
# (innermost last): label -> (ValueChoice, key it was built with).
_free: contextvars.ContextVar[tuple[dict[str, tuple[Any, Any]], ...]] = contextvars.ContextVar("nasforge_free", default=())


def register_free_choice(leaf: Any, key: Any) -> None:
    """Record that the model space being constructed used ``leaf`` as the concrete value of ``key``."""
    stack = _free.get()
    if stack:
        stack[-1][leaf.label] = (leaf, key)


@contextlib.contextmanager
def setting(var: contextvars.ContextVar[T], value: T) -> Iterator[T]:
    """``var`` set to ``value`` within the block (restored after it, also on error)."""
    token = var.set(value)
    try:
        yield value
    finally:
        var.reset(token)


@contextlib.contextmanager
def collecting_free_choices() -> Iterator[dict[str, tuple[Any, Any]]]:
    """Collect the free-standing choices of one model-space construction."""
    mine: dict[str, tuple[Any, Any]] = {}
    with setting(_free, _free.get() + (mine,)):
        yield mine
