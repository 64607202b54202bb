"""Published parameter counts and multiply-adds of the hub's named archs, counted with
``nasforge.profile`` (no auxiliary head), one test each. Each builds the network once and runs
at most one forward pass on one image."""

from __future__ import annotations

import pytest
import torch

from nasforge.hub import archs
from nasforge.profile import count_flops, count_params


def within(value: float, published: float, tolerance: float = 0.05) -> bool:
    return abs(value - published) <= tolerance * published


def darts_params(genotype, C: int, layers: int, num_classes: int = 10, in_channels: int = 3, stem_multiplier: int = 3) -> int:
    """The parameter count of a DARTS CIFAR network, derived from the op definitions (not by
    building it): stem, per cell the two 1×1 (or factorized-reduce) preprocessing convs and the
    genotype's ops, the classifier."""

    def op(name: str, C: int, stride: int) -> int:
        dw_pw_bn = lambda k: C * k * k + C * C + 2 * C  # noqa: E731
        if name.startswith("sep_conv_"):
            return 2 * dw_pw_bn(int(name[-1]))
        if name.startswith("dil_conv_"):
            return dw_pw_bn(int(name[-1]))
        if name == "conv_7x1_1x7":
            return 14 * C * C + 2 * C
        if name == "skip_connect" and stride == 2:
            return C * C + 2 * C  # factorized reduce: two C -> C/2 1×1 convs and a BN
        assert name in ("none", "skip_connect", "max_pool_3x3", "avg_pool_3x3"), name
        return 0

    total = in_channels * stem_multiplier * C * 9 + 2 * stem_multiplier * C
    C_pp = C_p = stem_multiplier * C
    C_curr = C
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        if reduction:
            C_curr *= 2
        cell, concat = (genotype.reduce, genotype.reduce_concat) if reduction else (genotype.normal, genotype.normal_concat)
        total += (C_pp * C_curr + 2 * C_curr) + (C_p * C_curr + 2 * C_curr)  # preprocessing (1×1 conv or FR: same count)
        total += sum(op(name, C_curr, 2 if reduction and inp < 2 else 1) for name, inp in cell)
        C_pp, C_p = C_p, len(concat) * C_curr
    return total + C_p * num_classes + num_classes


def test_darts_v2_cifar10_36_channels_20_cells_has_3_3_million_parameters():
    net = archs.DARTS_V2.build()  # C=36, 20 cells, 10 classes, no auxiliary head
    n = count_params(net)
    assert within(n, 3.3e6)  # DARTS paper, Table 1 (second order): 3.3 M
    assert n == darts_params(archs.DARTS_V2.genotype, 36, 20)  # and every op has its defined size
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_darts_v1_has_3_3_million_parameters():
    n = count_params(archs.DARTS_V1.build())
    assert within(n, 3.3e6)  # DARTS paper, Table 1 (first order): 3.3 M
    assert n == darts_params(archs.DARTS_V1.genotype, 36, 20)


def test_amoebanet_a_at_the_darts_setting_has_3_2_million_parameters():
    n = count_params(archs.AMOEBANET_A.build())
    assert within(n, 3.2e6)  # DARTS paper, Table 1: AmoebaNet-A 3.2 M
    assert n == darts_params(archs.AMOEBANET_A.genotype, 36, 20)


def test_nasnet_a_at_the_darts_setting():
    """NASNet-A cannot match its published 3.3 M at the DARTS setting, and the test says why.

    DARTS' Table 1 copies 3.3 M from the NASNet paper, whose CIFAR network is not the DARTS
    network: NASNet-A (6 @ 768) has F = 32 filters (not 36), concatenates six tensors in its
    normal cell (the five new nodes and an unused cell input; DARTS' version concatenates the
    five nodes) and has its own reduction stem. The NASNet-A genotype as DARTS' code writes it,
    at C=36 with 20 cells, has 3.83 M parameters (16% more). What this test checks instead:
    the network has exactly the count derived from the op definitions (every op of the
    genotype at its defined size, cell widths from the loose ends), and is 10–20% above 3.3 M.
    """
    n = count_params(archs.NASNET_A.build())
    assert n == darts_params(archs.NASNET_A.genotype, 36, 20)
    assert 1.10 * 3.3e6 < n < 1.20 * 3.3e6


@pytest.mark.parametrize("name", ["PNASNET_5", "ENAS"])
def test_other_published_cells_have_their_derived_size(name):
    published = archs.ALL[name]
    net = published.build(C=16, layers=8)
    assert count_params(net) == darts_params(published.genotype, 16, 8)


def test_mobilenet_v3_large_has_5_4_million_parameters_and_219_million_multiply_adds():
    net = archs.MOBILENET_V3_LARGE.build()  # width 1.0, 1000 classes
    assert within(count_params(net), 5.4e6)  # MobileNetV3 paper, Table 3
    assert within(count_flops(net, (1, 3, 224, 224)) / 2, 219e6)


def test_mobilenet_v3_small_has_2_5_million_parameters_and_56_million_multiply_adds():
    net = archs.MOBILENET_V3_SMALL.build()
    assert within(count_params(net), 2.5e6)  # MobileNetV3 paper (final version), Table 4
    assert within(count_flops(net, (1, 3, 224, 224)) / 2, 56e6)


def test_proxyless_space_at_mobilenet_v2_choices_has_3_5_million_parameters_and_300_million_multiply_adds():
    net = archs.MOBILENET_V2.build()
    assert within(count_params(net), 3.5e6)  # MobileNetV2 paper, Table 4
    assert within(count_flops(net, (1, 3, 224, 224)) / 2, 300e6)


def test_darts_v2_recurrent_cell_on_ptb_has_23_million_parameters():
    n = count_params(archs.DARTS_V2_RNN.build())  # 850 units, 10,000 words, tied embedding
    assert within(n, 23e6)  # DARTS paper, Table 2: 23 M
    assert n == 10000 * 850 + 1700 * 1700 + 8 * 850 * 1700 + 10000
