"""Issue 8's defects 1-7: each test failed on the main branch before the fix.

An arch means one network: whatever the candidates are, by whichever entry point.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

import nasforge
import nasforge.nn as nn
from nasforge import Experiment
from nasforge.errors import InvalidArchError, InvalidSpaceError
from nasforge.evaluate import FunctionEvaluator
from nasforge.store import StoreConflictError
from nasforge.strategy import GridSearch


def same_network(a: torch.nn.Module, b: torch.nn.Module) -> None:
    assert [type(m) for m in a.modules()] == [type(m) for m in b.modules()]
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(sa[k].shape == sb[k].shape for k in sa)


# -- 1. value choices whose candidates are not distinct JSON scalars ------------------------------


class Act(nn.Module):
    """Applies whatever it was given: a function or a module."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class Values(nn.Module):
    def __init__(self):
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.fc = nn.Linear(4, nn.ValueChoice([8, 8, 16, 32], label="width"))
            self.out_width = nn.ValueChoice([8, 8, 16, 32], label="width")
        self.act = Act(nn.ValueChoice([F.relu, F.gelu, torch.tanh], label="act"))
        self.conv = nn.Conv2d(1, 2, nn.ValueChoice([(1, 3), (3, 1), (3, 3)], label="kernel"), padding="same")
        cfg = nn.ValueChoice([{"p": 0.1, "n": 2}, {"p": 0.5, "n": 3}], label="cfg")
        self.drop = nn.Dropout(cfg["p"])
        self.out = nn.Linear(self.out_width, cfg["n"])
        self.mod = Act(nn.ValueChoice([nn.ReLU(), nn.Sigmoid()], label="mod"))
        self.scale = nn.Dropout(nn.ValueChoice([0.0, 0.25, 0.5], label="p"))


def test_duplicate_value_candidates_merge_with_a_warning():
    with pytest.warns(UserWarning, match="'width'.*duplicate.*\\[8, 8, 16, 32\\] -> \\[8, 16, 32\\]"):
        nn.ValueChoice([8, 8, 16, 32], label="width")


@pytest.mark.parametrize("entry", ["freeze", "fixed_arch", "build"])
def test_every_candidate_kind_reaches_the_layer_itself(entry):
    model = Values()
    space = model.space
    assert space["width"].values == [8, 16, 32]
    assert space["act"].values == [0, 1, 2] and space["cfg"].values == [0, 1]
    assert space["kernel"].values == [[1, 3], [3, 1], [3, 3]] and space["p"].values == [0.0, 0.25, 0.5]
    fns = [F.relu, F.gelu, torch.tanh]
    for arch in list(space.grid())[::7]:
        if entry == "freeze":
            net = model.freeze(arch)
        elif entry == "fixed_arch":
            with nasforge.fixed_arch(arch):
                net = Values()
        else:
            net = Values.build(arch)
        assert net.fc.out_features == arch["width"] and net.out.in_features == arch["width"]
        assert net.act.fn is fns[arch["act"]]
        assert net.conv.kernel_size == tuple(arch["kernel"])
        assert net.drop.p == [0.1, 0.5][arch["cfg"]] and net.out.out_features == [2, 3][arch["cfg"]]
        assert type(net.mod.fn) is [torch.nn.ReLU, torch.nn.Sigmoid][arch["mod"]]
        assert net.scale.p == arch["p"]


def test_experiment_trains_the_candidate_not_its_index():
    class W(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, nn.ValueChoice([8, 16, 32, 16], label="width"))
            self.act = Act(nn.ValueChoice([F.relu, F.gelu], label="act"))

    seen = []

    def fit(model, ctx):
        seen.append((model.fc.out_features, model.act.fn, dict(ctx.arch)))
        return 1.0

    with pytest.warns(UserWarning, match="duplicate"):
        space = W()
    Experiment(space, GridSearch(), FunctionEvaluator(fit), executor="inline").run()
    assert len(seen) == 6
    for width, fn, arch in seen:
        assert width == arch["width"] and width in (8, 16, 32)
        assert fn is (F.relu, F.gelu)[arch["act"]]


# -- 2. freeze and fixed_arch: one rule, one implementation -----------------------------------------


class Deep(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.LayerChoice(
            OrderedDict(
                conv=nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), nn.LayerChoice([nn.ReLU(), nn.GELU()], label="stem_act")),
                pool=nn.Sequential(nn.Conv1d(1, 4, 1), nn.MaxPool1d(3, 1, 1)),
            ),
            label="stem",
        )
        self.blocks = nn.Repeat(
            lambda i: nn.Sequential(nn.Conv1d(4, 4, nn.choice([1, 3], label=f"k{i}"), padding="same"),
                                    nn.LayerChoice([nn.ReLU(), nn.Tanh()])),
            depth=(1, 3),
            label="blocks",
        )

    def forward(self, x):
        return self.blocks(self.stem(x))


def test_repeat_with_fewer_blocks_builds_the_same_network_by_every_path():
    model = Deep()
    x = torch.randn(2, 1, 10)
    archs = [model.space.sample(s) for s in range(30)]
    assert any(a["blocks"] < 3 for a in archs)
    for arch in archs:
        frozen = model.freeze(arch)
        with nasforge.fixed_arch(arch):
            direct = Deep()
        built = Deep.build(arch)
        same_network(frozen, direct)
        same_network(frozen, built)
        assert len(frozen.blocks) == arch["blocks"]
        assert frozen(x).shape == direct(x).shape == (2, 4, 10)
        full = model.space.complete(arch, 0)  # with the inactive labels too
        same_network(model.freeze(full), frozen)
        with nasforge.fixed_arch(full):
            same_network(Deep(), frozen)


def test_partial_archs_obey_one_rule():
    model = Deep()
    arch = {"stem": "conv", "blocks": 2, "k0": 1, "blocks.0.1": 0, "k1": 3, "blocks.1.1": 1}
    with pytest.raises(InvalidArchError, match="missing.*'stem_act'"):
        model.freeze(arch)
    with pytest.raises(InvalidArchError, match="missing.*'stem_act'"):
        with nasforge.fixed_arch(arch):
            Deep()
    ok = {**arch, "stem": "pool"}  # stem_act is inactive: not needed
    same_network(model.freeze(ok), Deep.build(ok))


# -- 3. a model space whose own constructor argument is a value choice -----------------------------


def test_space_with_a_value_choice_constructor_argument_freezes():
    class W(nn.Module):
        def __init__(self, w):
            super().__init__()
            self.fc = nn.Linear(4, w)

        def forward(self, x):
            return self.fc(x)

    model = W(nn.choice([8, 16], label="w"))
    assert model.space.labels == ["w"]
    for w in (8, 16):
        net = model.freeze({"w": w})
        assert net.fc.out_features == w
        assert net(torch.randn(1, 4)).shape == (1, w)


# -- 4. Cell called NNI's way -------------------------------------------------------------------------


def test_cell_takes_its_inputs_as_separate_arguments():
    class C(nn.Module):
        def __init__(self):
            super().__init__()
            ops = OrderedDict(conv=lambda: nn.Conv2d(4, 4, 3, padding=1), skip=lambda: nn.Identity())
            self.cell = nn.Cell(ops, num_nodes=2, num_predecessors=2, merge_op="all", label="cell")

        def forward(self, x, y):
            return self.cell(x, y)

    model = C()
    x, y = torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)
    assert model(x, y).shape == (2, 8, 5, 5)
    assert torch.equal(model.cell(x, y), model.cell([x, y]))
    for seed in range(4):
        net = model.freeze(model.space.sample(seed))
        assert net(x, y).shape == (2, 8, 5, 5)
        assert torch.equal(net.cell(x, y), net.cell([x, y]))


# -- 5. negative depths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [-1, [-1, 2], [2, -3], (3, 1), (-2, 1), range(-1, 2), True])
def test_negative_or_empty_depths_are_refused_naming_the_label(depth):
    with pytest.raises(InvalidSpaceError, match="Repeat 'blocks'"):
        nn.Repeat(lambda: nn.Identity(), depth, label="blocks")


def test_negative_depth_from_an_expression_is_refused():
    with pytest.raises(InvalidSpaceError, match="Repeat 'd'.*>= 0.*-1"):
        nn.Repeat(lambda: nn.Identity(), nn.choice([0, 2], label="d") - 1)


# -- 6. expressions validate the keys they are evaluated with ------------------------------------------


@pytest.mark.parametrize("bad", [42, 2, "1", None, [1]])
def test_expression_evaluate_refuses_non_candidates(bad):
    a = nn.choice([1, 17], label="a")
    for expr in (abs(a), a * 2 + 1, a, nn.ValueChoice.max(a, 5)):
        with pytest.raises(InvalidArchError, match="'a'.*valid values: \\[1, 17\\]"):
            expr.evaluate({"a": bad})
    with pytest.raises(InvalidArchError, match="no value for label 'a'"):
        abs(a).evaluate({})
    assert abs(-a).evaluate({"a": 17}) == 17


# -- 7. the fingerprint covers what the candidates are --------------------------------------------------


def conv_space():
    class S(nn.Module):
        def __init__(self):
            super().__init__()
            self.op = nn.LayerChoice([nn.Conv2d(3, 3, 3, padding=1), nn.Identity()], label="op")

    return S()


def pool_space():
    class S(nn.Module):
        def __init__(self):
            super().__init__()
            self.op = nn.LayerChoice([nn.MaxPool2d(3, 1, 1), nn.Identity()], label="op")

    return S()


def wide_space():
    class S(nn.Module):
        def __init__(self):
            super().__init__()
            self.op = nn.LayerChoice([nn.Conv2d(3, 3, 5, padding=2), nn.Identity()], label="op")

    return S()


def test_fingerprint_tells_different_candidates_apart():
    fps = {conv_space().space.fingerprint(), pool_space().space.fingerprint(), wide_space().space.fingerprint()}
    assert len(fps) == 3
    assert conv_space().space.fingerprint() == conv_space().space.fingerprint()
    a = nn.Module()
    a.f = Act(nn.ValueChoice([F.relu, F.gelu], label="f"))
    b = nn.Module()
    b.f = Act(nn.ValueChoice([F.relu, torch.tanh], label="f"))
    assert nn.discover(a).fingerprint() != nn.discover(b).fingerprint()


def test_store_of_another_space_with_the_same_labels_is_refused(tmp_path):
    db = tmp_path / "s.db"

    def fit(model, ctx):
        return 1.0

    Experiment(conv_space(), GridSearch(), FunctionEvaluator(fit), executor="inline", store=db, name="e").run()
    with pytest.raises(StoreConflictError, match="different space"):
        Experiment(pool_space(), GridSearch(), FunctionEvaluator(fit), executor="inline", store=db, name="e").run()
    # the same space resumes
    Experiment(conv_space(), GridSearch(), FunctionEvaluator(fit), executor="inline", store=db, name="e").run()


def test_module_candidates_of_a_value_choice_are_not_shared_with_the_space():
    model = nn.Module()
    model.f = Act(nn.ValueChoice([nn.Linear(2, 2), nn.Linear(2, 3)], label="lin"))
    nn.discover(model)
    a = nn.freeze(model, {"lin": 1})
    b = nn.freeze(model, {"lin": 1})
    assert a.f.fn.out_features == 3
    assert a.f.fn is not b.f.fn and a.f.fn.weight is not b.f.fn.weight
    assert torch.equal(a.f.fn.weight, b.f.fn.weight)  # copies of the candidate's initial weights


def test_value_choices_tie_only_over_the_same_candidates():
    class Clash(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = Act(nn.ValueChoice([F.relu, F.gelu], label="f"))
            self.b = Act(nn.ValueChoice([F.relu, torch.tanh], label="f"))

    with pytest.raises(InvalidSpaceError, match="'f'.*different candidates"):
        Clash()

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = Act(nn.ValueChoice([F.relu, F.gelu], label="f"))
            self.b = Act(nn.ValueChoice([F.relu, F.gelu], label="f"))
            self.t = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=nn.ValueChoice([F.relu, F.gelu], label="f"))

    model = Tied()
    assert model.space.labels == ["f"]
    net = model.freeze({"f": 1})
    assert net.a.fn is F.gelu and net.b.fn is F.gelu and net.t.activation is F.gelu
    assert type(net.t) is torch.nn.TransformerEncoderLayer
