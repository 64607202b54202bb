"""Construction-time state shared by the nn modules (context variables, no torch)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

# How many ModelSpace __init__ calls are on the stack: the outermost one finalises the space.
init_depth: contextvars.ContextVar[int] = contextvars.ContextVar("nasforge_init_depth", default=0)
# Prefix for automatic labels when a sub-module is rebuilt on its own at freeze time.
label_prefix: contextvars.ContextVar[str] = contextvars.ContextVar("nasforge_label_prefix", default="")
# Labels of a fixed arch already resolved at construction (explicitly labelled choices).
_consumed: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("nasforge_consumed", default=None)


def consume_label(label: str) -> None:
    consumed = _consumed.get()
    if consumed is not None:
        consumed.add(label)


def consumed_labels() -> set[str]:
    return set(_consumed.get() or ())


@contextlib.contextmanager
def tracking_consumed() -> Iterator[set[str]]:
    """Collect the labels resolved while a fixed-arch space is being constructed."""
    existing = _consumed.get()
    if existing is not None:
        yield existing
        return
    token = _consumed.set(set())
    try:
        yield _consumed.get()
    finally:
        _consumed.reset(token)


@contextlib.contextmanager
def with_label_prefix(prefix: str) -> Iterator[None]:
    token = label_prefix.set(prefix)
    try:
        yield
    finally:
        label_prefix.reset(token)
