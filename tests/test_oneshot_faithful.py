"""One-shot trainers: determinism, metrics, named probabilities, threads, cost terms, DrNAS, ENAS/Proxyless options."""

from __future__ import annotations

import math
import os

import pytest
import torch

from nasforge.benchmarks.seed_model import Net
from nasforge.oneshot import (
    DartsTrainer,
    DrNasTrainer,
    EnasTrainer,
    GumbelDartsTrainer,
    ProxylessTrainer,
    RandomOneShotTrainer,
    default_threads,
    measure_cost_table,
)
from tests.oneshot_dist_worker import Small, tiny_data

torch.set_num_threads(1)

ALL = [DartsTrainer, GumbelDartsTrainer, DrNasTrainer, EnasTrainer, ProxylessTrainer, RandomOneShotTrainer]
IDS = ["darts", "gdas", "drnas", "enas", "proxyless", "spos"]


def build(cls, model, epochs=2, data=None, seed=0, metrics=None, **kw):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss = torch.nn.CrossEntropyLoss()
    data = data if data is not None else tiny_data(n=48)
    kw.setdefault("threads", 1)
    if cls is EnasTrainer:
        return cls(model, loss, metrics, None, opt, epochs, data, batch_size=8, seed=seed, ctrl_steps_aggregate=2, **kw)
    if cls is RandomOneShotTrainer:
        kw = {"search_samples": 5, "population_size": 3, "top_k": 2, **kw}
    elif cls is not EnasTrainer:
        kw = {"arc_learning_rate": 0.05, **kw}
    return cls(model, loss, metrics, opt, epochs, data, batch_size=8, seed=seed, **kw)


def small(seed: int = 1) -> Small:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Small()


def state(trainer) -> dict:
    if isinstance(trainer, EnasTrainer):
        return {f"c{i}": p.detach().clone() for i, p in enumerate(trainer.controller.parameters())}
    return trainer.arch_parameters()


# -- determinism --------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_same_seed_same_arch_and_alpha_without_touching_the_global_rng(cls):
    runs = []
    for _ in range(2):
        model = small()
        torch.manual_seed(1234)  # whatever the global RNG holds must not matter, and must not move
        before = torch.get_rng_state()
        trainer = build(cls, model, seed=7).fit()
        assert torch.equal(torch.get_rng_state(), before), "the trainer advanced the global torch RNG"
        runs.append((trainer.export(), state(trainer), [dict(h) for h in trainer.history],
                     {k: v.clone() for k, v in model.state_dict().items()}))
    (a0, s0, h0, w0), (a1, s1, h1, w1) = runs
    assert a0 == a1 and h0 == h1
    assert s0.keys() == s1.keys() and all(torch.equal(s0[k], s1[k]) for k in s0)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)


@pytest.mark.parametrize("cls", [DartsTrainer, DrNasTrainer, GumbelDartsTrainer, EnasTrainer], ids=["darts", "drnas", "gdas", "enas"])
def test_another_seed_gives_another_search(cls):
    a = build(cls, small(), seed=0).fit()
    b = build(cls, small(), seed=1).fit()
    sa, sb = state(a), state(b)
    assert any(not torch.equal(sa[k], sb[k]) for k in sa)


def test_seed_none_draws_from_the_global_rng_reproducibly():
    torch.manual_seed(3)
    a = build(DartsTrainer, small(), seed=None).fit()
    torch.manual_seed(3)
    b = build(DartsTrainer, small(), seed=None).fit()
    assert a.seed is None and a.export() == b.export()


# -- metrics, history, probabilities ------------------------------------------------------------

@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_metrics_are_recorded_every_epoch_without_log_frequency(cls):
    calls = []

    def metrics(out, y):
        calls.append(len(y))
        return {"acc": float((out.argmax(1) == y).float().mean()), "top3": float((out.topk(3, 1).indices == y[:, None]).any(1).float().mean())}

    trainer = build(cls, small(), epochs=3, metrics=metrics, log_frequency=None)
    trainer.fit()
    assert [h["epoch"] for h in trainer.history] == [1, 2, 3]
    for h in trainer.history:
        assert 0.0 <= h["acc"] <= h["top3"] <= 1.0 and math.isfinite(h["loss"])
        if cls is not RandomOneShotTrainer:  # the architecture distribution after each epoch
            assert set(h["arch_probabilities"]["a"]) == {"conv3", "conv5", "pool"}
    if cls is not RandomOneShotTrainer:
        assert trainer.history[-1]["arch_probabilities"] == trainer.arch_probabilities()
    assert len(calls) == 3 * math.ceil(24 / 8)  # every weight step of every epoch


def test_metrics_must_be_callable_and_return_a_dict():
    with pytest.raises(TypeError, match="metrics"):
        DartsTrainer(small(), None, "acc", None, 1, tiny_data())
    trainer = DartsTrainer(small(), None, lambda o, y: 0.5, None, 1, tiny_data(), batch_size=8, threads=1)
    with pytest.raises(TypeError, match="dict"):
        trainer.fit()


@pytest.mark.parametrize("cls", [DartsTrainer, DrNasTrainer, GumbelDartsTrainer, ProxylessTrainer, EnasTrainer],
                         ids=["darts", "drnas", "gdas", "proxyless", "enas"])
def test_arch_probabilities_are_keyed_by_candidate_names(cls):
    trainer = build(cls, small(), epochs=1).fit()
    probs = trainer.arch_probabilities()
    assert set(probs["a"]) == {"conv3", "conv5", "pool"}  # named LayerChoice candidates
    assert set(probs["b"]) == {0, 1} and set(probs["skip"]) == {0, 1}  # unnamed: indices
    for p in probs.values():
        assert abs(sum(p.values()) - 1.0) < 1e-5
    arch = trainer.export()
    assert arch["a"] in probs["a"]


def test_arch_probabilities_of_nb201_use_op_names():
    from nasforge.benchmarks.nasbench201 import NasBench201Space

    model = NasBench201Space(C=4, N=1, num_classes=10)
    trainer = build(DartsTrainer, model, epochs=1, data=tiny_data(n=32, size=8))
    probs = trainer.fit().arch_probabilities()
    assert all(set(p) == {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"} for p in probs.values())


# -- threads ------------------------------------------------------------------------------------

def test_thread_count_default_argument_and_restore(monkeypatch):
    n = default_threads()
    assert 1 <= n <= len(os.sched_getaffinity(0))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "64")
    assert default_threads() == 1
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    torch.set_num_threads(1)
    assert default_threads() == 1  # never above torch's current setting (OMP_NUM_THREADS, set_num_threads)
    seen = []

    def metrics(out, y):
        seen.append(torch.get_num_threads())
        return {}

    torch.set_num_threads(1)
    DartsTrainer(small(), None, metrics, None, 1, tiny_data(), batch_size=8, threads=2).fit()
    assert set(seen) == {2} and torch.get_num_threads() == 1  # set while fitting, restored after
    seen.clear()
    DartsTrainer(small(), None, metrics, None, 1, tiny_data(), batch_size=8, threads=0).fit()
    assert set(seen) == {1}  # 0: torch's setting left alone
    assert DartsTrainer(small(), None, None, None, 1, tiny_data()).threads == default_threads()
    with pytest.raises(ValueError, match="threads"):
        DartsTrainer(small(), None, None, None, 1, tiny_data(), threads=-1)


# -- cost terms -----------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["flops", "params"])
def test_measure_cost_table_of_each_candidate(metric):
    trainer = build(DartsTrainer, small(), epochs=0)
    table = measure_cost_table(trainer, torch.randn(1, 3, 8, 8), metric)
    assert set(table) == {"a", "b"}  # layer choices
    conv3, conv5, pool = table["a"]
    assert pool == 0 and 0 < conv3 < conv5
    assert table["b"][1] == 0 < table["b"][0]
    with pytest.raises(ValueError, match="metric"):
        measure_cost_table(trainer, torch.randn(1, 3, 8, 8), "energy")


@pytest.mark.parametrize("cls", [DartsTrainer, DrNasTrainer, GumbelDartsTrainer, ProxylessTrainer], ids=["darts", "drnas", "gdas", "proxyless"])
def test_cost_penalty_pushes_the_distribution_to_cheap_candidates(cls):
    table = {"a": [9.0, 25.0, 0.0], "b": [9.0, 0.0]}
    plain = build(cls, small(), epochs=3)
    costly = build(cls, small(), epochs=3, cost_table=table, cost_weight=20.0)
    plain.fit()
    costly.fit()

    def expected(trainer):
        probs = trainer.arch_probabilities()
        return sum(p * c for label, costs in table.items() for p, c in zip(probs[label].values(), costs))

    assert expected(costly) < expected(plain)
    assert costly.arch_probabilities()["a"]["conv5"] < plain.arch_probabilities()["a"]["conv5"]
    assert costly.export()["a"] != "conv5"


@pytest.mark.parametrize("cls", [EnasTrainer, RandomOneShotTrainer], ids=["enas", "spos"])
def test_sampling_methods_subtract_the_path_cost(cls):
    table = {"a": [0.0, 1e6, 0.0], "b": [0.0, 0.0]}
    trainer = build(cls, small(), epochs=2, cost_table=table, cost_weight=100.0)
    trainer.fit()
    assert trainer.export()["a"] != "conv5"


def test_cost_table_is_checked():
    with pytest.raises(ValueError, match="'nope'"):
        build(DartsTrainer, small(), cost_table={"nope": [1.0]})
    with pytest.raises(ValueError, match="3 candidates"):
        build(DartsTrainer, small(), cost_table={"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="cost_table"):
        build(DartsTrainer, small(), cost_weight=1.0)


def test_proxyless_latency_target_only_pushes_above_the_target():
    table = {"a": [1.0, 5.0, 0.1], "b": [1.0, 0.1]}
    loose = build(ProxylessTrainer, small(), epochs=3, latency_table=table, latency_target=100.0)
    tight = build(ProxylessTrainer, small(), epochs=3, latency_table=table, latency_target=0.3, latency_beta=2.0)
    free = build(ProxylessTrainer, small(), epochs=3)
    for t in (loose, tight, free):
        t.fit()
    # a target above every arch's latency changes nothing; a tight one lowers the expected latency
    assert loose.arch_parameters().keys() == free.arch_parameters().keys()
    assert all(torch.allclose(loose.arch_parameters()[k], free.arch_parameters()[k]) for k in free.arch_parameters())
    assert float(tight.expected_latency().detach()) < float(loose.expected_latency().detach())
    with pytest.raises(ValueError, match="latency_target"):
        build(ProxylessTrainer, small(), latency_target=1.0)
    with pytest.raises(ValueError, match="latency_target"):
        build(ProxylessTrainer, small(), latency_table=table, latency_target=0.0)


# -- DrNAS ------------------------------------------------------------------------------------------

def test_drnas_samples_dirichlet_weights_and_keeps_concentrations_positive():
    trainer = build(DrNasTrainer, small(), epochs=2)
    slot = trainer.supernet.slots["a"]
    trainer._sample_weights()
    w = slot.fixed
    assert w.shape == (3,) and torch.all(w > 0) and abs(float(w.sum()) - 1) < 1e-5
    assert w.requires_grad  # pathwise gradient to θ
    w.sum().backward()  # reaches θ
    assert slot.alpha.grad is not None
    trainer._clear_weights()
    trainer.fit()
    assert all(torch.all(DrNasTrainer.concentration(s) > 0) for s in trainer.supernet.slots.values())
    assert all(s.fixed is None for s in trainer.supernet.slots.values())
    assert "kl" in trainer.history[-1] and trainer.history[-1]["kl"] >= 0


def test_drnas_kl_anchor_pulls_towards_the_uniform_dirichlet():
    strong = build(DrNasTrainer, small(), epochs=3, reg_scale=10.0).fit()
    none = build(DrNasTrainer, small(), epochs=3, reg_scale=0.0).fit()
    assert strong.history[-1]["kl"] < none.history[-1]["kl"]


def test_drnas_progressive_pruning_keeps_half_and_exports_among_them():
    from nasforge.benchmarks.nasbench201 import NasBench201Space

    model = NasBench201Space(C=4, N=1, num_classes=10)
    trainer = build(DrNasTrainer, model, epochs=2, data=tiny_data(n=32, size=8), progressive=True, exclude_zero=True)
    trainer.fit()
    assert trainer.pruned and all(len(k) == 3 for k in trainer.kept.values())
    arch = trainer.export()
    for label, kept in trainer.kept.items():
        slot = trainer.supernet.slots[label]
        assert slot.categorical.index(arch[label]) in kept and arch[label] != "none"
        probs = trainer.arch_probabilities()[label]
        assert sum(1 for v in probs.values() if v > 0) == 3
    net = model.freeze(arch)
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_drnas_refuses_options_it_does_not_have():
    with pytest.raises(ValueError, match="unrolled"):
        build(DrNasTrainer, small(), unrolled=True)
    with pytest.raises(ValueError, match="regularization"):
        build(DrNasTrainer, small(), regularization="beta")
    with pytest.raises(ValueError, match="prune_keep"):
        build(DrNasTrainer, small(), prune_keep=0)


def test_drnas_on_the_seed_model_learns_and_freezes():
    model = Net()
    trainer = build(DrNasTrainer, model, epochs=2, data=tiny_data(n=32, size=16))
    before = trainer.arch_parameters()
    trainer.fit()
    after = trainer.arch_parameters()
    assert any(not torch.allclose(before[k], after[k]) for k in before)
    net = model.freeze(trainer.export())
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)


# -- ENAS ---------------------------------------------------------------------------------------------

def test_enas_entropy_bonus_is_in_the_reward_and_ctrl_train_steps_counts_updates():
    opt_model = small()
    opt = torch.optim.SGD(opt_model.parameters(), lr=0.05)
    trainer = EnasTrainer(opt_model, None, None, None, opt, 1, tiny_data(n=48), batch_size=8, seed=0, threads=1,
                          entropy_weight=10.0, ctrl_train_steps=5, ctrl_steps_aggregate=2)
    steps = []
    orig = trainer.ctrl_optimizer.step
    trainer.ctrl_optimizer.step = lambda *a, **k: (steps.append(1), orig(*a, **k))[1]
    trainer.fit()
    assert len(steps) == 5
    # the baseline tracks accuracy + 10 · entropy: far above any accuracy
    assert trainer.baseline > 1.0 and trainer.history[-1]["reward"] <= 1.0


def test_enas_skip_penalty_lowers_the_probability_of_parameter_free_ops():
    def run(skip_weight):
        model = small()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        t = EnasTrainer(model, None, None, None, opt, 3, tiny_data(n=48), batch_size=8, seed=0, threads=1,
                        ctrl_lr=0.05, ctrl_train_steps=6, ctrl_steps_aggregate=1, skip_weight=skip_weight, skip_target=0.05)
        t.fit()
        probs = t.arch_probabilities()
        return probs["a"]["pool"] + probs["b"][1]

    assert run(50.0) < run(0.0)
    with pytest.raises(ValueError, match="skip_target"):
        EnasTrainer(small(), None, None, None, None, 1, tiny_data(), skip_target=1.5)


# -- P-DARTS' cap on parameter-free picks at export --------------------------------------------------

@pytest.mark.parametrize("cap", [0, 1, 2, 6])
@pytest.mark.parametrize("cls", [DartsTrainer, DrNasTrainer], ids=["darts", "drnas"])
def test_export_max_param_free_caps_skip_and_pooling_picks(cls, cap):
    from nasforge.benchmarks.nasbench201 import NasBench201Space

    model = NasBench201Space(C=4, N=1, num_classes=10)
    trainer = build(cls, model, epochs=0, data=tiny_data(n=32, size=8), exclude_zero=True, export_max_param_free=cap)
    gen = torch.Generator().manual_seed(cap)
    with torch.no_grad():  # an α that favours skip / pooling on every edge, by different margins
        for slot in trainer.supernet.slots.values():
            slot.alpha.copy_(torch.randn(slot.n, generator=gen))
            slot.alpha[slot.categorical.index("skip_connect")] += 3 + float(torch.rand((), generator=gen))
    uncapped = trainer.supernet.export_from_alphas(True)
    arch = trainer.export()
    free = [label for label, op in arch.items() if op in ("skip_connect", "avg_pool_3x3")]
    assert len(free) == min(cap, 6)
    scores = trainer.arch_scores()
    kept = sorted(uncapped, key=lambda lb: float(scores[lb][trainer.supernet.slots[lb].categorical.index("skip_connect")]), reverse=True)[:cap]
    assert set(free) == set(kept)  # the strongest skip picks stay
    for label in set(arch) - set(free):  # the others: their strongest convolution
        slot = trainer.supernet.slots[label]
        convs = ["nor_conv_1x1", "nor_conv_3x3"]
        assert arch[label] == max(convs, key=lambda op: float(scores[label][slot.categorical.index(op)]))
    with pytest.raises(ValueError, match="export_max_param_free"):
        build(DartsTrainer, small(), export_max_param_free=-1)
