"""``import nasforge.nn as nn``: every ``torch.nn`` name, plus the choices of a model space.

Layer classes (``nn.Conv2d``, ``nn.Linear``, …) accept value choices as arguments; without one
they return the plain ``torch.nn`` object, at no extra cost.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as _tnn
from torch.nn import *  # noqa: F401,F403  (the drop-in promise: every public torch.nn name)
from torch.nn import functional, init, parameter, utils  # noqa: F401

from nasforge.nn.choices import Cell, ChoiceModule, InputChoice, LayerChoice, Repeat
from nasforge.nn.frozen import ChosenInputs, FrozenCell
from nasforge.nn.layers import make_value_aware
from nasforge.nn.modelspace import ModelSpace, Module, activate, discover, freeze_module
from nasforge.nn.value import ValueChoice, ValueExpr, choice, ensure_frozen

# Containers hold modules, not values: they stay the torch classes.
_NOT_WRAPPED = {"Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Container"}


def _wrap_torch_layers() -> list[str]:
    names = []
    for name in dir(_tnn):
        if name.startswith("_") or name in _NOT_WRAPPED:
            continue
        with warnings.catch_warnings():  # deprecated aliases (NLLLoss2d) warn on subclassing
            warnings.simplefilter("ignore")
            obj = getattr(_tnn, name)
            if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
                globals()[name] = make_value_aware(obj, __name__)
                names.append(name)
                continue
        if name not in globals():
            globals()[name] = obj
    return names


WRAPPED_LAYERS = _wrap_torch_layers()


def freeze(module: torch.nn.Module, arch: dict) -> torch.nn.Module:
    """Freeze any module holding nasforge choices (``ModelSpace.freeze`` for plain modules)."""
    space = module.__dict__.get("_nf_space") or discover(module)
    return freeze_module(module, space.validate(arch))


__all__ = [
    "Cell",
    "ChoiceModule",
    "ChosenInputs",
    "FrozenCell",
    "InputChoice",
    "LayerChoice",
    "ModelSpace",
    "Module",
    "Repeat",
    "ValueChoice",
    "ValueExpr",
    "activate",
    "choice",
    "discover",
    "ensure_frozen",
    "freeze",
    "freeze_module",
] + WRAPPED_LAYERS
