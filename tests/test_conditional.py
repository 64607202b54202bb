"""Conditional spaces: labels of branches not taken are inactive; an arch means one network.

The space knows its conditions as plain data; canonical archs drop inactive labels; strategies
de-duplicate and mutate on canonical archs; encodings ignore inactive labels.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

from nasforge.errors import InvalidArchError
from nasforge.space import Categorical, Space, arch_key
from nasforge.strategy.testing import run_ask_tell
from tests.test_strategy import ALL


def family_space() -> Space:
    """cnn (depth 1-3, a kernel per block) / rnn (cell, hidden) / mlp (width)."""
    return Space(
        [
            Categorical(["cnn", "rnn", "mlp"], label="family"),
            Categorical([1, 2, 3], label="depth"),
            Categorical([3, 5, 7], label="k0"),
            Categorical([3, 5, 7], label="k1"),
            Categorical([3, 5, 7], label="k2"),
            Categorical(["gru", "lstm"], label="cell"),
            Categorical([32, 64], label="hidden"),
            Categorical([64, 128, 256], label="width"),
            Categorical([0.0, 0.1], label="dropout"),
        ],
        conditions={
            "depth": [[("family", ["cnn"])]],
            "k0": [[("family", ["cnn"])]],
            "k1": [[("family", ["cnn"]), ("depth", [2, 3])]],
            "k2": [[("family", ["cnn"]), ("depth", [3])]],
            "cell": [[("family", ["rnn"])]],
            "hidden": [[("family", ["rnn"])]],
            "width": [[("family", ["mlp"])]],
        },
    )


# cnn: 3 + 9 + 27 kernels; rnn: 4; mlp: 3 — times 2 dropouts
SIZE = (3 + 9 + 27 + 4 + 3) * 2


def test_size_grid_and_canonical_forms():
    space = family_space()
    assert space.conditional and space.size == SIZE and space.full_size == 3 * 3 * 27 * 2 * 2 * 3 * 2
    archs = list(space.grid())
    assert len(archs) == SIZE and len({arch_key(a) for a in archs}) == SIZE
    for arch in archs:
        assert space.canonical(arch) == arch and list(arch) == [lab for lab in space.labels if lab in arch]
        full = space.complete(arch, 0)
        assert set(full) == set(space.labels) and space.canonical(full) == arch  # full form accepted
    # every full assignment maps to one of the canonical archs
    rng = np.random.default_rng(0)
    keys = {arch_key(a) for a in archs}
    for _ in range(200):
        assert arch_key(space.canonical(space.sample_full(rng))) in keys
    assert space.canonical({"family": "rnn", "cell": "gru", "hidden": 32, "dropout": 0.0, "k2": 5}) == {
        "family": "rnn", "cell": "gru", "hidden": 32, "dropout": 0.0}


def test_validate_requires_active_labels_only():
    space = family_space()
    with pytest.raises(InvalidArchError, match="missing.*'k1'.*active"):
        space.validate({"family": "cnn", "depth": 2, "k0": 3, "dropout": 0.0})
    with pytest.raises(InvalidArchError, match="'k2'.*valid values: \\[3, 5, 7\\]"):
        space.validate({"family": "mlp", "width": 64, "dropout": 0.0, "k2": 4})  # bad value even if inactive
    with pytest.raises(InvalidArchError, match="unknown.*'kk'"):
        space.validate({"family": "mlp", "width": 64, "dropout": 0.0, "kk": 4})
    assert space.validate({"family": "mlp", "width": 64, "dropout": 0.0}) == {"family": "mlp", "width": 64, "dropout": 0.0}


def test_description_round_trips_without_torch():
    space = family_space()
    desc = json.loads(json.dumps(space.describe()))
    code = (
        "import json, sys; from nasforge.space import Space; "
        f"s = Space.from_description(json.loads({json.dumps(json.dumps(desc))})); "
        "print(s.size, json.dumps(s.canonical({'family': 'rnn', 'cell': 'gru', 'hidden': 64, 'dropout': 0.1, 'k0': 3})), "
        "'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": "src"}).stdout.split(" ", 1)
    assert int(out[0]) == SIZE
    assert out[1].strip().endswith("False")
    rebuilt = Space.from_description(desc)
    assert rebuilt.describe() == desc and rebuilt.fingerprint(candidates=False) == space.fingerprint(candidates=False)
    for seed in range(20):
        full = space.sample_full(seed)
        assert rebuilt.canonical(full) == space.canonical(full)


def test_mutate_and_neighbors_change_an_active_label():
    space = family_space()
    for seed in range(50):
        arch = space.sample(seed)
        child = space.mutate(arch, seed)
        assert child != arch and space.canonical(child) == child
        changed = [lab for lab in space.active_labels(arch) if child.get(lab) != arch[lab]]
        assert changed  # an active label changed, never only inactive ones
        nbs = space.neighbors(arch)
        assert len({arch_key(n) for n in nbs}) == len(nbs) and arch_key(arch) not in {arch_key(n) for n in nbs}
        assert all(space.canonical(n) == n for n in nbs)


def test_encodings_ignore_inactive_labels():
    space = family_space()
    a = {"family": "mlp", "width": 128, "dropout": 0.1}
    for full_seed in range(5):  # whatever the inactive labels hold, the encoding is the same
        full = {**space.sample_full(full_seed), **a}
        assert np.array_equal(space.encode(full), space.encode(a))
        assert np.array_equal(space.encode(full, "ordinal"), space.encode(a, "ordinal"))
    onehot = space.encode(a)
    assert onehot.sum() == 3  # family, width, dropout
    assert space.decode(onehot) == a


@pytest.mark.parametrize("name", sorted(ALL))
def test_strategies_never_propose_the_same_network_twice(name):
    space = family_space()
    strategy = ALL[name]()
    score = lambda arch: hash(arch_key(arch)) % 1000 / 1000.0  # noqa: E731
    trials = run_ask_tell(strategy, space, score, budget=SIZE + 10, seed=1, concurrency=2)
    keys = [arch_key(space.canonical(t.arch)) for t in trials]
    assert len(keys) == len(set(keys)), f"{name} proposed a network twice"
    for t in trials:
        assert space.canonical(t.arch) == t.arch  # proposals are canonical
    if name not in ("Progressive", "LocalSearch", "Hyperband", "SuccessiveHalving"):
        assert len(keys) == SIZE  # and it reaches every network, then stops


def test_tpe_learns_only_from_active_labels():
    from nasforge.strategy import TPE

    space = family_space()
    strategy = TPE(n_startup_trials=5)
    run_ask_tell(strategy, space, lambda a: 1.0 if a["family"] == "mlp" else 0.0, budget=25, seed=0)
    assert len(strategy._entries) >= 25
    for params, _, _ in strategy._entries:  # every observation holds exactly the labels its network used
        arch = {lab: space[lab].key_at(i) for lab, i in params.items()}
        assert set(params) == set(space.canonical(space.complete(arch, 0)))
    # and the estimator of a conditional label sees only the observations that used it
    below, above = strategy._split()
    for group in strategy._groups:
        cols = [strategy._col[label] for label in group]
        _, obs = strategy._kernels(np.concatenate([below, above]), cols)
        users = [p for p, status, _ in strategy._entries if status != "fail" and all(lab in p for lab in group)]
        assert len(obs) == len(users)


def test_evolution_mutates_active_labels():
    from nasforge.strategy import RegularizedEvolution

    space = family_space()
    strategy = RegularizedEvolution(population_size=4, sample_size=2, mutation_prob=0.0)
    strategy.setup(space, 0)
    for seed in range(30):
        parent = space.sample(seed)
        child = strategy._mutate(parent)
        assert any(child.get(lab) != parent[lab] for lab in space.active_labels(parent))


def test_model_space_conditions_follow_the_module_tree():
    import nasforge.nn as nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.op = nn.LayerChoice([nn.Identity(), nn.ReLU()])

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.family = nn.LayerChoice(
                OrderedDict(
                    a=nn.Repeat(lambda i: Block(), depth=(1, 3), label="depth"),
                    b=nn.Linear(2, nn.ValueChoice([2, 4], label="w")),
                ),
                label="family",
            )

    space = Net().space
    assert space.condition("family") is None
    assert space.condition("depth") == [[("family", ["a"])]]
    assert space.condition("family.a.0.op") == [[("family", ["a"])]]  # block 0 always exists
    assert space.condition("family.a.2.op") == [[("family", ["a"]), ("depth", [3])]]
    assert space.condition("w") == [[("family", ["b"])]]
    assert space.size == (2 + 4 + 8) + 2


def test_experiment_stores_and_exports_canonical_archs(tmp_path):
    import nasforge.nn as nn
    from nasforge import Experiment
    from nasforge.evaluate import FunctionEvaluator
    from nasforge.store import Store
    from nasforge.strategy import RegularizedEvolution

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.LayerChoice(
                OrderedDict(
                    conv=nn.Repeat(lambda i: nn.Conv1d(2, 2, nn.choice([1, 3], label=f"k{i}"), padding="same"), (1, 2),
                                   label="depth"),
                    pool=nn.MaxPool1d(nn.choice([1, 3], label="pool_k"), 1, padding=nn.choice([1, 3], label="pool_k") // 2),
                ),
                label="family",
            )

        def forward(self, x):
            return self.body(x)

    built = []

    def fit(model, ctx):
        built.append(json.dumps(ctx.arch, sort_keys=True))
        return float(len(built))

    model = Net()
    assert model.space.size == (2 + 4) + 2
    db = tmp_path / "c.db"
    exp = Experiment(model, RegularizedEvolution(population_size=3, sample_size=2), FunctionEvaluator(fit),
                     executor="inline", store=db, name="c", max_trials=50, seed=0)
    summary = exp.run()
    assert summary.n_trials == model.space.size == len(set(built))  # every network once, then exhausted
    for t in exp.trials():
        assert t.arch == model.space.canonical(t.arch)
        assert list(t.arch) == [lab for lab in model.space.labels if lab in t.arch]
    best = exp.export(tmp_path / "best.json")
    assert best == model.space.canonical(best)
    record = Store(str(db)).experiment("c")
    desc_space = Space.from_description(record.config["space"])
    assert desc_space.size == model.space.size
    for t in exp.trials():
        assert desc_space.canonical(model.space.complete(t.arch, 0)) == t.arch


def test_random_by_default_never_repeats_a_network():
    from nasforge.strategy import Random

    space = family_space()
    trials = run_ask_tell(Random(), space, lambda a: 0.0, budget=SIZE + 5, seed=3)
    keys = [arch_key(t.arch) for t in trials]
    assert len(keys) == len(set(keys)) == SIZE


def test_size_of_many_independent_conditional_stages():
    """30 Repeat-like stages: counted per independent group, not over 4**30 assignments."""
    cats, cond = [], {}
    for st in range(30):
        cats.append(Categorical([1, 2, 3, 4], label=f"d{st}"))
        for b in range(4):
            cats.append(Categorical([3, 5], label=f"k{st}_{b}"))
            cond[f"k{st}_{b}"] = [[(f"d{st}", [d for d in (1, 2, 3, 4) if d > b])]]
    space = Space(cats, conditions=cond)
    assert space.size == (2 + 4 + 8 + 16) ** 30
    small = Space(cats[:10], conditions={k: v for k, v in cond.items() if k in {c.label for c in cats[:10]}})
    assert small.size == len(list(small.grid())) == 30 * 30
