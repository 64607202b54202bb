"""Constraints (REJECTED trials) and multi-objective search: Pareto utilities, exp.pareto(),
NSGA-II RegularizedEvolution, multi-objective TPE, the CLI's front."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nasforge.evaluate import FunctionEvaluator
from nasforge.experiment import Constraints, Experiment
from nasforge.experiment.objectives import pareto_trials
from nasforge.pareto import (
    crowding_distance,
    dominates,
    non_dominated_sort,
    nsga2_rank,
    orient,
    pareto_front,
)
from nasforge.space import Categorical, Space
from nasforge.strategy import TPE, Random, RegularizedEvolution
from nasforge.trial import Trial, TrialStatus

# -- Pareto utilities -----------------------------------------------------------------------------


def _brute_front(p: np.ndarray) -> list[int]:
    return [i for i in range(len(p)) if not any(dominates(p[j], p[i]) for j in range(len(p)) if j != i)]


@pytest.mark.parametrize("seed", range(20))
def test_pareto_front_and_sort_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 40)), int(rng.integers(1, 4))
    p = rng.integers(0, 6, size=(n, m)).astype(float)  # many ties and duplicates
    assert pareto_front(p) == _brute_front(p)
    fronts = non_dominated_sort(p)
    assert sorted(i for f in fronts for i in f) == list(range(n))
    rest = list(range(n))
    for f in fronts:  # each front is the Pareto front of what the earlier fronts left
        assert f == [rest[i] for i in _brute_front(p[rest])]
        rest = [i for i in rest if i not in f]


def test_hand_built_front_and_crowding():
    pts = [[0.9, -100], [0.8, -10], [0.7, -50], [0.9, -100], [0.5, -5]]
    assert pareto_front(pts) == [0, 1, 3, 4]
    assert non_dominated_sort(pts) == [[0, 1, 3, 4], [2]]
    cd = crowding_distance([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0], [0.25, 0.8]])
    assert np.isinf(cd[0]) and np.isinf(cd[2]) and cd[1] > 0 and cd[3] > 0
    assert nsga2_rank(pts)[2][0] == 1
    assert orient([1.0, 2.0], ["max", "min"]) == [1.0, -2.0]
    with pytest.raises(ValueError, match="'max' or 'min'"):
        orient([1.0], ["up"])


def _trial(i, acc, params, status=TrialStatus.SUCCEEDED):
    return Trial(id=i, arch={"x": i}, status=status, metrics={"val_acc": acc, "params": params}, score=acc)


def test_pareto_trials_on_hand_built_trials():
    trials = [
        _trial(0, 0.90, 1000),
        _trial(1, 0.85, 200),  # front
        _trial(2, 0.80, 500),  # dominated by 1
        _trial(3, 0.95, 5000),  # front
        _trial(4, 0.99, 100, TrialStatus.FAILED),  # not successful: ignored
        _trial(5, 0.70, 50),  # front
        _trial(6, 0.90, 1000),  # duplicate of 0: both on the front
        _trial(7, 0.91, 2000),  # front (best acc below 3, cheaper)
    ]
    front = pareto_trials(trials, [("val_acc", "max"), ("params", "min")])
    assert [t.id for t in front] == [3, 7, 0, 6, 1, 5]
    # the reverse orientation gives the other corner
    assert {t.id for t in pareto_trials(trials, [("val_acc", "min"), ("params", "max")])} == {0, 2, 3, 5, 6, 7}
    with pytest.raises(ValueError, match="at least 2 objectives"):
        pareto_trials(trials, [("val_acc", "max")])


# -- a plain-space experiment with two objectives ---------------------------------------------------

SPACE = Space([Categorical(list(range(6)), label="a"), Categorical(list(range(5)), label="b")])


def _metrics(arch, ctx=None):
    a, b = arch["a"], arch["b"]
    return {"acc": float(a + b + ((a * 7 + b * 3) % 4) * 0.5), "cost": float(a * a + 2 * b + (a * b) % 3)}


def test_experiment_pareto_equals_brute_force(tmp_path):
    exp = Experiment(SPACE, Random(dedup=True), FunctionEvaluator(_metrics, uses_model=False, metric="acc"),
                     objectives=[("acc", "max"), ("cost", "min")], executor="inline", seed=0,
                     store=tmp_path / "mo.db", name="mo")
    assert exp.metric == "acc" and exp.mode == "max"
    exp.run()
    trials = exp.trials()
    assert len(trials) == SPACE.size
    pts = np.array([[t.metrics["acc"], -t.metrics["cost"]] for t in trials])
    expected = {trials[i].id for i in _brute_front(pts)}
    front = exp.pareto()
    assert {t.id for t in front} == expected and len(front) >= 3
    accs = [t.metrics["acc"] for t in front]
    assert accs == sorted(accs, reverse=True)
    assert all(t.objectives == [t.metrics["acc"], -t.metrics["cost"]] for t in trials)
    # pareto() also takes other objectives; a single objective is refused
    assert {t.id for t in exp.pareto([("cost", "min"), ("acc", "min")])}
    with pytest.raises(ValueError, match="at least 2 objectives"):
        Experiment(SPACE, Random(), FunctionEvaluator(_metrics, uses_model=False, metric="acc"), executor="inline").pareto()


def test_objectives_validation():
    ev = FunctionEvaluator(_metrics, uses_model=False, metric="acc")
    for bad, match in [("acc", "non-empty list"), ([("acc", "up")], "'max' or 'min'"), ([("acc", "max"), ("acc", "min")], "distinct"),
                       ([("acc",)], "pair")]:
        with pytest.raises(ValueError, match=match):
            Experiment(SPACE, Random(), ev, objectives=bad, executor="inline")
    with pytest.raises(ValueError, match="differs from the first objective"):
        Experiment(SPACE, Random(), ev, objectives=[("acc", "max"), ("cost", "min")], metric="cost", executor="inline")
    with pytest.raises(ValueError, match="differs from the first objective's mode"):
        Experiment(SPACE, Random(), ev, objectives=[("acc", "max"), ("cost", "min")], mode="min", executor="inline")


def _hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """2-D hypervolume (larger-is-better points) above ``ref``."""
    p = points[np.all(points > ref, axis=1)]
    if len(p) == 0:
        return 0.0
    p = p[np.argsort(-p[:, 0])]
    hv, best_y = 0.0, ref[1]
    for x, y in p:
        if y > best_y:
            hv += (x - ref[0]) * (y - best_y)
            best_y = y
    return hv


BIG = Space([Categorical(list(range(8)), label=f"x{i}") for i in range(6)])  # 262,144 archs


def _bi_objective(arch):
    """Two conflicting objectives: f1 rewards large x0..x2, f2 rewards small x0..x2, both reward x3..x5."""
    v = np.array([arch[f"x{i}"] for i in range(6)], dtype=float) / 7
    f1 = v[:3].mean() + 0.5 * v[3:].mean()
    f2 = (1 - v[:3]).mean() ** 2 + 0.5 * v[3:].mean()
    return [float(f1), float(f2)]


def _drive(strategy, seed, budget=150):
    strategy.setup(BIG, seed)
    if hasattr(strategy, "set_objectives"):
        strategy.set_objectives(2)
    pts = []
    for i in range(budget):
        arch = strategy.ask()
        vec = _bi_objective(arch)
        t = Trial(id=i, arch=arch, status=TrialStatus.SUCCEEDED, metrics={"f1": vec[0], "f2": vec[1]}, score=vec[0], objectives=vec)
        strategy.tell(t)
        pts.append(vec)
    return _hypervolume(np.array(pts), np.array([0.0, 0.0]))


def test_nsga2_evolution_beats_random_on_hypervolume():
    seeds = range(6)
    nsga = [_drive(RegularizedEvolution(population_size=20, sample_size=4, mutation_prob=0.2), s) for s in seeds]
    rand = [_drive(Random(), s) for s in seeds]
    assert np.mean(nsga) > np.mean(rand), (nsga, rand)
    assert sum(a > b for a, b in zip(nsga, rand)) >= 5


def test_nsga2_state_round_trip_gives_same_future():
    a = RegularizedEvolution(population_size=8, sample_size=3)
    a.setup(BIG, 1)
    a.set_objectives(2)
    for i in range(20):
        arch = a.ask()
        vec = _bi_objective(arch)
        a.tell(Trial(id=i, arch=arch, status=TrialStatus.SUCCEEDED, score=vec[0], objectives=vec))
    state = json.loads(json.dumps(a.state_dict()))
    assert len(state["mo_population"]) == 8
    b = RegularizedEvolution(population_size=8, sample_size=3)
    b.setup(BIG, 1)
    b.set_objectives(2)
    b.load_state_dict(state)
    assert [a.ask() for _ in range(5)] == [b.ask() for _ in range(5)]


def test_multi_objective_tpe_splits_by_front(tmp_path):
    strategy = TPE(n_startup_trials=5)
    exp = Experiment(SPACE, strategy, FunctionEvaluator(_metrics, uses_model=False, metric="acc"),
                     objectives=[("acc", "max"), ("cost", "min")], executor="inline", seed=0, max_trials=15,
                     store=tmp_path / "tpe.db", name="tpe")
    exp.run()
    done = [e for e in strategy._entries if e[1] == "done"]
    assert len(done) >= 15 and all(len(v) == 2 for _, _, v in done)  # repeats are told their known vectors
    by_params = {tuple(p[label] for label in SPACE.labels): v for p, _, v in done}
    for t in exp.trials():
        assert by_params[tuple(SPACE.to_indices(t.arch))] == t.objectives
    # the good observations are the first fronts of the (acc, -cost) vectors
    below, above = strategy._split()
    fronts = nsga2_rank([strategy._entries[i][2] for i in below] + [strategy._entries[i][2] for i in above
                                                                       if strategy._entries[i][1] == "done"])
    assert max(f for f, _ in fronts[:len(below)]) <= min(f for f, _ in fronts[len(below):])
    # resume from the stored state: still two objectives, no repeated network
    again = TPE(n_startup_trials=5)
    exp2 = Experiment(SPACE, again, FunctionEvaluator(_metrics, uses_model=False, metric="acc"),
                      objectives=[("acc", "max"), ("cost", "min")], executor="inline", max_trials=20,
                      store=tmp_path / "tpe.db", name="tpe")
    exp2.run()
    assert again._multi and len(exp2.trials()) == 20
    assert len({json.dumps(t.arch, sort_keys=True) for t in exp2.trials()}) == 20


def test_cli_show_prints_the_front(tmp_path, capsys):
    from nasforge.cli import main

    db = tmp_path / "cli.db"
    exp = Experiment(SPACE, Random(dedup=True), FunctionEvaluator(_metrics, uses_model=False, metric="acc"),
                     objectives=[("acc", "max"), ("cost", "min")], executor="inline", seed=0, max_trials=12,
                     store=db, name="mo")
    exp.run()
    capsys.readouterr()
    assert main(["show", str(db)]) == 0
    out = capsys.readouterr().out
    front = exp.pareto()
    assert f"Pareto front ({len(front)} non-dominated trial(s); acc maximised, cost minimised)" in out
    section = out.split("Pareto front")[1]
    rows = [line.split() for line in section.splitlines()[3:] if line.strip()]
    ids = [int(r[0]) for r in rows if r and r[0].isdigit()]
    assert ids == [t.id for t in front]


# -- constraints -----------------------------------------------------------------------------------

torch = pytest.importorskip("torch")
import nasforge.nn as nn  # noqa: E402
from nasforge.profile import count_flops, count_params  # noqa: E402


class WidthNet(nn.ModelSpace):
    def __init__(self):
        super().__init__()
        w = nn.ValueChoice([4, 16, 64, 256], label="width")
        self.body = nn.Sequential(nn.Linear(8, w), nn.ReLU(), nn.Linear(w, 3))
        self.act = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")

    def forward(self, x):
        return self.act(self.body(x))


class Recorder(Random):
    def setup(self, space, seed=None):
        super().setup(space, seed)
        self.told: list[Trial] = []

    def tell(self, trial):
        self.told.append(trial)


def _acc(model, ctx):
    return {"val_acc": float(sum(p.numel() for p in model.parameters())) ** 0.5}


def test_constraint_rejects_before_training_and_tells_the_strategy(tmp_path):
    space = WidthNet()
    limit = count_params(space.freeze({"width": 16, "act": 0})) + 1  # widths 64, 256 are over
    strategy = Recorder(dedup=True)
    evaluated = []

    def ev(model, ctx):
        evaluated.append(ctx.arch["width"])
        return _acc(model, ctx)

    exp = Experiment(space, strategy, ev, constraints={"params": limit}, max_trials=4, executor="inline", metric="val_acc",
                     seed=0, store=tmp_path / "c.db", name="c")
    summary = exp.run()
    trials = exp.trials()
    rejected = [t for t in trials if t.status is TrialStatus.REJECTED]
    ok = [t for t in trials if t.status is TrialStatus.SUCCEEDED]
    assert len(ok) == 4 and len(rejected) >= 1  # rejects do not count against max_trials=4
    assert summary.stop_reason == "max_trials" and len(trials) == 4 + len(rejected)
    assert sorted(evaluated) == sorted(t.arch["width"] for t in ok) and all(w in (4, 16) for w in evaluated)
    for t in rejected:  # the measured value is stored, with the reason
        assert t.arch["width"] in (64, 256)
        assert t.metrics["params"] == count_params(space.freeze(t.arch)) > limit
        assert "params" in t.error and "limit" in t.error and t.score is None
    told = {t.id: t for t in strategy.told}
    assert {t.id for t in rejected} <= set(told)
    assert all(told[t.id].status is TrialStatus.REJECTED and told[t.id].metrics["params"] > limit for t in rejected)
    assert summary.counts.get("REJECTED") == len(rejected)


def test_constraint_cap_stops_a_strategy_that_proposes_only_rejects(tmp_path):
    space = WidthNet()
    exp = Experiment(space, Random(), _acc, constraints={"params": 1, "max_rejected": 7}, max_trials=3, metric="val_acc",
                     executor="inline", seed=0, store=tmp_path / "cap.db", name="cap")
    summary = exp.run()
    assert summary.stop_reason == "max_rejected"
    assert [t.status for t in exp.trials()] == [TrialStatus.REJECTED] * 7


def test_flops_constraint_and_objective_are_measured_and_cached(tmp_path):
    space = WidthNet()
    shape = (1, 8)
    limit = count_flops(space.freeze({"width": 64, "act": 0}), shape)
    exp = Experiment(space, Random(dedup=True), _acc, constraints={"flops": limit, "input_shape": shape},
                     objectives=[("val_acc", "max"), ("flops", "min")], executor="inline", seed=0,
                     store=tmp_path / "f.db", name="f")
    exp.run()
    trials = exp.trials()
    assert len(trials) == 8
    for t in trials:
        assert t.metrics["flops"] == count_flops(space.freeze(t.arch), shape)
        assert (t.status is TrialStatus.REJECTED) == (t.metrics["flops"] > limit)
    # cached per arch: each arch measured once
    assert len(exp._costs._cache) == 8
    front = exp.pareto()
    assert front and all(t.status is TrialStatus.SUCCEEDED for t in front)


def test_constraint_errors():
    space = WidthNet()
    with pytest.raises(ValueError, match="unknown constraint.*'param'"):
        Experiment(space, Random(), _acc, constraints={"param": 10})
    with pytest.raises(ValueError, match="input shape"):
        Experiment(space, Random(), _acc, constraints={"flops": 10})
    with pytest.raises(ValueError, match="positive number"):
        Constraints(params=-1)
    with pytest.raises(ValueError, match="at least one limit"):
        Constraints(input_shape=(1, 8))
    with pytest.raises(TypeError, match="model space that builds networks"):
        Experiment(SPACE, Random(), FunctionEvaluator(_metrics, uses_model=False, metric="acc"), constraints={"params": 5})


def test_latency_constraint_records_milliseconds(tmp_path):
    space = WidthNet()
    exp = Experiment(space, Random(dedup=True), _acc,
                     constraints={"latency_ms": 1e6, "input_shape": (1, 8), "latency_repeats": 2}, metric="val_acc",
                     executor="inline", seed=0, max_trials=2)
    exp.run()
    for t in exp.trials():
        assert t.status is TrialStatus.SUCCEEDED and 0 < t.metrics["latency_ms"] < 1e6


def test_rejects_survive_resume(tmp_path):
    space = WidthNet()
    limit = count_params(space.freeze({"width": 16, "act": 0})) + 1
    kw = dict(constraints={"params": limit}, executor="inline", metric="val_acc", seed=0, store=tmp_path / "r.db", name="r")
    Experiment(space, RegularizedEvolution(population_size=2, sample_size=1), _acc, max_trials=2, **kw).run()
    first = Experiment(space, RegularizedEvolution(population_size=2, sample_size=1), _acc, max_trials=2, **kw).trials()
    n_ok = sum(t.status is TrialStatus.SUCCEEDED for t in first)
    assert n_ok == 2
    exp = Experiment(space, RegularizedEvolution(population_size=2, sample_size=1), _acc, max_trials=4, **kw)
    exp.run()
    trials = exp.trials()
    assert sum(t.status is TrialStatus.SUCCEEDED for t in trials) == 4  # only non-rejected count
    assert all(t.metrics["params"] > limit for t in trials if t.status is TrialStatus.REJECTED)
    assert [t.id for t in trials] == list(range(len(trials)))

