"""Thin value-choice-aware versions of every ``torch.nn`` layer class.

``nasforge.nn.Conv2d(3, 16, 3)`` (no value choice among the arguments) returns an ordinary
``torch.nn.Conv2d``: the only cost is one scan of the arguments. With a value choice,
``nasforge.nn.Conv2d(3, ValueChoice([16, 32]), 3)`` builds a ``torch.nn.Conv2d`` subclass
instance at the first candidate and records the arguments; freezing rebuilds a plain
``torch.nn.Conv2d`` with the chosen values. ``isinstance(layer, torch.nn.Conv2d)`` holds in both
cases, and ``isinstance(layer, nasforge.nn.Conv2d)`` too.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from nasforge.nn.value import contains_value_choice, resolve_values

__all__ = ["ValueAwareMeta", "make_value_aware", "record_init", "init_arg_names"]


class ValueAwareMeta(type):
    """Metaclass of the wrappers: plain arguments give the plain torch class, zero overhead."""

    def __call__(cls, *args: Any, **kwargs: Any):
        if not (contains_value_choice(args) or contains_value_choice(kwargs)):
            base = cls.__dict__.get("_nf_base")
            return base(*args, **kwargs) if base is not None else super().__call__(*args, **kwargs)
        # mypy reads ``cls.__new__`` / ``cls.__init__`` as the metaclass's; here ``cls`` is the module class
        obj = cls.__new__(cls)  # type: ignore[call-overload]
        cls.__init__(obj, *resolve_values(args, None), **resolve_values(kwargs, None))  # type: ignore[misc]
        record_init(obj, args, kwargs)
        return obj

    def __instancecheck__(cls, instance: Any) -> bool:
        base = cls.__dict__.get("_nf_base")
        if base is not None:
            return isinstance(instance, base)
        return super().__instancecheck__(instance)

    def __subclasscheck__(cls, subclass: type) -> bool:
        base = cls.__dict__.get("_nf_base")
        if base is not None:
            return issubclass(subclass, base)
        return super().__subclasscheck__(subclass)


def record_init(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Remember constructor arguments holding value choices, to rebuild at freeze time."""
    object.__setattr__(module, "_nf_init", (args, kwargs))


_ARG_NAMES: dict[type, list[str]] = {}


def init_arg_names(cls: type) -> list[str]:
    """Names of the positional constructor parameters of ``cls`` (for automatic labels)."""
    names = _ARG_NAMES.get(cls)
    if names is None:
        try:
            # the class's own __init__ (mypy flags any access to __init__ of a class object as unsound)
            params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # type: ignore[misc]
            names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            names = []
        _ARG_NAMES[cls] = names
    return names


def make_value_aware(base: type[torch.nn.Module], module_name: str) -> type:
    """A subclass of ``base`` whose constructor accepts value choices."""
    return ValueAwareMeta(
        base.__name__,
        (base,),
        {
            "_nf_base": base,
            "__module__": module_name,
            "__qualname__": base.__name__,
            "__doc__": f"``torch.nn.{base.__name__}`` that also accepts value choices as arguments.\n\n{base.__doc__ or ''}",
        },
    )
