"""One-shot trainers: a few steps on tiny data; α moves, exports are valid and freeze."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import nasforge.nn as nn
from nasforge.benchmarks.seed_model import Net
from nasforge.oneshot import (
    DartsTrainer,
    EnasTrainer,
    GumbelDartsTrainer,
    OneShotStrategy,
    ProxylessTrainer,
    RandomOneShotTrainer,
    UnsupportedOneShotError,
)
from nasforge.oneshot.supernet import MixedLayerChoice, SampledLayerChoice, Supernet

torch.set_num_threads(1)


def tiny_data(n: int = 32, size: int = 16, seed: int = 0) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = torch.randn(n, 3, size, size, generator=g) + y.view(-1, 1, 1, 1) * 0.3  # learnable signal
    return torch.utils.data.TensorDataset(x, y)


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def make(cls, model, epochs=2, **kw):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss = torch.nn.CrossEntropyLoss()
    data = tiny_data()
    if cls is EnasTrainer:
        return cls(model, loss, None, None, opt, epochs, data, batch_size=8, seed=0, **kw)
    return cls(model, loss, None, opt, epochs, data, batch_size=8, seed=0, **kw)


ALPHA_TRAINERS = [
    (DartsTrainer, {}),
    (DartsTrainer, {"unrolled": True}),
    (DartsTrainer, {"regularization": "beta", "reg_weight": 5.0}),
    (GumbelDartsTrainer, {}),
    (ProxylessTrainer, {}),
]


@pytest.mark.parametrize(("cls", "kw"), ALPHA_TRAINERS, ids=["darts", "darts2nd", "darts_beta", "gdas", "proxyless"])
def test_alpha_trainers_on_seed_model(cls, kw):
    model = Net()
    trainer = make(cls, model, **kw)
    before = trainer.arch_parameters()
    w_before = weights(model)
    assert trainer.fit() is trainer
    after = trainer.arch_parameters()
    assert set(after) == set(model.space)
    assert all(not torch.equal(before[k], after[k]) for k in after), "every α should move"
    w_after = model.state_dict()
    assert any(not torch.equal(w_before[f"conv1.{k}.weight"], w_after[f"conv1.{k}.weight"]) for k in (0, 1)), "candidates train"
    arch = trainer.export()
    assert model.space.validate(arch) == arch
    json.dumps(arch)
    assert isinstance(model.conv1, nn.LayerChoice), "the original choices are restored after fit()"
    net = model.freeze(arch)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    probs = trainer.arch_probabilities()
    assert all(abs(sum(p) - 1) < 1e-5 for p in probs.values())


def test_arch_params_never_in_weight_optimizer():
    model = Net()
    trainer = make(DartsTrainer, model)
    ids = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert not ids & {id(a) for a in trainer.alpha_list}
    assert {id(p) for p in model.parameters()} <= ids  # candidate weights stay covered
    # the converted modules hold the very same candidate objects
    trainer.supernet.install()
    assert isinstance(model.conv1, MixedLayerChoice)
    assert model.conv1.ops[1] is trainer.supernet._replaced[0][2][1]
    trainer.supernet.restore()


def test_darts_learns_the_informative_choice():
    """A choice between a useful layer and a zero layer: DARTS must prefer the useful one."""

    class Toy(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.feat = nn.LayerChoice({"zero": nn.Linear(4, 4), "lin": nn.Linear(4, 4)}, label="feat")
            torch.nn.init.zeros_(self.feat["zero"].weight)
            self.feat["zero"].weight.requires_grad_(False)
            self.feat["zero"].bias.requires_grad_(False)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.feat(x))

    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g)
    y = (x[:, 0] > 0).long()
    model = Toy()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    trainer = DartsTrainer(model, torch.nn.CrossEntropyLoss(), None, opt, 8, torch.utils.data.TensorDataset(x, y),
                           batch_size=32, arc_learning_rate=0.05, seed=0)
    trainer.fit()
    assert trainer.export() == {"feat": "lin"}
    assert trainer.arch_probabilities()["feat"]["lin"] > 0.6


@pytest.mark.parametrize("cls", [EnasTrainer, RandomOneShotTrainer], ids=["enas", "spos"])
def test_sampling_trainers_on_seed_model(cls):
    model = Net()
    kw = {"ctrl_steps_aggregate": 1} if cls is EnasTrainer else {"search_samples": 4, "population_size": 2}
    trainer = make(cls, model, **kw)
    if cls is EnasTrainer:
        before = [p.detach().clone() for p in trainer.controller.parameters()]
    w_before = weights(model)
    trainer.fit()
    if cls is EnasTrainer:
        assert any(not torch.equal(a, b) for a, b in zip(before, trainer.controller.parameters())), "controller trains"
    else:
        assert len(trainer.search_history) == 4
        assert all(0.0 <= acc <= 1.0 for _, acc in trainer.search_history)
    assert not torch.equal(w_before["fc1.weight"], model.state_dict()["fc1.weight"])
    arch = trainer.export()
    assert model.space.validate(arch) == arch
    assert model.freeze(arch)(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_spos_recalibrates_batchnorm_and_keeps_supernet_stats():
    model = Net()
    trainer = make(RandomOneShotTrainer, model, epochs=1, search_samples=2, population_size=2)
    trainer.fit()
    stats = model.bn.running_mean.clone()
    acc = trainer.evaluate_arch(trainer.export())
    assert 0.0 <= acc <= 1.0
    assert torch.equal(stats, model.bn.running_mean), "evaluation must not overwrite the supernet's statistics"
    assert isinstance(model.conv1, nn.LayerChoice)


class CellSpace(nn.ModelSpace):
    """A DARTS-style cell with input choices (ops depending on the input) and a Repeat."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.cell = nn.Cell(
            {
                "conv": lambda node, op, inp: nn.Conv2d(8, 8, 3, padding=1),
                "pool": lambda node, op, inp: nn.AvgPool2d(3, 1, 1),
                "skip": lambda node, op, inp: nn.Identity(),
            },
            num_nodes=2, num_ops_per_node=2, num_predecessors=2, merge_op="all", label="cell",
        )
        self.blocks = nn.Repeat(lambda i: nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU()), depth=(1, 3), label="depth")
        self.skip = nn.InputChoice(3, n_chosen=2, reduction="sum", label="skip")
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        s = self.stem(x)
        c = self.cell([s, s])
        b = self.blocks(c)
        z = self.skip([b, c, b * 0.5])
        return self.head(z.mean((2, 3)))


@pytest.mark.parametrize("cls", [DartsTrainer, GumbelDartsTrainer, ProxylessTrainer, EnasTrainer, RandomOneShotTrainer],
                         ids=["darts", "gdas", "proxyless", "enas", "spos"])
def test_cells_repeat_and_multi_input_choices(cls):
    model = CellSpace()
    kw = {"search_samples": 3, "population_size": 2} if cls is RandomOneShotTrainer else {}
    trainer = make(cls, model, epochs=1, **kw)
    trainer.fit()
    arch = trainer.export()
    assert set(arch) == set(model.space)
    assert model.space.validate(arch) == arch
    assert isinstance(arch["skip"], list) and len(arch["skip"]) == 2
    assert model.freeze(arch)(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_nb201_style_tied_labels_share_one_decision():
    from nasforge.benchmarks.nasbench201 import NasBench201Space

    model = NasBench201Space(C=4, N=2, num_classes=10)
    sup = Supernet(model, "sampled")
    assert sorted(sup.slots) == sorted(model.space)
    mods = [m for m in model.modules() if isinstance(m, SampledLayerChoice)]
    assert len(mods) == 6 * 6
    assert len({id(m.slot) for m in mods}) == 6
    assert sup.slots["op_1_0"].param_free == [True, True, False, False, True]
    sup.restore()
    assert not any(isinstance(m, SampledLayerChoice) for m in model.modules())


def test_supernet_arch_helpers_round_trip_over_sampled_archs():
    """set_arch / arch_of_indices / probabilities agree with the space for many sampled archs."""
    from nasforge.benchmarks.nasbench201 import NasBench201Space

    model = NasBench201Space(C=4, N=1, num_classes=10)
    sampled = Supernet(model, "sampled")
    rng = np.random.default_rng(0)
    for _ in range(20):
        arch = model.space.sample(rng)
        sampled.set_arch(arch)
        chosen = {label: slot.index for label, slot in sampled.slots.items()}
        assert sampled.arch_of_indices(chosen) == arch
    sampled.restore()
    mixed = Supernet(NasBench201Space(C=4, N=1, num_classes=10), "mixed")
    mixed.init_alphas(generator=torch.Generator().manual_seed(0))
    probs = mixed.probabilities()
    assert set(probs) == set(mixed.slots)
    assert all(len(p) == 5 and abs(sum(p) - 1) < 1e-6 for p in probs.values())
    mixed.restore()


def test_value_choice_widths_are_refused_with_the_label():
    class Wide(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, nn.ValueChoice([4, 8], label="width"), 3)

        def forward(self, x):
            return self.conv(x)

    with pytest.raises(UnsupportedOneShotError, match="width"):
        make(DartsTrainer, Wide())


def test_max_param_free_early_stop_exports_previous_arch():
    model = Net()
    trainer = make(DartsTrainer, model, epochs=4, max_param_free=-1, warmup_epochs=1)  # any arch "collapses"
    trainer.fit()
    assert trainer.epoch == 2  # warm-up epoch, then the first search epoch trips the criterion
    assert model.space.validate(trainer.export())
    model2 = Net()
    trainer2 = make(DartsTrainer, model2, epochs=3, max_param_free=5)  # never trips
    trainer2.fit()
    assert trainer2.epoch == 3


def test_proxyless_latency_table_and_term():
    model = Net()
    trainer = make(ProxylessTrainer, model, epochs=1, dummy_input=torch.randn(1, 3, 16, 16), latency_weight=1.0)
    assert set(trainer.latency_table) == {"conv1", "conv2"}
    assert all(len(v) == 2 and all(t > 0 for t in v) for v in trainer.latency_table.values())
    trainer.fit()
    assert "expected_latency_ms" in trainer.history[-1]
    assert model.space.validate(trainer.export())


def test_gdas_temperature_anneals():
    model = Net()
    trainer = make(GumbelDartsTrainer, model, epochs=3, gumbel_temperature=10.0, min_temperature=0.1)
    trainer.fit()
    taus = [h["tau"] for h in trainer.history]
    assert taus[0] == pytest.approx(10.0) and taus[-1] == pytest.approx(0.1)


def test_one_shot_strategy_in_an_experiment():
    from nasforge.evaluate.function import FunctionEvaluator
    from nasforge.experiment import Experiment

    model = Net()
    trainer = make(DartsTrainer, model, epochs=1)

    def score(net, ctx):
        return {"score": float(net(torch.randn(2, 3, 16, 16)).shape[1])}

    def test_fn(net, ctx, retrain):
        return {"test_acc": 0.5}

    exp = Experiment(model, OneShotStrategy(trainer), FunctionEvaluator(score, test_fn=test_fn), executor="inline")
    summary = exp.run()
    assert summary.n_trials == 1
    best = exp.best(1)[0]
    assert best.arch == trainer.export()
    results = exp.test(top_k=1, retrain=True)
    assert results[0].status == "SUCCEEDED" and results[0].metrics["test_acc"] == 0.5


def test_all_inputs_cell_with_darts_and_spos():
    class AllCell(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.cell = nn.Cell({"conv": lambda: nn.Conv2d(4, 4, 3, padding=1), "skip": lambda: nn.Identity()},
                                num_nodes=3, num_ops_per_node="all", merge_op="last", label="c")
            self.head = nn.Linear(4, 10)

        def forward(self, x):
            return self.head(self.cell(self.stem(x)).mean((2, 3)))

    for cls in (DartsTrainer, RandomOneShotTrainer):
        model = AllCell()
        kw = {"search_samples": 2, "population_size": 2} if cls is RandomOneShotTrainer else {}
        trainer = make(cls, model, epochs=1, **kw)
        trainer.fit()
        arch = trainer.export()
        assert sorted(arch) == sorted(model.space) and len(arch) == 6
        assert model.freeze(arch)(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_perturbation_selection_decides_every_layer_choice():
    model = Net()
    trainer = make(DartsTrainer, model, epochs=1, selection="perturbation", pt_tune_epochs=1, pt_eval_batches=1)
    trainer.fit()
    assert sorted(e["label"] for e in trainer.pt_log) == ["conv1", "conv2"]
    arch = trainer.export()
    assert all(arch[e["label"]] == e["chosen"] for e in trainer.pt_log)
    assert all(s.fixed is None for s in trainer.supernet.slots.values())
    assert model.freeze(arch)(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_exclude_zero_export_skips_the_none_op():
    from nasforge.benchmarks.nasbench201 import NasBench201Space

    model = NasBench201Space(C=4, N=1, num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    trainer = DartsTrainer(model, None, None, opt, 0, tiny_data(), batch_size=8, seed=0, exclude_zero=True)
    assert trainer.supernet.slots["op_1_0"].zero == [True, False, False, False, False]
    with torch.no_grad():
        for slot in trainer.supernet.slots.values():
            slot.alpha.copy_(torch.tensor([5.0, 1.0, 2.0, 3.0, 0.0]))  # `none` strongest everywhere
    assert set(trainer.supernet.export_from_alphas().values()) == {"none"}
    assert set(trainer.export().values()) == {"nor_conv_3x3"}  # the strongest non-zero op
    plain = DartsTrainer(NasBench201Space(C=4, N=1), None, None, None, 0, tiny_data(), batch_size=8, seed=0)
    assert plain.exclude_zero is False


def test_lr_scheduler_is_stepped_once_per_epoch():
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    trainer = RandomOneShotTrainer(model, None, None, opt, 3, tiny_data(), batch_size=8, seed=0, lr_scheduler=sched,
                                   search_samples=2, eval_batches=None, score="loss")
    trainer.fit()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)
    assert model.space.validate(trainer.export())
    assert len(trainer.search_history) == 2 and all(score <= 0 for _, score in trainer.search_history)  # -loss


def test_gdas_reference_gradient_reaches_every_candidate():
    model = Net()
    trainer = make(GumbelDartsTrainer, model, epochs=1, reference_gradient=True)
    x, y = tiny_data()[:8]
    trainer.supernet.install()
    trainer._sample(gated=True)
    grads = torch.autograd.grad(trainer.loss(model(x), y), trainer.alpha_list, retain_graph=True)
    for slot in trainer.supernet.slots.values():
        slot.gate_all = False  # the gradient of the sampled path only
    plain = torch.autograd.grad(trainer.loss(model(x), y), trainer.alpha_list)
    trainer.supernet.restore()
    assert all(bool((g != 0).all()) for g in grads)
    assert any(not torch.allclose(g, p) for g, p in zip(grads, plain))


@pytest.mark.parametrize("samples,population,top_k", [(6, 3, 2), (5, 8, 8), (4, 2, 5)])
def test_spos_search_is_the_library_regularized_evolution(samples, population, top_k):
    from nasforge.strategy import RegularizedEvolution
    from nasforge.strategy.testing import run_ask_tell

    model = Net()
    trainer = make(RandomOneShotTrainer, model, epochs=1, search_samples=samples, population_size=population,
                   top_k=top_k, mutation_prob=0.3)
    trainer.fit()
    state = trainer.generator.get_state()
    best = trainer.search()
    replay = torch.Generator()
    replay.set_state(state)
    seed = int(torch.randint(0, 2**31 - 1, (), generator=replay))
    pop = min(population, samples)
    evolution = RegularizedEvolution(population_size=pop, sample_size=min(top_k, pop), mutation_prob=0.3)
    trials = run_ask_tell(evolution, model.space, trainer.evaluate_arch, samples, seed=seed)
    searched = trainer.search_history[-samples:]
    assert [t.arch for t in trials] == [a for a, _ in searched]  # the same proposals, in order
    assert [t.score for t in trials] == pytest.approx([s for _, s in searched])
    assert len({tuple(sorted(a.items())) for a, _ in searched}) == samples  # distinct sub-networks
    assert best == max(searched, key=lambda item: item[1])[0] == trainer.export()


@pytest.mark.parametrize("kw", [{"search_samples": 0}, {"population_size": "16"}, {"top_k": 0}, {"mutation_prob": 1.5}])
def test_spos_refuses_bad_search_settings_before_training(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        make(RandomOneShotTrainer, Net(), epochs=1, **kw)


def test_spos_search_reports_a_failing_sub_network_instead_of_skipping_it():
    def loss(out, y):
        if not torch.is_grad_enabled():
            raise RuntimeError("scoring broke")
        return torch.nn.functional.cross_entropy(out, y)

    trainer = RandomOneShotTrainer(Net(), loss, None, None, 1, tiny_data(), batch_size=8, seed=0, score="loss",
                                   search_samples=3, population_size=2)
    with pytest.raises(RuntimeError, match="scoring broke"):
        trainer.fit()
