"""NNI-level expressiveness: free-standing choices, value-choice expressions, hyper-parameter
choices in evaluators, LayerChoice item assignment, ``[i]`` for single input choices."""

from __future__ import annotations

import math
from collections import OrderedDict

import pytest
import torch

import nasforge
import nasforge.nn as nn
from nasforge import Experiment
from nasforge.errors import ChoiceUsageError, InvalidArchError, InvalidSpaceError
from nasforge.evaluate import Classification, FunctionEvaluator
from nasforge.strategy import GridSearch


def same_network(a, b):
    assert [type(m) for m in a.modules()] == [type(m) for m in b.modules()]
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(sa[k].shape == sb[k].shape for k in sa)


# -- free-standing choices -----------------------------------------------------------------------------


class FreeStanding(nn.Module):
    """Choices used for control flow and raw shapes in __init__ (NNI's add_mutable / ensure_frozen)."""

    def __init__(self):
        super().__init__()
        self.use_bn = nn.choice([True, False], label="bn")
        n_layers = nn.choice([1, 2, 3], label="layers")
        dim = nn.choice([4, 8], label="dim")
        self.pos = nn.Parameter(torch.zeros(dim))  # a raw tensor shape
        layers = []
        for _ in range(n_layers):  # a Python loop bound
            layers.append(nn.Linear(dim, dim))
            if self.use_bn:
                layers.append(nn.BatchNorm1d(dim))
        self.body = nn.Sequential(*layers)
        self.act = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
        self.scale = nn.ensure_frozen(nn.choice([0.5, 1.0], label="scale"))
        self.extra = self.add_mutable(nn.choice(["x", "y"], label="tag"))

    def forward(self, x):
        return self.act(self.body(x + self.pos)) * self.scale


def test_free_standing_choices_join_the_space_and_build_their_network():
    model = FreeStanding()
    space = model.space
    assert {"bn", "layers", "dim", "act", "scale", "tag"} <= set(space.labels)
    assert model.use_bn is True and model.scale == 0.5  # the space instance is built at the first candidates
    assert len(space.labels) == 6 and space.size == 2 * 3 * 2 * 2 * 2 * 2
    for arch in space.grid():
        net = model.freeze(arch)
        with nasforge.fixed_arch(arch):
            direct = FreeStanding()
        same_network(net, direct)
        same_network(net, FreeStanding.build(arch))
        assert net.pos.shape == (arch["dim"],)
        linears = [m for m in net.body if isinstance(m, torch.nn.Linear)]
        bns = [m for m in net.body if isinstance(m, torch.nn.BatchNorm1d)]
        assert len(linears) == arch["layers"] and len(bns) == (arch["layers"] if arch["bn"] else 0)
        assert net.use_bn is arch["bn"] and net.scale == arch["scale"]
        net.eval()
        assert net(torch.randn(3, arch["dim"])).shape == (3, arch["dim"])
    model.activate({"bn": True, "layers": 1, "dim": 4, "act": 1, "scale": 0.5, "tag": "y"})  # what it was built with
    with pytest.raises(InvalidArchError, match="'layers'.*in place"):
        model.activate({"bn": True, "layers": 2, "dim": 4, "act": 1, "scale": 0.5, "tag": "x"})


def test_free_standing_choice_needs_a_label_and_stays_an_error_outside_init():
    class Unlabelled(nn.Module):
        def __init__(self):
            super().__init__()
            if nn.choice([True, False]):
                self.fc = nn.Linear(2, 2)

    with pytest.raises(ChoiceUsageError, match="no label"):
        Unlabelled()
    with pytest.raises(ChoiceUsageError, match="concrete"):
        bool(nn.choice([True, False], label="x"))


def test_free_standing_constructor_argument_of_a_sub_module():
    class Block(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.layers = nn.Sequential(*[nn.Linear(3, 3) for _ in range(n)])

        def forward(self, x):
            return self.layers(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block(nn.choice([1, 2, 4], label="n"))
            self.head = nn.Linear(3, 1)

        def forward(self, x):
            return self.head(self.block(x))

    model = Net()
    for n in (1, 2, 4):
        net = model.freeze({"n": n})
        assert len(net.block.layers) == n
        same_network(net, Net.build({"n": n}))


# -- value-choice expressions -----------------------------------------------------------------------------


def make_divisible(value, divisor=8, min_value=None):
    """NNI / MobileNet's rule, written with value-choice helpers."""
    min_value = min_value or divisor
    new = nn.ValueChoice.max(min_value, nn.ValueChoice.to_int(value + divisor / 2) // divisor * divisor)
    return nn.ValueChoice.condition(new < 0.9 * value, new + divisor, new)


def test_expression_helpers_evaluate_per_arch():
    w = nn.choice([16, 24, 40], label="w")
    r = nn.choice([0.5, 0.75, 1.0], label="r")
    expr = make_divisible(w * r)
    for wv in (16, 24, 40):
        for rv in (0.5, 0.75, 1.0):
            v = wv * rv
            new = max(8, int(v + 4) // 8 * 8)
            assert expr.evaluate({"w": wv, "r": rv}) == (new + 8 if new < 0.9 * v else new)
    kt = nn.choice([(3, 1), (5, 2)], label="kt")
    assert kt[0].evaluate({"kt": [5, 2]}) == 5 and kt[1].evaluate({"kt": [3, 1]}) == 1
    cfg = nn.choice([{"c": 8, "e": 2}, {"c": 16, "e": 4}], label="cfg")
    assert (cfg["c"] * cfg["e"]).evaluate({"cfg": 1}) == 64
    assert (w > 20).evaluate({"w": 24}) is True and (w <= 16).evaluate({"w": 40}) is False
    assert nn.ValueChoice.min(w, 20).evaluate({"w": 40}) == 20
    assert nn.ValueChoice.max([w, 30, 8]).evaluate({"w": 16}) == 30
    assert nn.ValueChoice.to_float(w).evaluate({"w": 16}) == 16.0
    assert nn.ValueChoice.max(3, 5) == 5  # plain values stay plain


def test_expressions_in_layers_and_as_repeat_depth():
    class Mobile(nn.Module):
        def __init__(self):
            super().__init__()
            width = nn.choice([16, 24, 40], label="width")
            mult = nn.choice([0.5, 1.0], label="mult")
            kernel = nn.choice([(3, 1), (5, 2)], label="kernel")
            c = make_divisible(width * mult)
            self.stem = nn.Conv2d(3, c, kernel[0], padding=kernel[1])
            self.blocks = nn.Repeat(lambda i: nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.LayerChoice([nn.ReLU(), nn.GELU()])),
                                    nn.choice([0, 2, 4], label="depth") + 1)
            self.head = nn.Linear(c, 10)

        def forward(self, x):
            return self.head(self.blocks(self.stem(x)).mean((2, 3)))

    model = Mobile()
    space = model.space
    assert space["depth"].values == [0, 2, 4]
    assert space.condition("blocks.4.1") == [[("depth", [4])]]
    x = torch.randn(2, 3, 8, 8)
    for seed in range(12):
        arch = space.sample(seed)
        net = model.freeze(arch)
        assert len(net.blocks) == arch["depth"] + 1
        v = arch["width"] * arch["mult"]
        new = max(8, int(v + 4) // 8 * 8)
        c = new + 8 if new < 0.9 * v else new
        assert net.stem.out_channels == c and net.stem.kernel_size == (arch["kernel"][0],) * 2
        assert net(x).shape == (2, 10)
        same_network(net, Mobile.build(arch))


# -- LayerChoice item assignment, InputChoice [i] ---------------------------------------------------------------


def test_layer_choice_item_assignment():
    lc = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
    lc[0] = nn.GELU()
    assert isinstance(lc[0], torch.nn.GELU) and len(lc) == 2
    named = nn.LayerChoice(OrderedDict(a=nn.ReLU(), b=nn.Tanh()), label="n")
    named["b"] = nn.Sigmoid()
    assert isinstance(named["b"], torch.nn.Sigmoid)
    with pytest.raises(KeyError, match="'act' has no candidate 2"):
        lc[2] = nn.ReLU()
    with pytest.raises(KeyError, match="'n' has no candidate 'c'"):
        named["c"] = nn.ReLU()

    class S(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
            self.act[1] = nn.Sigmoid()

    assert isinstance(S().freeze({"act": 1}).act, torch.nn.Sigmoid)


def test_input_choice_accepts_singleton_lists():
    class S(nn.Module):
        def __init__(self):
            super().__init__()
            self.pick = nn.InputChoice(3, label="pick")

        def forward(self, xs):
            return self.pick(xs)

    model = S()
    xs = [torch.full((1,), float(i)) for i in range(3)]
    for i in range(3):
        assert model.space.validate({"pick": [i]}) == {"pick": i}
        assert float(model.freeze({"pick": [i]})(xs)) == i
        assert float(S.build({"pick": [i]})(xs)) == i
    with pytest.raises(InvalidArchError, match="'pick'"):
        model.freeze({"pick": [0, 1]})


# -- hyper-parameter choices in evaluators ------------------------------------------------------------------------


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, nn.choice([4, 8], label="hidden"))
        self.out = nn.Linear(nn.choice([4, 8], label="hidden"), 3)

    def forward(self, x):
        return self.out(torch.relu(self.fc(x)))


def blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    return torch.eye(4)[y] * 2 + 0.3 * torch.randn(n, 4, generator=g), y


def test_function_evaluator_hyperparameters_join_the_space():
    seen = []

    def fit(model, ctx, lr, batch_size, fixed):
        seen.append((dict(ctx.arch), lr, batch_size, fixed, model.fc.out_features))
        return lr * batch_size

    ev = FunctionEvaluator(fit, lr=nn.choice([1e-3, 3e-3], label="lr"), batch_size=nn.choice([64, 128]), fixed=7)
    assert ev.hyperparameters.labels == ["lr", "batch_size"]
    exp = Experiment(Tiny(), GridSearch(), ev, executor="inline")
    assert exp.space.labels == ["hidden", "lr", "batch_size"]
    exp.run()
    assert len(seen) == 8
    for arch, lr, bs, fixed, hidden in seen:
        assert (lr, bs, fixed, hidden) == (arch["lr"], arch["batch_size"], 7, arch["hidden"])
    best = exp.best(1)[0]
    assert best.arch["lr"] == 3e-3 and best.arch["batch_size"] == 128
    exported = exp.export()  # the model's arch: it builds with fixed_arch
    assert exported == {"hidden": best.arch["hidden"]}
    with nasforge.fixed_arch(exported):
        assert Tiny().fc.out_features == best.arch["hidden"]


def test_classification_hyperparameters_reach_the_training_loop():
    train, val = blobs(64, 0), blobs(32, 1)
    ev = Classification(train, val, test_data=val, epochs=nn.choice([1, 2], label="epochs"), lr=nn.choice([1e-2, 3e-2]),
                        optimizer=nn.choice(["adam", "SGD"], label="opt"), device="cpu")
    assert ev.hyperparameters.labels == ["epochs", "opt", "lr"]
    exp = Experiment(Tiny(), GridSearch(), ev, executor="inline", max_trials=4)
    exp.run()
    for t in exp.trials():
        assert len(t.reports) == t.arch["epochs"]  # one report per epoch: the chosen epochs were used
    resolved = ev._for_arch(type("C", (), {"arch": {"lr": 3e-2, "opt": "SGD", "epochs": 2}})())
    assert (resolved.lr, resolved.optimizer, resolved.epochs) == (3e-2, "sgd", 2)
    assert (ev.lr, ev.optimizer, ev.epochs) == (1e-2, "adam", 1)  # the evaluator itself is unchanged
    results = exp.test(top_k=1, retrain=False)
    assert results[0].status == "SUCCEEDED" and 0 <= results[0].metrics["test_acc"] <= 1


def test_hyperparameter_errors():
    train, val = blobs(16, 0), blobs(8, 1)
    with pytest.raises(ValueError, match="lr must be a positive number, got -1"):
        Classification(train, val, lr=nn.choice([1e-3, -1.0]))
    with pytest.raises(InvalidSpaceError, match="'loss' cannot be a choice|argument"):
        from nasforge.evaluate._hparams import HyperParameters

        HyperParameters("Classification", {"loss": nn.choice([1, 2])}, ("lr",))
    ev = FunctionEvaluator(lambda m, ctx, hidden: 0.0, hidden=nn.choice([1, 2], label="hidden"))
    with pytest.raises(InvalidSpaceError, match="'hidden'.*also labels of the model space"):
        Experiment(Tiny(), GridSearch(), ev, executor="inline")
    assert math.isfinite(Classification(train, val, lr=1e-3).lr)


def test_spaces_with_every_kind_of_choice_pickle_and_freeze_alike():
    import pickle

    model = FreeStanding()
    clone = pickle.loads(pickle.dumps(model))
    assert clone.space.fingerprint() == model.space.fingerprint()
    for seed in range(5):
        arch = model.space.sample(seed)
        same_network(model.freeze(arch), clone.freeze(arch))
