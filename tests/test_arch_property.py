"""Property test: over every model space in the repository (tests, examples, NAS-Bench-201), for
50 sampled archs each, ``model.freeze(arch)`` and ``fixed_arch(arch)`` build the same network
(module types, parameter shapes, ``state_dict`` keys), both accept the canonical and the full
form of the arch, and the frozen network runs forward."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest
import torch

import nasforge

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))

from mnist1d_space import Mnist1dSpace  # noqa: E402

from nasforge.benchmarks.nasbench201 import NasBench201Space  # noqa: E402
from nasforge.benchmarks.seed_model import Net  # noqa: E402
from tests.test_arch_defects import Deep, Values  # noqa: E402
from tests.test_evaluate import Tiny  # noqa: E402
from tests.test_expressiveness import FreeStanding  # noqa: E402
from tests.test_expressiveness import Tiny as TinyTied  # noqa: E402
from tests.test_nn import Net1d, make_cell_space  # noqa: E402
from tests.test_oneshot import CellSpace  # noqa: E402

N_ARCHS = 50


def _nb201():
    class NB201Small(NasBench201Space):
        def __init__(self):
            super().__init__(C=4, N=1, num_classes=10)

    return NB201Small


def _cells(merge_op, ops):
    cls = make_cell_space(merge_op, ops)
    return cls


SPACES = {
    # name: (class (constructed without arguments), input for an arch or None when it has no forward)
    "seed_model.Net": (Net, lambda arch: torch.randn(2, 3, 32, 32)),
    "examples.Mnist1dSpace": (Mnist1dSpace, lambda arch: torch.randn(2, 1, 40)),
    "NasBench201Space": (_nb201(), lambda arch: torch.randn(2, 3, 8, 8)),
    "test_nn.Net1d": (Net1d, lambda arch: torch.randn(2, 1, 40)),
    "test_nn.cells_all": (_cells("last", "all"), lambda arch: torch.randn(2, 4, 8, 8)),
    "test_nn.cells_loose_end": (_cells("loose_end", 2), None),  # concatenated channels vary by arch
    "test_nn.cells_last_1": (_cells("last", 1), lambda arch: torch.randn(2, 4, 8, 8)),
    "test_oneshot.CellSpace": (CellSpace, lambda arch: torch.randn(2, 3, 16, 16)),
    "test_evaluate.Tiny": (Tiny, lambda arch: torch.randn(2, 4)),
    "test_expressiveness.Tiny": (TinyTied, lambda arch: torch.randn(2, 4)),
    "test_expressiveness.FreeStanding": (FreeStanding, lambda arch: torch.randn(3, arch["dim"])),
    "test_arch_defects.Deep": (Deep, lambda arch: torch.randn(2, 1, 10)),
    "test_arch_defects.Values": (Values, None),
}


def signature(net: torch.nn.Module):
    return (
        [type(m) for m in net.modules()],
        [(k, tuple(v.shape)) for k, v in net.state_dict().items()],
    )


@pytest.mark.parametrize("name", sorted(SPACES))
def test_freeze_and_fixed_arch_build_the_same_network(name):
    cls, make_input = SPACES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Values merges duplicate candidates on purpose
        model = cls()
    space = model.space
    rng = np.random.default_rng(0)
    for _ in range(N_ARCHS):
        canonical = space.sample(rng)
        full = space.complete(canonical, rng)  # every label, the inactive ones at random values
        assert space.canonical(full) == canonical
        assert set(full) == set(space.labels)
        frozen = model.freeze(canonical)
        expected = signature(frozen)
        assert signature(model.freeze(full)) == expected
        with nasforge.fixed_arch(canonical):
            direct = cls()
        assert signature(direct) == expected
        with nasforge.fixed_arch(full):
            assert signature(cls()) == expected
        assert signature(cls.build(canonical)) == expected
        direct.load_state_dict(frozen.state_dict())  # interchangeable weights
        assert not any(isinstance(m, nasforge.nn.ChoiceModule) for m in frozen.modules())
        if make_input is not None:
            frozen.eval()
            with torch.no_grad():
                out = frozen(make_input(canonical))
            assert torch.isfinite(out).all()
