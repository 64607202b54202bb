"""nasforge.hub: every space builds at its CPU-sized default, sampled archs freeze and train,
DARTS genotypes round-trip, NAS-Bench-101's validity rule, presets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import nasforge.nn as nn
from nasforge import fixed_arch, hub
from nasforge.errors import InvalidArchError
from nasforge.hub import archs
from nasforge.hub.darts import loose_ends
from nasforge.hub.nasbench101 import arch_to_spec, is_valid, prune, spec_to_arch
from nasforge.profile import count_params

# (space factory at its CPU-sized default, an input batch)
IMAGE = (2, 3, 16, 16)
DEFAULTS = {
    "DartsSpace": (hub.DartsSpace, IMAGE),
    "EnasMacroSpace": (hub.EnasMacroSpace, IMAGE),
    "RnnCellSpace": (hub.RnnCellSpace, (2, 12)),
    "ProxylessSpace": (hub.ProxylessSpace, IMAGE),
    "MobileNetV3Space": (hub.MobileNetV3Space, IMAGE),
    "ShuffleNetSpace": (hub.ShuffleNetSpace, IMAGE),
    "NasBench101Space": (hub.NasBench101Space, IMAGE),
    "AutoActivation": (hub.AutoActivation, (4, 7)),
}


def sample(model, seed):
    return model.sample_valid(seed) if isinstance(model, hub.NasBench101Space) else model.space.sample(seed)


@pytest.fixture(scope="module")
def built():
    return {name: make() for name, (make, _) in DEFAULTS.items()}


def test_every_space_is_listed():
    assert {cls.__name__ for cls in hub.SPACES} == set(DEFAULTS)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_default_space_builds_and_runs(built, name):
    model = built[name]
    shape = DEFAULTS[name][1]
    space = model.space
    assert len(space) > 0 and space.size > 1
    out = model(torch.randn(*shape))  # the space instance itself runs (first candidates)
    assert out.shape[0] == shape[0]
    assert json.loads(json.dumps(space.sample(0))) == space.sample(0)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_sampled_archs_freeze_train_and_match_fixed_arch_construction(built, name):
    model = built[name]
    shape = DEFAULTS[name][1]
    x = torch.randn(*shape, requires_grad=True)
    archs_seen = set()
    for seed in range(3):
        arch = sample(model, seed)
        archs_seen.add(json.dumps(arch, sort_keys=True))
        net = model.freeze(arch)
        assert not any(isinstance(m, nn.ChoiceModule) for m in net.modules())
        net.train()
        out = net(x)
        loss = out.float().pow(2).mean()
        loss.backward()
        params = [p for p in net.parameters() if p.requires_grad]
        assert x.grad is not None and torch.isfinite(x.grad).all()
        if params:
            assert any(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
        x.grad = None
        # building under fixed_arch gives the same network (same parameter names and shapes)
        kwargs = {}
        built_net = type(model).build(arch, **kwargs)
        assert {k: v.shape for k, v in built_net.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}
    assert len(archs_seen) == 3


# -- DARTS ----------------------------------------------------------------------------------------

def test_darts_labels_and_reduction_cells():
    model = hub.DartsSpace(C=4, layers=6)
    labels = model.space.labels
    assert {lab.split(".")[0] for lab in labels} == {"normal", "reduce"}
    assert len(labels) == 2 * 4 * 2 * 2  # 2 cell types × 4 nodes × 2 inputs × (op, input)
    assert model.space["normal.op_3_1"].values == list(hub.DARTS_OPS)
    assert model.space["normal.input_5_0"].values == [0, 1, 2, 3, 4]
    net = model.freeze(model.space.sample(1))
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    sizes = []
    hook_out = []
    for cell in net.cells:
        cell.register_forward_hook(lambda m, i, o: hook_out.append(o.shape[-1]))
    net(torch.randn(1, 3, 16, 16))
    sizes = hook_out
    assert sizes == [16, 16, 8, 8, 4, 4]  # reductions at layers // 3 = 2 and 2 * layers // 3 = 4


@pytest.mark.parametrize("seed", range(5))
def test_genotype_round_trip_random_archs(seed):
    model = hub.DartsSpace(C=4, layers=3)
    arch = model.space.sample(seed)
    genotype = model.arch_to_genotype(arch)
    assert len(genotype.normal) == 8 and genotype.normal_concat == [2, 3, 4, 5]
    assert model.genotype_to_arch(genotype) == arch
    assert hub.genotype_to_arch(genotype) == arch


@pytest.mark.parametrize("name", ["DARTS_V1", "DARTS_V2", "NASNET_A", "AMOEBANET_A", "PNASNET_5", "ENAS"])
def test_published_genotypes_round_trip_and_freeze(name):
    published = archs.ALL[name]
    model = published.model_space(C=4, layers=3)
    arch = model.genotype_to_arch(published.genotype)
    assert arch == dict(published.arch)
    back = model.arch_to_genotype(arch)
    assert [tuple(e) for e in back.normal] == [tuple(e) for e in published.genotype.normal]
    assert list(back.normal_concat) == list(published.genotype.normal_concat)
    assert list(back.reduce_concat) == list(published.genotype.reduce_concat)
    # freezing the space and building the genotype directly give the same network
    frozen = model.freeze(arch)
    direct = hub.DartsSpace.build_genotype(published.genotype, C=4, layers=3)
    assert {k: v.shape for k, v in frozen.state_dict().items()} == {k: v.shape for k, v in direct.state_dict().items()}
    assert frozen(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_genotype_errors_name_the_problem():
    model = hub.DartsSpace(C=4, layers=3)
    g = archs.DARTS_V2.genotype
    with pytest.raises(InvalidArchError, match="node 2 can read states 0..1, not 2"):
        hub.genotype_to_arch(g._replace(normal=[("sep_conv_3x3", 2)] + list(g.normal[1:])))
    with pytest.raises(InvalidArchError, match="5 nodes per cell; this DartsSpace has num_nodes=4"):
        model.genotype_to_arch(archs.NASNET_A.genotype)
    with pytest.raises(InvalidArchError, match="normal_concat"):
        model.genotype_to_arch(g._replace(normal_concat=[2, 3]))
    with pytest.raises(InvalidArchError, match="sep_conv_7x7"):
        model.genotype_to_arch(g._replace(normal=[("sep_conv_7x7", 0)] + list(g.normal[1:])))
    with pytest.raises(InvalidArchError, match="two \\(op, input\\) pairs"):
        hub.genotype_to_arch(g._replace(normal=list(g.normal[:3])))


def test_loose_end_cells_have_the_width_of_their_loose_ends():
    model = archs.NASNET_A.model_space(C=4, layers=3)
    assert model.merge_op == "loose_end"
    for seed in range(4):
        arch = model.space.sample(seed)
        genotype = model.arch_to_genotype(arch)
        net = model.freeze(arch)
        widths = []
        for cell in net.cells:
            cell.register_forward_hook(lambda m, i, o, widths=widths: widths.append(o.shape[1]))
        net(torch.randn(1, 3, 8, 8))
        # layers=3: a normal cell (C=4), then reductions at layers // 3 = 1 and 2 * layers // 3 = 2
        assert widths == [4 * len(genotype.normal_concat), 8 * len(genotype.reduce_concat), 16 * len(genotype.reduce_concat)]
        assert loose_ends(genotype.normal) == list(genotype.normal_concat)
        assert loose_ends(genotype.reduce) == list(genotype.reduce_concat)


def test_auxiliary_head():
    model = hub.DartsSpace(C=4, layers=3, auxiliary=True)
    net = model.freeze(model.space.sample(0))
    net.train()
    net(torch.randn(2, 3, 8, 8))
    assert net.aux_logits.shape == (2, 10)
    net.eval()
    net(torch.randn(2, 3, 8, 8))
    assert net.aux_logits is None
    assert count_params(hub.DartsSpace(C=4, layers=3).freeze(model.space.sample(0))) < count_params(net)


def test_darts_bad_arguments():
    with pytest.raises(ValueError, match="unknown op"):
        hub.DartsSpace(op_candidates=["sep_conv_3x3", "conv_9x9"])
    with pytest.raises(ValueError, match="merge_op"):
        hub.DartsSpace(merge_op="last")
    with pytest.raises(ValueError, match="C must be a positive integer"):
        hub.DartsSpace(C=0)


# -- NAS-Bench-101 ------------------------------------------------------------------------------------

def _random_spec_archs(n, seed):
    rng = np.random.default_rng(seed)
    model_space = hub.NasBench101Space().space
    return [model_space.sample(rng) for _ in range(n)]


def test_nasbench101_validity_rule_matches_a_direct_reachability_check():
    for arch in _random_spec_archs(300, 0):
        matrix, _ = arch_to_spec(arch)
        # reachability by matrix powers
        reach = np.eye(7, dtype=int)
        for _ in range(7):
            reach = ((reach + reach @ matrix) > 0).astype(int)
        connected = reach[0, 6] == 1
        on_path = [v for v in range(7) if reach[0, v] and reach[v, 6]]
        edges = int(matrix[np.ix_(on_path, on_path)].sum()) if connected else None
        assert is_valid(arch) == (connected and edges <= 9)
        pruned = prune(*arch_to_spec(arch))
        assert (pruned is None) == (not connected)
        if connected:
            assert pruned[0].shape == (len(on_path), len(on_path)) and int(pruned[0].sum()) == edges


def test_nasbench101_invalid_arch_fails_clearly_and_valid_ones_run():
    model = hub.NasBench101Space()
    arch = {label: 0 if label.startswith("edge") else "maxpool3x3" for label in model.space}
    with pytest.raises(InvalidArchError, match="output cannot be reached"):
        model.freeze(arch)
    dense = dict(arch, **{label: 1 for label in model.space if label.startswith("edge")})
    with pytest.raises(InvalidArchError, match="21 edges; NAS-Bench-101 allows at most 9"):
        model.freeze(dense)
    for seed in range(5):
        good = model.sample_valid(seed)
        assert is_valid(good)
        assert model.freeze(good)(torch.randn(1, 3, 8, 8)).shape == (1, 10)


def test_nasbench101_spec_round_trip_and_vertex_widths():
    # the benchmark's example cell: input -> conv3x3 -> conv3x3 -> maxpool -> output, plus skips
    matrix = [[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
              [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]]
    op_list = ["input", "conv1x1-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "output"]
    arch = spec_to_arch(matrix, op_list)
    assert arch_to_spec(arch)[0].tolist() == matrix and arch_to_spec(arch)[1] == op_list
    net = hub.NasBench101Space(stem_channels=16, num_stacks=1).freeze(arch)
    cell = net.cells[0]
    # 4 vertices feed the output: 16 channels split 4 ways; vertex 3 feeds vertex 4 only
    assert cell.channels == [16, 4, 4, 4, 4, 4, 16]
    small = spec_to_arch([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "maxpool3x3", "output"])
    assert is_valid(small)
    with pytest.raises(InvalidArchError, match="upper-triangular"):
        spec_to_arch([[0, 0], [1, 0]], ["input", "output"])


# -- RNN ------------------------------------------------------------------------------------------------

def test_rnn_cell_space_labels_genotypes_and_tasks():
    model = hub.RnnCellSpace(hidden_size=8, num_nodes=4)
    assert model.space.labels == ["input_1", "act_1", "input_2", "act_2", "input_3", "act_3", "input_4", "act_4"]
    arch = model.space.sample(2)
    g = model.arch_to_genotype(arch)
    assert model.genotype_to_arch(g) == arch
    v2 = archs.DARTS_V2_RNN
    lm = v2.model_space(vocab_size=50, input_size=8, hidden_size=8, task="lm")
    net = lm.freeze(dict(v2.arch))
    tokens = torch.randint(0, 50, (3, 7))
    logits = net(tokens)
    assert logits.shape == (3, 50, 7)
    torch.nn.functional.cross_entropy(logits, tokens).backward()
    assert net.decoder.weight is net.embedding.weight  # tied
    with pytest.raises(ValueError, match="task='lm' needs vocab_size"):
        hub.RnnCellSpace(task="lm")


def test_rnn_cell_follows_the_darts_recurrence():
    model = hub.RnnCellSpace(input_size=3, hidden_size=4, num_nodes=2)
    net = model.freeze({"input_1": 0, "act_1": "identity", "input_2": 0, "act_2": "tanh"})
    cell = net.cell
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    c0, g0 = cell.w0(torch.cat([x, h], -1)).chunk(2, -1)
    s0 = h + torch.sigmoid(c0) * (torch.tanh(g0) - h)
    nodes = []
    for node, act in zip(cell.nodes, (lambda t: t, torch.tanh)):
        c, g = node.linear(s0).chunk(2, -1)
        nodes.append(s0 + torch.sigmoid(c) * (act(g) - s0))
    assert torch.allclose(cell(x, h), (nodes[0] + nodes[1]) / 2, atol=1e-6)


# -- AutoActivation ----------------------------------------------------------------------------------

def test_autoactivation_expresses_swish_and_joins_an_outer_space():
    act = hub.AutoActivation()
    swish = act.freeze({"autoact.unary_0": "x", "autoact.unary_1": "sigmoid", "autoact.binary_0": "mul"})
    x = torch.randn(100)
    assert torch.allclose(swish(x), x * torch.sigmoid(x))

    class Net(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(5, 8)
            self.act = hub.AutoActivation(unit_num=2, label="a")
            self.fc2 = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    net = Net()
    assert net.space.labels == ["a.unary_0", "a.unary_1", "a.unary_2", "a.binary_0", "a.binary_1"]
    for seed in range(20):
        out = net.freeze(net.space.sample(seed))(torch.randn(4, 5))
        assert out.shape == (4, 3)


# -- presets ----------------------------------------------------------------------------------------------

def test_presets_are_named_archs_of_their_spaces():
    assert set(hub.DartsSpace.presets()) == {"darts_v1", "darts_v2", "nasnet_a", "amoebanet_a", "pnasnet_5", "enas"}
    assert set(hub.MobileNetV3Space.presets()) == {"large", "small"}
    assert hub.ProxylessSpace.presets() == ["mobilenet_v2"]
    assert hub.MobileNetV3Space.preset_arch("large") is archs.MOBILENET_V3_LARGE
    with pytest.raises(ValueError, match="no preset 'medium'; valid: \\['large', 'small'\\]"):
        hub.MobileNetV3Space.preset("medium")
    spaces = {}
    for published in archs.ALL.values():
        kw = {"vocab_size": 20, "input_size": 4, "hidden_size": 4} if published.space is hub.RnnCellSpace else {}
        if published.space is hub.DartsSpace:
            kw = {"C": 4, "layers": 3}
        key = (published.space, repr(sorted(published.space_kwargs.items())))
        if key not in spaces:
            spaces[key] = published.model_space(**kw).space
        # a published arch names every label; its canonical form drops those inside skipped blocks
        canonical = spaces[key].validate(dict(published.arch))
        assert canonical == spaces[key].canonical(dict(published.arch))
        assert canonical.items() <= dict(published.arch).items()
        assert spaces[key].validate(canonical) == canonical
        with pytest.raises(TypeError):
            published.arch["x"] = 1  # read-only


def test_preset_builds_the_same_network_as_freezing_the_space():
    published = archs.MOBILENET_V3_SMALL
    net = hub.MobileNetV3Space.preset("small", num_classes=7, width_mult=0.25)
    space = published.model_space(num_classes=7, width_mult=0.25)
    frozen = space.freeze(dict(published.arch))
    assert {k: v.shape for k, v in net.state_dict().items()} == {k: v.shape for k, v in frozen.state_dict().items()}
    with fixed_arch(dict(published.arch)):
        again = hub.MobileNetV3Space(num_classes=7, width_mult=0.25, stages=hub.SMALL_STAGES)
    assert count_params(again) == count_params(net)


def test_fixed_arch_accepts_the_labels_of_a_skipped_block_present_or_absent():
    arch = dict(archs.MOBILENET_V3_SMALL.arch)
    skipped = [label for label, value in arch.items() if value == "skip"]
    assert skipped
    inner = [f"{label}.{part}" for label in skipped for part in ("kernel", "se", "act")]
    without = {k: v for k, v in arch.items() if k not in inner}
    a = hub.MobileNetV3Space.build(arch, stages=hub.SMALL_STAGES)
    b = hub.MobileNetV3Space.build(without, stages=hub.SMALL_STAGES)
    assert count_params(a) == count_params(b)
    # …but a value that is not a candidate is refused, naming the label
    with pytest.raises(InvalidArchError, match=f"{inner[0]}"):
        hub.MobileNetV3Space.build(dict(arch, **{inner[0]: "k9"}), stages=hub.SMALL_STAGES)


def test_frozen_networks_pickle_with_torch_save(tmp_path):
    for name in ("AutoActivation", "DartsSpace", "MobileNetV3Space", "RnnCellSpace"):
        make, shape = DEFAULTS[name]
        model = make() if name != "DartsSpace" else hub.DartsSpace(C=4, layers=3)
        net = model.freeze(model.space.sample(0)).eval()
        path = tmp_path / f"{name}.pt"
        torch.save(net, path)
        again = torch.load(path, weights_only=False).eval()
        x = torch.randn(*shape)
        assert torch.equal(again(x), net(x))
