import io
import json
from collections import OrderedDict

import pytest
import torch

import nasforge
import nasforge.nn as nn
from nasforge.benchmarks.seed_model import Net
from nasforge.nn import ChoiceModule

X = torch.randn(2, 3, 32, 32)


def no_choice_left(model):
    return not any(isinstance(m, ChoiceModule) for m in model.modules())


def test_seed_model_space_and_every_arch_freezes():
    model = Net()
    assert model.space.size == 8
    assert model.space.labels == ["conv1", "conv2", "skipconnect"]
    counts = {}
    for arch in model.space.grid():
        assert json.loads(json.dumps(arch)) == arch
        frozen = model.freeze(arch)
        assert no_choice_left(frozen)
        assert frozen(X).shape == (2, 10)
        counts[(arch["conv1"], arch["conv2"])] = sum(p.numel() for p in frozen.parameters())
    assert len(set(counts.values())) == 4  # the kernel-size choices change the parameter count


def test_drop_in_torch_nn():
    import torch.nn as tnn

    public = [n for n in dir(tnn) if not n.startswith("_")]
    missing = [n for n in public if not hasattr(nn, n)]
    assert missing == []
    conv = nn.Conv2d(3, 4, 3)
    assert type(conv) is tnn.Conv2d  # no value choice: the plain torch class, nothing extra
    assert isinstance(conv, nn.Conv2d) and isinstance(conv, nn.Module)
    assert nn.functional is tnn.functional and nn.init is tnn.init


def test_frozen_shares_nothing_with_space_and_is_plain():
    model = Net()
    arch = {"conv1": 1, "conv2": 0, "skipconnect": 1}
    a, b = model.freeze(arch), model.freeze(arch)
    pa = {id(p) for p in a.parameters()}
    assert pa.isdisjoint(id(p) for p in b.parameters())
    assert pa.isdisjoint(id(p) for p in model.parameters())
    with torch.no_grad():
        a.fc3.weight.add_(1.0)
    assert not torch.equal(a.fc3.weight, b.fc3.weight)
    # Initial weights of kept layers are copies of the space's; reinit draws new ones.
    assert torch.equal(b.fc3.weight, model.fc3.weight)
    c = model.freeze(arch, reinit=True)
    assert not torch.equal(c.fc3.weight, model.fc3.weight)
    assert c.conv1.weight.shape == model.conv1[1].weight.shape


def test_frozen_saves_and_loads_into_a_plain_torch_network():
    import torch.nn as tnn

    class Plain(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 6, 5, padding=2)
            self.conv2 = tnn.Conv2d(6, 16, 3, padding=1)
            self.conv3 = tnn.Conv2d(16, 16, 1)
            self.bn = tnn.BatchNorm2d(16)
            self.fc1 = tnn.Linear(256, 120)
            self.fc2 = tnn.Linear(120, 84)
            self.fc3 = tnn.Linear(84, 10)

    frozen = Net().freeze({"conv1": 1, "conv2": 0, "skipconnect": 1})
    buf = io.BytesIO()
    torch.save(frozen.state_dict(), buf)
    buf.seek(0)
    Plain().load_state_dict(torch.load(buf), strict=True)
    buf = io.BytesIO()
    torch.save(frozen, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    frozen.eval(), loaded.eval()
    assert torch.allclose(loaded(X), frozen(X))


def test_fixed_arch_builds_the_frozen_network(tmp_path):
    arch = {"conv1": 1, "conv2": 1, "skipconnect": 0}
    with nasforge.fixed_arch(arch):
        net = Net()
    assert no_choice_left(net) and net(X).shape == (2, 10)
    assert net.conv1.kernel_size == (5, 5) and net.conv2.kernel_size == (5, 5)
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch))
    with nasforge.fixed_arch(str(path)):
        net2 = Net()
    frozen = Net().freeze(arch)
    net2.load_state_dict(frozen.state_dict())
    net2.eval(), frozen.eval()
    assert torch.allclose(net2(X), frozen(X))
    assert Net.build(arch).conv1.kernel_size == (5, 5)


def test_space_instance_runs_and_activates():
    model = Net()
    assert model(X).shape == (2, 10)
    arch = {"conv1": 1, "conv2": 0, "skipconnect": 1}
    model.activate(arch)
    frozen = model.freeze(arch)
    model.eval(), frozen.eval()
    assert torch.allclose(model(X), frozen(X), atol=1e-6)


class Block(nn.Module):
    def __init__(self, channels, kernel):
        super().__init__()
        self.channels = channels  # used as a plain int in forward once frozen
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.norm = nn.LayerChoice(OrderedDict(bn=nn.BatchNorm1d(channels), none=nn.Identity()))

    def forward(self, x):
        assert x.shape[1] == self.channels
        return x + torch.relu(self.norm(self.conv(x)))


class Net1d(nn.ModelSpace):
    def __init__(self):
        super().__init__()
        width = nn.ValueChoice([8, 16], label="width")
        self.stem = nn.Conv1d(1, width, 3, padding=1)
        self.blocks = nn.Repeat(lambda i: Block(width, nn.choice([3, 5])), depth=(1, 3))
        self.head = nn.Linear(width * 2, 10)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.head(torch.cat([x.mean(-1), x.amax(-1)], 1))


def test_value_choices_repeat_and_labels_from_paths():
    model = Net1d()
    assert model.space.labels == [
        "width", "blocks", "blocks.0.kernel", "blocks.0.norm",
        "blocks.1.kernel", "blocks.1.norm", "blocks.2.kernel", "blocks.2.norm",
    ]
    assert Net1d().space.labels == model.space.labels  # deterministic
    assert model.space["width"].values == [8, 16] and model.space["blocks"].values == [1, 2, 3]
    x = torch.randn(4, 1, 40)
    sizes = set()
    for seed in range(12):
        arch = model.space.sample(seed)
        net = model.freeze(arch)
        assert no_choice_left(net)
        assert net(x).shape == (4, 10)
        assert len(net.blocks) == arch["blocks"]
        assert net.stem.out_channels == arch["width"] and net.head.in_features == 2 * arch["width"]
        assert type(net.stem) is torch.nn.Conv1d
        assert net.blocks[0].conv.kernel_size == (arch["blocks.0.kernel"],)
        with nasforge.fixed_arch(arch):
            direct = Net1d()
        direct.load_state_dict(net.state_dict())
        sizes.add(sum(p.numel() for p in net.parameters()))
    assert len(sizes) > 3


def test_value_choice_arithmetic_and_misuse():
    w = nn.ValueChoice([16, 32], label="w")
    expr = (w * 2 + 1) // 3
    assert expr.evaluate({"w": 32}) == 21 and expr.all_values() == [11, 21]
    with pytest.raises(TypeError, match="ValueChoice.*'w'.*concrete"):
        int(w)
    with pytest.raises(TypeError, match="concrete"):
        if w:
            pass
    with nasforge.fixed_arch({"w": 32}):  # a concrete use under fixed_arch is the chosen value
        assert int(nn.ValueChoice([16, 32], label="w")) == 32


def test_shared_value_choice_ties_layers_and_conflicts_fail():
    class Tied(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, nn.ValueChoice([8, 16], label="h"))
            self.b = nn.Linear(nn.ValueChoice([8, 16], label="h"), 2)

    model = Tied()
    assert model.space.labels == ["h"]
    net = model.freeze({"h": 16})
    assert net.a.out_features == 16 and net.b.in_features == 16
    assert net.b(net.a(torch.randn(3, 4))).shape == (3, 2)

    class Conflict(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.a = nn.LayerChoice([nn.ReLU(), nn.GELU()], label="act")
            self.b = nn.LayerChoice([nn.ReLU(), nn.GELU(), nn.Tanh()], label="act")

    with pytest.raises(ValueError, match="'act'.*different candidates"):
        Conflict()


def make_cell_space(merge_op="last", ops_per_node="all"):
    class CellNet(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            ops = OrderedDict(
                conv=lambda: nn.Conv2d(4, 4, 3, padding=1),
                skip=lambda: nn.Identity(),
                pool=lambda: nn.AvgPool2d(3, 1, 1),
            )
            self.cells = nn.ModuleList(
                [nn.Cell(ops, num_nodes=3, num_ops_per_node=ops_per_node, merge_op=merge_op) for _ in range(2)]
            )

        def forward(self, x):
            for c in self.cells:
                x = c(x)
            return x

    return CellNet


def test_cell_all_inputs_nasbench201_form():
    model = make_cell_space()()
    labels = model.space.labels
    assert labels[:6] == [f"cells.0.op_{i}_{j}" for i in range(1, 4) for j in range(i)]
    assert len(labels) == 12 and model.space.size == 3**12
    x = torch.randn(2, 4, 8, 8)
    for seed in range(4):
        arch = model.space.sample(seed)
        net = model.freeze(arch)
        assert no_choice_left(net) and net(x).shape == x.shape
    model.activate(arch)
    model.eval(), net.eval()
    assert torch.allclose(model(x), net(x), atol=1e-5)


def test_cell_with_input_choices_and_loose_end():
    model = make_cell_space("loose_end", 2)()
    assert "cells.0.input_1_0" in model.space and "cells.1.op_3_1" in model.space
    assert model.space["cells.0.input_3_1"].values == [0, 1, 2]
    x = torch.randn(2, 4, 8, 8)
    arch = model.space.sample(0)
    # Make node 1 and 2 both read the input: all three nodes are loose ends for cell 0 -> 12 channels.
    for j in range(2):
        arch[f"cells.0.input_1_{j}"] = 0
        arch[f"cells.0.input_2_{j}"] = 0
        arch[f"cells.0.input_3_{j}"] = 0
    net = model.freeze(arch)
    assert net.cells[0](x).shape == (2, 12, 8, 8)
    model.activate(arch)
    model.eval(), net.eval()
    assert torch.allclose(model.cells[0](x), net.cells[0](x), atol=1e-5)


def test_layer_choice_dict_keys_and_explicit_label_under_fixed_arch():
    class S(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.act = nn.LayerChoice(OrderedDict(relu=nn.ReLU(), tanh=nn.Tanh()), label="activation")

        def forward(self, x):
            return self.act(x)

    assert S().space["activation"].values == ["relu", "tanh"]
    with nasforge.fixed_arch({"activation": "tanh"}):
        net = S()
    assert type(net.act) is torch.nn.Tanh
    with pytest.raises(ValueError, match="unknown label.*'actvation'"):
        with nasforge.fixed_arch({"activation": "tanh", "actvation": "relu"}):
            S()


def test_frozen_network_has_no_space():
    net = Net().freeze({"conv1": 0, "conv2": 0, "skipconnect": 0})
    assert not hasattr(net, "space")
    with pytest.raises(AttributeError, match="space"):
        _ = net.space


def test_input_choice_with_several_chosen():
    class Multi(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.pick = nn.InputChoice(n_candidates=3, n_chosen=2, reduction="concat", label="pick")

        def forward(self, xs):
            return self.pick(xs)

    model = Multi()
    assert model.space["pick"].values == [[0, 1], [0, 2], [1, 2]]
    xs = [torch.full((1, 2), float(i)) for i in range(3)]
    net = model.freeze({"pick": [0, 2]})
    assert torch.equal(net(xs), torch.tensor([[0.0, 0.0, 2.0, 2.0]]))
    with nasforge.fixed_arch({"pick": [1, 2]}):
        direct = Multi()
    assert torch.equal(direct(xs), torch.tensor([[1.0, 1.0, 2.0, 2.0]]))
    with pytest.raises(ValueError, match="'pick'.*valid values"):
        model.freeze({"pick": [2, 0, 1]})
