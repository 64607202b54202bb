"""Standard candidate operations of NAS papers, as plain modules, and one registry of their names.

Every op is an ordinary ``torch.nn.Module`` built from :mod:`nasforge.nn` layers, so a value
choice may be passed for a channel count (the layer is then rebuilt when the space is frozen);
without one they are plain torch layers at no extra cost.

The **registry** maps an op name to a factory ``factory(C_in, C_out, stride)`` so that search
spaces, exported archs and genotypes speak the same names::

    from nasforge import ops

    sep = ops.build_op("sep_conv_3x3", 16, 16, stride=2)       # DARTS' separable convolution
    ops.op_names("darts")                                        # ('none', 'max_pool_3x3', …)
    ops.OPS["nor_conv_3x3"].paper                                # 'NAS-Bench-201 (Dong & Yang, ICLR 2020)'

Families (``op_names(family)``):

* ``"darts"``: DARTS' eight primitives (Liu et al., ICLR 2019) in the paper's order;
* ``"nasnet"``: the extra ops of the NASNet / AmoebaNet / PNASNet cells as DARTS evaluates
  them (``sep_conv_7x7``, ``conv_7x1_1x7``);
* ``"nasbench201"``: NAS-Bench-201's five (Dong & Yang, ICLR 2020);
* ``"enas"``: the ENAS macro-space branches (Pham et al., ICML 2018);
* ``"nasbench101"``: NAS-Bench-101's three vertex ops (Ying et al., ICML 2019);
* ``"rnn"``: the recurrent-cell activations of ENAS / DARTS;
* ``"mobilenet"`` and ``"shufflenet"``: block ops (see :class:`InvertedResidual`,
  :class:`ShuffleNetV2Block`, :class:`ShuffleXceptionBlock`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

import nasforge.nn as nn

__all__ = [
    "OPS",
    "OpSpec",
    "build_op",
    "register_op",
    "op_names",
    "make_divisible",
    "Zero",
    "ReLUConvBN",
    "ConvBNReLU",
    "SepConv",
    "DilConv",
    "FactorizedReduce",
    "Conv7x1_1x7",
    "EnasConvBranch",
    "EnasPoolBranch",
    "SqueezeExcite",
    "InvertedResidual",
    "ShuffleNetV2Block",
    "ShuffleXceptionBlock",
    "channel_shuffle",
    "activation",
    "ACTIVATIONS",
    "RNN_ACTIVATIONS",
]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without going more than 10% down
    (the channel rule of MobileNetV2/V3 and their searched variants)."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return int(new)


# -- activations ------------------------------------------------------------------------------

class Identity(torch.nn.Module):
    """``f(x) = x`` (the recurrent ``identity`` activation; ``torch.nn.Identity`` takes arguments)."""

    def forward(self, x):
        return x


ACTIVATIONS: dict[str, Callable[[], torch.nn.Module]] = {
    "relu": lambda: torch.nn.ReLU(inplace=False),
    "relu6": lambda: torch.nn.ReLU6(inplace=False),
    "hswish": lambda: torch.nn.Hardswish(),
    "hsigmoid": lambda: torch.nn.Hardsigmoid(),
    "swish": lambda: torch.nn.SiLU(),
    "sigmoid": lambda: torch.nn.Sigmoid(),
    "tanh": lambda: torch.nn.Tanh(),
    "gelu": lambda: torch.nn.GELU(),
    "identity": lambda: Identity(),
}

#: The activations a recurrent-cell node chooses among (ENAS, DARTS; ``identity`` included).
RNN_ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "sigmoid", "identity")


def activation(name: str | Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """An activation module from its name (see :data:`ACTIVATIONS`) or a zero-argument factory."""
    if callable(name) and not isinstance(name, str):
        module = name()
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"activation factory returned {type(module).__name__}, expected a torch.nn.Module")
        return module
    try:
        return ACTIVATIONS[name]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(sorted(ACTIVATIONS))}") from None


# -- cell ops (DARTS, NAS-Bench-201, NASNet) ----------------------------------------------------

class Zero(torch.nn.Module):
    """The ``none`` op: the edge carries zeros (strided like the other ops of its edge).

    DARTS (Liu et al., ICLR 2019) and NAS-Bench-201 (Dong & Yang, ICLR 2020).
    """

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


class ReLUConvBN(torch.nn.Sequential):
    """ReLU → Conv2d (no bias) → BatchNorm: NAS-Bench-201's ``nor_conv_kxk`` and DARTS'
    preprocessing op (Liu et al., ICLR 2019; Dong & Yang, ICLR 2020)."""

    def __init__(self, C_in: Any, C_out: Any, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, affine: bool = True):
        super().__init__(
            torch.nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class ConvBNReLU(torch.nn.Sequential):
    """Conv2d (no bias) → BatchNorm → ReLU: NAS-Bench-101's ``conv3x3-bn-relu`` / ``conv1x1-bn-relu``
    and its projections (Ying et al., ICML 2019)."""

    def __init__(self, C_in: Any, C_out: Any, kernel_size: int, stride: int = 1, padding: int | None = None):
        padding = kernel_size // 2 if padding is None else padding
        super().__init__(
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out),
            torch.nn.ReLU(inplace=False),
        )


class DilConv(torch.nn.Sequential):
    """ReLU → dilated depthwise conv → pointwise conv → BatchNorm: DARTS' ``dil_conv_3x3/5x5``
    (Liu et al., ICLR 2019)."""

    def __init__(self, C_in: Any, C_out: Any, kernel_size: int, stride: int, padding: int, dilation: int,
                 affine: bool = True):
        super().__init__(
            torch.nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=C_in,
                      bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(torch.nn.Sequential):
    """DARTS' separable convolution ``sep_conv_kxk``: two stacked (ReLU → depthwise conv →
    pointwise conv → BatchNorm), the first strided (Liu et al., ICLR 2019, after NASNet's
    Zoph et al., CVPR 2018)."""

    def __init__(self, C_in: Any, C_out: Any, kernel_size: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine),
        )


class FactorizedReduce(torch.nn.Module):
    """Halve the resolution without losing pixels: ReLU, two stride-2 1×1 convs (the second on
    the input shifted by one pixel), concatenated, BatchNorm. DARTS' ``skip_connect`` at stride 2
    and its reduction preprocessing (Liu et al., ICLR 2019, after NASNet)."""

    def __init__(self, C_in: Any, C_out: Any, affine: bool = True):
        super().__init__()
        if isinstance(C_out, int) and C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got C_out={C_out}")
        self.relu = torch.nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]  # odd sizes keep both halves the same shape
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Conv7x1_1x7(torch.nn.Sequential):
    """ReLU → 1×7 conv → 7×1 conv → BatchNorm: the ``conv_7x1_1x7`` op of AmoebaNet-A's
    reduction cell (Real et al., AAAI 2019) as DARTS evaluates it."""

    def __init__(self, C_in: Any, C_out: Any, stride: int, affine: bool = True):
        super().__init__(
            torch.nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(C_in, C_out, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


def _same_channels(name: str, C_in: Any, C_out: Any) -> None:
    if isinstance(C_in, int) and isinstance(C_out, int) and C_in != C_out:
        raise ValueError(f"op {name!r} keeps the channel count; got C_in={C_in}, C_out={C_out}")


# -- ENAS macro-space branches ------------------------------------------------------------------

class EnasConvBranch(torch.nn.Module):
    """ENAS macro-space convolution branch: 1×1 conv-BN-ReLU, then a k×k (optionally depthwise-
    separable) conv-BN-ReLU (Pham et al., ICML 2018)."""

    def __init__(self, C_in: Any, C_out: Any, kernel_size: int, separable: bool):
        super().__init__()
        self.preproc = ConvBNReLU(C_in, C_out, 1)
        pad = kernel_size // 2
        self.conv: torch.nn.Module
        if separable:
            self.conv = torch.nn.Sequential(
                nn.Conv2d(C_out, C_out, kernel_size, padding=pad, groups=C_out, bias=False),
                nn.Conv2d(C_out, C_out, 1, bias=False),
            )
        else:
            self.conv = nn.Conv2d(C_out, C_out, kernel_size, padding=pad, bias=False)
        self.post = torch.nn.Sequential(nn.BatchNorm2d(C_out), torch.nn.ReLU(inplace=False))

    def forward(self, x):
        return self.post(self.conv(self.preproc(x)))


class EnasPoolBranch(torch.nn.Module):
    """ENAS macro-space pooling branch: 1×1 conv-BN-ReLU, then 3×3 max or average pooling
    (Pham et al., ICML 2018)."""

    def __init__(self, C_in: Any, C_out: Any, pool: str):
        super().__init__()
        self.preproc = ConvBNReLU(C_in, C_out, 1)
        self.pool: torch.nn.Module
        if pool == "max":
            self.pool = torch.nn.MaxPool2d(3, stride=1, padding=1)
        elif pool == "avg":
            self.pool = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        else:
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")

    def forward(self, x):
        return self.pool(self.preproc(x))


# -- MobileNetV2/V3 -------------------------------------------------------------------------------

class SqueezeExcite(torch.nn.Module):
    """Squeeze-and-excitation as MobileNetV3 uses it: global pool, 1×1 conv → ReLU → 1×1 conv →
    hard sigmoid, scaling the channels (Hu et al., CVPR 2018; Howard et al., ICCV 2019).
    ``squeeze_channels`` defaults to ``make_divisible(channels // 4, 8)``."""

    def __init__(self, channels: int, squeeze_channels: int | None = None, gate: str = "hsigmoid"):
        super().__init__()
        squeeze = make_divisible(channels // 4, 8) if squeeze_channels is None else squeeze_channels
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.relu = torch.nn.ReLU(inplace=False)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = activation(gate)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.relu(self.fc1(s))))


def _conv_bn(C_in: int, C_out: int, kernel: int, stride: int = 1, groups: int = 1) -> list[torch.nn.Module]:
    return [nn.Conv2d(C_in, C_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(C_out)]


class InvertedResidual(torch.nn.Module):
    """MobileNetV2's inverted-residual block (MBConv), with MobileNetV3's options.

    1×1 expansion conv-BN-act (omitted when the expanded width equals ``C_in``), k×k depthwise
    conv-BN-act with ``stride``, optional squeeze-excite, 1×1 projection conv-BN; a residual
    connection when ``stride == 1`` and ``C_in == C_out`` (Sandler et al., CVPR 2018; Howard et
    al., ICCV 2019; ProxylessNAS' MBConv candidates, Cai et al., ICLR 2019).

    * ``expand_ratio``: the expanded width is ``make_divisible(C_in * expand_ratio, 8)`` (``C_in``
      for a ratio of 1), or give ``expanded_channels`` directly;
    * ``kernel``: an int, or a factory ``(channels, stride) -> module`` for the depthwise
      conv (+BN) — a search space passes a ``LayerChoice`` of kernels there;
    * ``se``: ``False``, ``True`` or a factory ``(channels) -> module`` (e.g. a choice between
      :class:`SqueezeExcite` and identity);
    * ``activation``: a name (``"relu"``, ``"relu6"``, ``"hswish"``, …) or a zero-argument factory.
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel: int | Callable[[int, int], torch.nn.Module] = 3,
        stride: int = 1,
        expand_ratio: float = 6,
        se: bool | Callable[[int], torch.nn.Module] = False,
        activation: str | Callable[[], torch.nn.Module] = "relu6",
        expanded_channels: int | None = None,
    ):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride!r}")
        if expanded_channels is None:
            expanded_channels = C_in if expand_ratio == 1 else make_divisible(C_in * expand_ratio, 8)
        self.C_in, self.C_out, self.stride, self.expanded = C_in, C_out, stride, expanded_channels
        self.use_residual = stride == 1 and C_in == C_out
        layers: list[torch.nn.Module] = []
        if expanded_channels != C_in:
            layers += _conv_bn(C_in, expanded_channels, 1) + [_act(activation)]
        if callable(kernel):
            layers.append(kernel(expanded_channels, stride))
        else:
            layers += _conv_bn(expanded_channels, expanded_channels, int(kernel), stride, groups=expanded_channels)
        layers.append(_act(activation))
        if se is True:
            layers.append(SqueezeExcite(expanded_channels))
        elif callable(se):
            layers.append(se(expanded_channels))
        layers += _conv_bn(expanded_channels, C_out, 1)
        self.conv = torch.nn.Sequential(*layers)

    def forward(self, x):
        out = self.conv(x)
        return x + out if self.use_residual else out


def _act(spec: str | Callable[[], torch.nn.Module]) -> torch.nn.Module:
    return activation(spec)


# -- ShuffleNetV2 / SPOS -------------------------------------------------------------------------

def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """ShuffleNet's channel shuffle (Zhang et al., CVPR 2018)."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class _ShuffleBase(torch.nn.Module):
    def __init__(self, C_in: int, C_out: int, stride: int, kernel: int):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"{type(self).__name__}: stride must be 1 or 2, got {stride!r}")
        if stride == 1 and C_in != C_out:
            raise ValueError(f"{type(self).__name__}: a stride-1 block keeps the width; got C_in={C_in}, C_out={C_out}")
        if C_out % 2 or C_in % 2:
            raise ValueError(f"{type(self).__name__}: channel counts must be even, got {C_in} -> {C_out}")
        self.stride = stride
        pad = kernel // 2
        # stride 1: half the channels pass through, the branch maps the other half
        self.branch_in = C_in // 2 if stride == 1 else C_in
        self.branch_out = C_out - self.branch_in
        self.mid = C_out // 2
        if stride == 2:
            self.proj = torch.nn.Sequential(
                nn.Conv2d(C_in, C_in, kernel, stride=2, padding=pad, groups=C_in, bias=False),
                nn.BatchNorm2d(C_in),
                nn.Conv2d(C_in, C_in, 1, bias=False),
                nn.BatchNorm2d(C_in),
                torch.nn.ReLU(inplace=False),
            )

    def forward(self, x):
        if self.stride == 1:  # the channel shuffle of the previous unit, then the split, as SPOS writes it
            return torch.cat([x[:, 0::2], self.branch(x[:, 1::2])], dim=1)
        return torch.cat([self.proj(x), self.branch(x)], dim=1)


class ShuffleNetV2Block(_ShuffleBase):
    """ShuffleNetV2 unit with a k×k depthwise conv (k = 3, 5, 7 in SPOS): 1×1 conv-BN-ReLU,
    depthwise conv-BN, 1×1 conv-BN-ReLU on one half of the channels (stride 1) or on all of
    them beside a depthwise projection branch (stride 2); channel shuffle (Ma et al., ECCV 2018;
    SPOS' choice blocks, Guo et al., ECCV 2020)."""

    def __init__(self, C_in: int, C_out: int, kernel: int = 3, stride: int = 1):
        super().__init__(C_in, C_out, stride, kernel)
        mid, pad = self.mid, kernel // 2
        self.branch = torch.nn.Sequential(
            nn.Conv2d(self.branch_in, mid, 1, bias=False), nn.BatchNorm2d(mid), torch.nn.ReLU(inplace=False),
            nn.Conv2d(mid, mid, kernel, stride=stride, padding=pad, groups=mid, bias=False), nn.BatchNorm2d(mid),
            nn.Conv2d(mid, self.branch_out, 1, bias=False), nn.BatchNorm2d(self.branch_out),
            torch.nn.ReLU(inplace=False),
        )


class ShuffleXceptionBlock(_ShuffleBase):
    """SPOS' Xception-like choice block: three (3×3 depthwise conv-BN, 1×1 conv-BN-ReLU) in the
    branch of a ShuffleNetV2 unit (Guo et al., ECCV 2020)."""

    def __init__(self, C_in: int, C_out: int, stride: int = 1):
        super().__init__(C_in, C_out, stride, 3)
        mid, bi, bo = self.mid, self.branch_in, self.branch_out
        self.branch = torch.nn.Sequential(
            nn.Conv2d(bi, bi, 3, stride=stride, padding=1, groups=bi, bias=False), nn.BatchNorm2d(bi),
            nn.Conv2d(bi, mid, 1, bias=False), nn.BatchNorm2d(mid), torch.nn.ReLU(inplace=False),
            nn.Conv2d(mid, mid, 3, padding=1, groups=mid, bias=False), nn.BatchNorm2d(mid),
            nn.Conv2d(mid, mid, 1, bias=False), nn.BatchNorm2d(mid), torch.nn.ReLU(inplace=False),
            nn.Conv2d(mid, mid, 3, padding=1, groups=mid, bias=False), nn.BatchNorm2d(mid),
            nn.Conv2d(mid, bo, 1, bias=False), nn.BatchNorm2d(bo), torch.nn.ReLU(inplace=False),
        )


# -- the registry ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class OpSpec:
    """A registered op: its name, ``factory(C_in, C_out, stride)``, family and source paper."""

    name: str
    factory: Callable[..., torch.nn.Module]
    family: str
    paper: str

    def __call__(self, C_in: Any, C_out: Any, stride: int = 1) -> torch.nn.Module:
        return self.factory(C_in, C_out, stride)


#: name -> :class:`OpSpec`; extend it with :func:`register_op`.
OPS: dict[str, OpSpec] = {}
_FAMILIES: dict[str, list[str]] = {}


def register_op(name: str, family: str, paper: str, factory: Callable[..., torch.nn.Module] | None = None):
    """Register ``factory(C_in, C_out, stride) -> module`` under ``name`` (usable as a decorator).

    A name is registered once; registering it again with another factory is an error.
    """

    def add(f: Callable[..., torch.nn.Module]):
        if not isinstance(name, str) or not name:
            raise ValueError(f"an op name must be a non-empty string, got {name!r}")
        old = OPS.get(name)
        if old is not None and old.factory is not f:
            raise ValueError(f"op {name!r} is already registered (family {old.family!r}); choose another name")
        OPS[name] = OpSpec(name, f, family, paper)
        members = _FAMILIES.setdefault(family, [])
        if name not in members:
            members.append(name)
        return f

    return add(factory) if factory is not None else add


def build_op(name: str, C_in: Any, C_out: Any | None = None, stride: int = 1) -> torch.nn.Module:
    """The module of the registered op ``name`` (``C_out`` defaults to ``C_in``)."""
    spec = OPS.get(name)
    if spec is None:
        raise ValueError(f"unknown op {name!r}; registered ops: {', '.join(sorted(OPS))}")
    if stride not in (1, 2):
        raise ValueError(f"op {name!r}: stride must be 1 or 2, got {stride!r}")
    return spec(C_in, C_in if C_out is None else C_out, stride)


def op_names(family: str | None = None) -> tuple[str, ...]:
    """The registered op names of ``family`` in registration order (every name when None)."""
    if family is None:
        return tuple(OPS)
    if family not in _FAMILIES:
        raise ValueError(f"unknown op family {family!r}; valid: {', '.join(sorted(_FAMILIES))}")
    return tuple(_FAMILIES[family])


_DARTS = "DARTS (Liu, Simonyan & Yang, ICLR 2019)"
_NB201 = "NAS-Bench-201 (Dong & Yang, ICLR 2020)"


def _same_width(name: str, factory: Callable[[int], torch.nn.Module]) -> Callable[..., Any]:
    """The factory of op ``name``, which keeps the channel count: ``factory(stride)``."""

    def make(C_in, C_out, stride):
        _same_channels(name, C_in, C_out)
        return factory(stride)

    return make


def _skip(C_in, C_out, stride):
    if stride == 1:
        _same_channels("skip_connect", C_in, C_out)
        return Identity()
    return FactorizedReduce(C_in, C_out)


# DARTS' primitives, in the order of its PRIMITIVES list (the search space of the paper).
register_op("none", "darts", f"{_DARTS}; also {_NB201}", _same_width("none", Zero))
register_op("max_pool_3x3", "darts", _DARTS,
            _same_width("max_pool_3x3", lambda s: torch.nn.MaxPool2d(3, s, padding=1)))
register_op("avg_pool_3x3", "darts", f"{_DARTS}; also {_NB201} (stride 1)", _same_width(
    "avg_pool_3x3", lambda s: torch.nn.AvgPool2d(3, s, padding=1, count_include_pad=False)))
register_op("skip_connect", "darts", f"{_DARTS} (stride 2: FactorizedReduce); also {_NB201}", _skip)
register_op("sep_conv_3x3", "darts", _DARTS, lambda ci, co, s: SepConv(ci, co, 3, s, 1))
register_op("sep_conv_5x5", "darts", _DARTS, lambda ci, co, s: SepConv(ci, co, 5, s, 2))
register_op("dil_conv_3x3", "darts", _DARTS, lambda ci, co, s: DilConv(ci, co, 3, s, 2, 2))
register_op("dil_conv_5x5", "darts", _DARTS, lambda ci, co, s: DilConv(ci, co, 5, s, 4, 2))
# Ops of the NASNet-A / AmoebaNet-A / PNASNet-5 cells outside DARTS' set (DARTS' evaluation code has them).
register_op("sep_conv_7x7", "nasnet", "NASNet (Zoph et al., CVPR 2018); as implemented by DARTS",
            lambda ci, co, s: SepConv(ci, co, 7, s, 3))
register_op("conv_7x1_1x7", "nasnet", "AmoebaNet-A (Real et al., AAAI 2019); as implemented by DARTS",
            lambda ci, co, s: Conv7x1_1x7(ci, co, s))
# NAS-Bench-201 (its none / skip_connect / avg_pool_3x3 are the DARTS ones above at stride 1).
register_op("nor_conv_1x1", "nasbench201", _NB201, lambda ci, co, s: ReLUConvBN(ci, co, 1, s, 0))
register_op("nor_conv_3x3", "nasbench201", _NB201, lambda ci, co, s: ReLUConvBN(ci, co, 3, s, 1))
_FAMILIES["nasbench201"][:0] = ["none", "skip_connect"]
_FAMILIES["nasbench201"].append("avg_pool_3x3")


def _stride1(name: str, factory: Callable[[Any, Any], torch.nn.Module]) -> Callable[..., torch.nn.Module]:
    def make(C_in, C_out, stride):
        if stride != 1:
            raise ValueError(f"op {name!r} has stride 1 only (its space reduces with separate layers)")
        return factory(C_in, C_out)

    return make


_ENAS = "ENAS macro space (Pham et al., ICML 2018)"
register_op("enas_conv_3x3", "enas", _ENAS, _stride1("enas_conv_3x3", lambda ci, co: EnasConvBranch(ci, co, 3, False)))
register_op("enas_sep_conv_3x3", "enas", _ENAS, _stride1("enas_sep_conv_3x3", lambda ci, co: EnasConvBranch(ci, co, 3, True)))
register_op("enas_conv_5x5", "enas", _ENAS, _stride1("enas_conv_5x5", lambda ci, co: EnasConvBranch(ci, co, 5, False)))
register_op("enas_sep_conv_5x5", "enas", _ENAS, _stride1("enas_sep_conv_5x5", lambda ci, co: EnasConvBranch(ci, co, 5, True)))
register_op("enas_max_pool_3x3", "enas", _ENAS, _stride1("enas_max_pool_3x3", lambda ci, co: EnasPoolBranch(ci, co, "max")))
register_op("enas_avg_pool_3x3", "enas", _ENAS, _stride1("enas_avg_pool_3x3", lambda ci, co: EnasPoolBranch(ci, co, "avg")))

_NB101 = "NAS-Bench-101 (Ying et al., ICML 2019)"


def _nb101_pool(C_in, C_out):
    _same_channels("maxpool3x3", C_in, C_out)
    return torch.nn.MaxPool2d(3, stride=1, padding=1)


register_op("conv3x3-bn-relu", "nasbench101", _NB101, _stride1("conv3x3-bn-relu", lambda ci, co: ConvBNReLU(ci, co, 3)))
register_op("conv1x1-bn-relu", "nasbench101", _NB101, _stride1("conv1x1-bn-relu", lambda ci, co: ConvBNReLU(ci, co, 1)))
register_op("maxpool3x3", "nasbench101", _NB101, _stride1("maxpool3x3", _nb101_pool))

_RNN = "ENAS (Pham et al., ICML 2018) and DARTS (Liu et al., ICLR 2019) recurrent cells"
for _name in RNN_ACTIVATIONS:
    register_op(_name, "rnn", _RNN, (lambda n: lambda C_in=None, C_out=None, stride=1: activation(n))(_name))

_MB = "MobileNetV2 (Sandler et al., CVPR 2018) / ProxylessNAS (Cai et al., ICLR 2019) MBConv"
for _k in (3, 5, 7):
    for _e in (1, 3, 4, 6):
        register_op(f"mb_k{_k}_e{_e}", "mobilenet", _MB,
                    (lambda k, e: lambda ci, co, s: InvertedResidual(ci, co, k, s, e, activation="relu6"))(_k, _e))
        register_op(f"mb_k{_k}_e{_e}_se", "mobilenet", "MobileNetV3 (Howard et al., ICCV 2019) MBConv with SE and h-swish",
                    (lambda k, e: lambda ci, co, s: InvertedResidual(ci, co, k, s, e, se=True, activation="hswish"))(_k, _e))

_SPOS = "SPOS (Guo et al., ECCV 2020), ShuffleNetV2 (Ma et al., ECCV 2018)"
for _k in (3, 5, 7):
    register_op(f"shufflenet_{_k}x{_k}", "shufflenet", _SPOS,
                (lambda k: lambda ci, co, s: ShuffleNetV2Block(ci, co, k, s))(_k))
register_op("xception_3x3", "shufflenet", _SPOS, lambda ci, co, s: ShuffleXceptionBlock(ci, co, s))
