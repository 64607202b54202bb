"""nasforge.ops: the standard candidate operations and their name registry."""

from __future__ import annotations

import pytest
import torch

import nasforge.nn as nn
from nasforge import ops
from nasforge.benchmarks.nasbench201 import OPS as NB201_OPS
from nasforge.profile import count_params

CELL_FAMILIES = ("darts", "nasnet", "nasbench201")
CELL_OPS = sorted({name for fam in CELL_FAMILIES for name in ops.op_names(fam)})


def test_families_in_the_papers_order():
    assert ops.op_names("darts") == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                                     "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
    assert ops.op_names("nasbench201") == NB201_OPS  # the benchmark's names, the same order
    assert ops.op_names("rnn") == ops.RNN_ACTIVATIONS
    assert set(ops.op_names("nasbench101")) == {"conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"}
    assert len(ops.op_names("enas")) == 6 and len(ops.op_names("shufflenet")) == 4


def test_every_op_names_its_paper():
    for name, spec in ops.OPS.items():
        assert spec.name == name
        assert "(" in spec.paper and any(str(y) in spec.paper for y in range(2017, 2021)), (name, spec.paper)


@pytest.mark.parametrize("name", CELL_OPS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [8, 7])
def test_cell_ops_keep_channels_and_stride_the_resolution(name, stride, size):
    op = ops.build_op(name, 6, 6, stride)
    x = torch.randn(2, 6, size, size, requires_grad=True)
    y = op(x)
    expected = size if stride == 1 else (size + 1) // 2
    assert y.shape == (2, 6, expected, expected)
    y.sum().backward()  # differentiable (the zero op gives zero gradients)


def test_cell_op_parameter_counts_follow_the_definitions():
    C = 10
    bn = 2 * C
    dil = lambda k: C * k * k + C * C + bn  # noqa: E731  depthwise + pointwise + BN
    assert count_params(ops.build_op("sep_conv_3x3", C)) == 2 * dil(3)
    assert count_params(ops.build_op("sep_conv_5x5", C)) == 2 * dil(5)
    assert count_params(ops.build_op("sep_conv_7x7", C)) == 2 * dil(7)
    assert count_params(ops.build_op("dil_conv_3x3", C)) == dil(3)
    assert count_params(ops.build_op("dil_conv_5x5", C)) == dil(5)
    assert count_params(ops.build_op("conv_7x1_1x7", C)) == 14 * C * C + bn
    assert count_params(ops.build_op("skip_connect", C, C, 2)) == C * C + bn  # factorized reduce
    assert count_params(ops.build_op("nor_conv_3x3", C)) == 9 * C * C + bn
    for free in ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect"):
        assert count_params(ops.build_op(free, C)) == 0


def test_dilated_conv_sees_a_wider_field_than_the_plain_one():
    x = torch.zeros(1, 4, 11, 11)
    x[..., 5, 5] = 1.0
    for name, reach in (("sep_conv_3x3", 2), ("dil_conv_3x3", 2), ("dil_conv_5x5", 4), ("sep_conv_5x5", 4)):
        op = ops.build_op(name, 4).eval()
        with torch.no_grad():
            y = op(x).abs().sum((0, 1))
        rows = (y > 0).any(1).nonzero().flatten()
        assert int(rows.max() - 5) == reach, name


def test_factorized_reduce_reads_both_pixel_phases():
    op = ops.FactorizedReduce(2, 4).eval()
    x = torch.zeros(1, 2, 4, 4)
    x[..., 1, 1] = 5.0  # only the shifted conv sees odd pixels
    with torch.no_grad():
        y = op(x) - op(torch.zeros_like(x))
    assert y[:, :2].abs().sum() == 0 and y[:, 2:].abs().sum() > 0
    with pytest.raises(ValueError, match="even"):
        ops.FactorizedReduce(3, 5)


def test_registry_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown op 'sep_conv_9x9'.*sep_conv_3x3"):
        ops.build_op("sep_conv_9x9", 4)
    with pytest.raises(ValueError, match="unknown op family 'foo'"):
        ops.op_names("foo")
    with pytest.raises(ValueError, match="already registered"):
        ops.register_op("sep_conv_3x3", "darts", "x (2019)", lambda ci, co, s: torch.nn.Identity())
    with pytest.raises(ValueError, match="keeps the channel count"):
        ops.build_op("max_pool_3x3", 4, 8)
    with pytest.raises(ValueError, match="stride 1 only"):
        ops.build_op("enas_conv_3x3", 4, 4, 2)
    with pytest.raises(ValueError, match="unknown activation 'relu7'"):
        ops.activation("relu7")


def test_register_a_new_op_and_use_it():
    name = "test_conv_1x1_only"
    ops.register_op(name, "test", "a test (2020)", lambda ci, co, s: nn.Conv2d(ci, co, 1, stride=s))
    try:
        assert ops.op_names("test") == (name,)
        assert ops.build_op(name, 3, 5, 2)(torch.randn(1, 3, 8, 8)).shape == (1, 5, 4, 4)
    finally:
        del ops.OPS[name]
        ops._FAMILIES.pop("test")


def test_ops_take_value_choices_and_freeze_to_the_chosen_width():
    class Net(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            w = nn.ValueChoice([4, 8], label="w")
            self.a = ops.ReLUConvBN(3, w, 3, 1, 1)
            self.b = ops.SepConv(w, w, 3, 1, 1)

        def forward(self, x):
            return self.b(self.a(x))

    space = Net()
    for w in (4, 8):
        net = space.freeze({"w": w})
        assert net(torch.randn(1, 3, 6, 6)).shape == (1, w, 6, 6)
        assert count_params(net.b) == 2 * (w * 9 + w * w + 2 * w)


@pytest.mark.parametrize("C_in,C_out,stride,ratio", [(16, 16, 1, 6), (16, 24, 2, 3), (24, 24, 1, 1), (80, 80, 1, 2.3)])
def test_inverted_residual(C_in, C_out, stride, ratio):
    block = ops.InvertedResidual(C_in, C_out, 5, stride, ratio, se=True, activation="hswish")
    assert block.use_residual == (stride == 1 and C_in == C_out)
    expected = C_in if ratio == 1 else ops.make_divisible(C_in * ratio, 8)
    assert block.expanded == expected
    first = block.conv[0]
    if ratio == 1:  # no expansion: the block starts with the depthwise conv
        assert first.groups == C_in and first.kernel_size == (5, 5)
    else:
        assert first.kernel_size == (1, 1) and (first.in_channels, first.out_channels) == (C_in, expected)
    assert block(torch.randn(2, C_in, 8, 8)).shape == (2, C_out, 8 // stride, 8 // stride)
    if block.use_residual:  # a zeroed projection leaves the identity
        torch.nn.init.zeros_(block.conv[-1].weight)
        torch.nn.init.zeros_(block.conv[-1].bias)
        x = torch.randn(2, C_in, 8, 8)
        assert torch.equal(block.eval()(x), x)


def test_squeeze_excite_scales_channels_between_zero_and_one():
    se = ops.SqueezeExcite(16)
    assert se.fc1.out_channels == 8  # make_divisible(16 // 4, 8)
    x = torch.rand(2, 16, 5, 5) + 0.1
    y = se(x)
    assert torch.all(y <= x + 1e-6) and torch.all(y >= 0)


@pytest.mark.parametrize("make", [lambda ci, co, s: ops.ShuffleNetV2Block(ci, co, 7, s),
                                  lambda ci, co, s: ops.ShuffleXceptionBlock(ci, co, s)])
def test_shufflenet_blocks(make):
    assert make(16, 48, 2)(torch.randn(2, 16, 8, 8)).shape == (2, 48, 4, 4)
    block = make(48, 48, 1)
    x = torch.randn(2, 48, 8, 8)
    y = block(x)
    assert y.shape == x.shape
    # half the channels pass through unchanged (after the shuffle): the even channels of x
    assert torch.equal(y[:, :24], x[:, 0::2])
    with pytest.raises(ValueError, match="keeps the width"):
        make(16, 32, 1)


def test_channel_shuffle_is_a_permutation():
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert ops.channel_shuffle(x, 2).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_make_divisible():
    assert ops.make_divisible(88.08) == 88 and ops.make_divisible(184.0) == 184
    assert ops.make_divisible(4) == 8 and ops.make_divisible(10) == 16  # never more than 10% down
