"""What the hub spaces share: named layer choices, the fixed value of a label, and presets.

Only the public ``nasforge.nn`` choices are used. ``fixed_value`` reads the arch being built
under :func:`nasforge.fixed_arch` (``nasforge.fixed.current_fixed_arch``); the DARTS space uses
it to build cheap placeholders for cell candidates that a fixed arch never takes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch

import nasforge.nn as nn
from nasforge.fixed import current_fixed_arch

__all__ = ["MISSING", "fixed_value", "layer_choice", "PresetMixin", "check_positive_int"]

MISSING = object()


def fixed_value(label: str) -> Any:
    """The value of ``label`` in the arch being built under ``fixed_arch``, else :data:`MISSING`."""
    return (current_fixed_arch() or {}).get(label, MISSING)


def layer_choice(candidates: Mapping[str, torch.nn.Module], label: str) -> torch.nn.Module:
    """``nn.LayerChoice`` over named candidates, in their order.

    Every candidate is built, also under ``fixed_arch``: ``fixed_arch`` builds the whole space and
    then freezes it (one path with ``model.freeze``), so the labels nested inside candidates that
    the arch does not take must exist for the arch to be validated and made canonical.
    """
    return nn.LayerChoice(OrderedDict(candidates), label=label)


def check_positive_int(owner: str, **values: Any) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{owner}: {name} must be a positive integer, got {v!r}")


class PresetMixin:
    """``Space.preset(name, **kwargs)``: the published network; ``Space.presets()``: the names."""

    @classmethod
    def presets(cls) -> list[str]:
        """Names of the published archs of this space (see :mod:`nasforge.hub.archs`)."""
        from nasforge.hub import archs

        return [a.name for a in archs.ALL.values() if a.space is cls]

    @classmethod
    def preset_arch(cls, name: str):
        """The :class:`~nasforge.hub.archs.PublishedArch` called ``name`` of this space."""
        from nasforge.hub import archs

        found = [a for a in archs.ALL.values() if a.space is cls and a.name == name]
        if not found:
            raise ValueError(f"{cls.__name__} has no preset {name!r}; valid: {cls.presets()}")
        return found[0]

    @classmethod
    def preset(cls, name: str, **kwargs: Any) -> torch.nn.Module:
        """The published network ``name`` as a plain (frozen) module at the paper's setting.

        ``kwargs`` override the setting (e.g. ``num_classes=10``); the structure the arch needs
        (op set, number of nodes, stage layout) is part of the preset.
        """
        return cls.preset_arch(name).build(**kwargs)
