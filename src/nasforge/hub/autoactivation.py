"""``AutoActivation``: a searchable activation function (NNI's, after Ramachandran, Zoph & Le,
"Searching for Activation Functions", 2017).

The activation is built from *core units*: ``u_0(x)``, then for each unit ``k``
``out = b_k(out, u_k(x))`` with each unary ``u`` and binary ``b`` chosen from the paper's
function sets (``β`` is a learned scalar where it appears). Labels: ``<label>.unary_<k>``,
``<label>.binary_<k>``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

import nasforge.nn as nn
from nasforge.hub._common import PresetMixin, check_positive_int, layer_choice

__all__ = ["AutoActivation", "UNARY_OPS", "BINARY_OPS"]

_EPS = 1e-7


class _Unary(torch.nn.Module):
    """A unary function of :data:`UNARY_OPS`, by name (so frozen networks pickle)."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.beta = torch.nn.Parameter(torch.ones(())) if UNARY_OPS[name][1] else None

    def forward(self, x):
        return UNARY_OPS[self.name][0](x, self.beta)

    def extra_repr(self) -> str:
        return self.name


class _Binary(torch.nn.Module):
    """A binary function of :data:`BINARY_OPS`, by name."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.beta = torch.nn.Parameter(torch.ones(())) if BINARY_OPS[name][1] else None

    def forward(self, x, y):
        return BINARY_OPS[self.name][0](x, y, self.beta)

    def extra_repr(self) -> str:
        return self.name


#: name -> (function(x, β), uses β)
UNARY_OPS: dict[str, tuple[Callable, bool]] = {
    "x": (lambda x, b: x, False),
    "neg": (lambda x, b: -x, False),
    "abs": (lambda x, b: x.abs(), False),
    "square": (lambda x, b: x * x, False),
    "cube": (lambda x, b: x * x * x, False),
    "sqrt": (lambda x, b: torch.sqrt(x.abs() + _EPS), False),
    "beta_mul": (lambda x, b: b * x, True),
    "beta_add": (lambda x, b: x + b, True),
    "log": (lambda x, b: torch.log(x.abs() + _EPS), False),
    "exp": (lambda x, b: torch.exp(x.clamp(max=20)), False),
    "sin": (lambda x, b: torch.sin(x), False),
    "cos": (lambda x, b: torch.cos(x), False),
    "sinh": (lambda x, b: torch.sinh(x.clamp(-20, 20)), False),
    "cosh": (lambda x, b: torch.cosh(x.clamp(-20, 20)), False),
    "tanh": (lambda x, b: torch.tanh(x), False),
    "asinh": (lambda x, b: torch.asinh(x), False),
    "atan": (lambda x, b: torch.atan(x), False),
    "sinc": (lambda x, b: torch.sinc(x / torch.pi), False),
    "max0": (lambda x, b: x.clamp(min=0), False),
    "min0": (lambda x, b: x.clamp(max=0), False),
    "sigmoid": (lambda x, b: torch.sigmoid(x), False),
    "softplus": (lambda x, b: torch.nn.functional.softplus(x), False),
    "gauss": (lambda x, b: torch.exp(-x * x), False),
    "erf": (lambda x, b: torch.erf(x), False),
    "zero": (lambda x, b: x * 0.0, False),
    "one": (lambda x, b: x * 0.0 + 1.0, False),
}

#: name -> (function(x1, x2, β), uses β)
BINARY_OPS: dict[str, tuple[Callable, bool]] = {
    "add": (lambda x, y, b: x + y, False),
    "mul": (lambda x, y, b: x * y, False),
    "sub": (lambda x, y, b: x - y, False),
    "div": (lambda x, y, b: x / (y.abs() + _EPS) * torch.sign(y + _EPS), False),
    "max": (lambda x, y, b: torch.maximum(x, y), False),
    "min": (lambda x, y, b: torch.minimum(x, y), False),
    "sigmoid_mul": (lambda x, y, b: torch.sigmoid(x) * y, False),
    "gauss_dist": (lambda x, y, b: torch.exp(-b * (x - y) ** 2), True),
    "beta_mix": (lambda x, y, b: b * x + (1 - b) * y, True),
    "first": (lambda x, y, b: x, False),
}


class AutoActivation(PresetMixin, nn.ModelSpace):
    """A searchable elementwise activation of ``unit_num`` core units (see the module docstring).

    Use it as a layer of your own model space (its choices join yours) or on its own. Swish is
    ``{unary_0: "x", unary_1: "sigmoid", binary_0: "mul"}`` with ``unit_num=1``.

    Example::

        class Net(nn.ModelSpace):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(64, 32)
                self.act = AutoActivation(label="act")
                self.fc2 = nn.Linear(32, 10)
    """

    def __init__(self, unit_num: int = 1, label: str = "autoact"):
        super().__init__()
        check_positive_int("AutoActivation", unit_num=unit_num)
        if not isinstance(label, str) or not label or "." in label:
            raise ValueError(f"AutoActivation: label must be a non-empty string without '.', got {label!r}")
        self.unaries = torch.nn.ModuleList(
            layer_choice({name: _Unary(name) for name in UNARY_OPS}, f"{label}.unary_{k}")
            for k in range(unit_num + 1)
        )
        self.binaries = torch.nn.ModuleList(
            layer_choice({name: _Binary(name) for name in BINARY_OPS}, f"{label}.binary_{k}")
            for k in range(unit_num)
        )

    def forward(self, x):
        out = self.unaries[0](x)
        for unary, binary in zip(self.unaries[1:], self.binaries):
            out = binary(out, unary(x))
        return out
