"""Behaviour of the multi-trial strategies on small toy spaces (no torch needed except RL)."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

import nasforge.strategy as strategies
from nasforge.space import Categorical, Space, arch_key
from nasforge.strategy import (
    TPE,
    GridSearch,
    HistoryStrategy,
    Hyperband,
    LocalSearch,
    PolicyBasedRL,
    PredictorBased,
    Progressive,
    Random,
    RegularizedEvolution,
    Strategy,
    SuccessiveHalving,
    ZeroCostWarmStart,
)
from nasforge.strategy.testing import (
    StrategyConformance,
    run_ask_tell,
    toy_score,
    toy_space,
)
from nasforge.trial import Trial, TrialStatus

LABELS = ["a", "b", "c", "d"]
TARGET = {"a": 3, "b": 1, "c": 4, "d": 2}
OPTIMUM = toy_score(TARGET)


def _proxy(arch) -> float:
    """A deterministic stand-in for a zero-cost proxy: any arch -> float."""
    return float(zlib.crc32(arch_key(arch).encode()) % 997)


# The strategy contract (nasforge.strategy.testing.StrategyConformance) runs on every strategy
# exported by nasforge.strategy. Entries here configure them (small surrogates keep the suite fast;
# both RL algorithms; wrappers get an inner strategy / a proxy), with per-strategy class attributes
# (optimum_budget: trials, seeds, seeds that must find the optimum; None for the baselines). Random
# search finds the optimum in 100 queries with probability ~0.16 and in 150 with ~0.24. The
# policy-gradient controllers learn from one sample at a time and need more queries; plain
# REINFORCE is the least sample-efficient of all (see the NAS-Bench-201 benchmark), so it must
# succeed on one of three seeds within 150. An exported strategy not listed is built with cls().
CONFORMANCE = {
    "RegularizedEvolution": (lambda: RegularizedEvolution(population_size=10, sample_size=3), {}),
    "REINFORCE": (lambda: PolicyBasedRL(learning_rate=0.05, entropy_weight=0.02), {"optimum_budget": (150, (0, 1, 2), 1)}),
    "PPO": (lambda: PolicyBasedRL(algorithm="ppo", learning_rate=0.05, batch_size=4, entropy_weight=0.02),
            {"optimum_budget": (150, (0, 1, 2), 3)}),
    "TPE": (lambda: TPE(n_startup_trials=10), {}),
    "PredictorBased": (lambda: PredictorBased(num_init=8, n_models=3, hidden=16, epochs=60, refit_fraction=0.2), {}),
    "Progressive": (lambda: Progressive(beam_size=5, n_models=3, hidden=16, epochs=60), {}),
    "LocalSearch": (LocalSearch, {}),
    "SuccessiveHalving": (lambda: SuccessiveHalving(RegularizedEvolution(population_size=10, sample_size=3)), {}),
    "Hyperband": (lambda: Hyperband(LocalSearch(), max_step=9), {}),
    "ZeroCostWarmStart": (lambda: ZeroCostWarmStart(RegularizedEvolution(population_size=10, sample_size=3), _proxy,
                                                    candidates=30, top_k=5), {}),
    "Random": (lambda: Random(dedup=True), {"optimum_budget": None}),
    "GridSearch": (lambda: GridSearch(shuffle=True), {"optimum_budget": None}),
}
EXPORTED = {name: obj for name in strategies.__all__ if inspect.isclass(obj := getattr(strategies, name))
            and issubclass(obj, Strategy) and not inspect.isabstract(obj)}
_covered = {type(factory()).__name__ for factory, _ in CONFORMANCE.values()}


def _default_factory(cls):
    def make():
        try:
            return cls()
        except TypeError as exc:
            raise TypeError(f"the exported strategy {cls.__name__} cannot be built with {cls.__name__}(): {exc}; "
                            f"give it a factory in CONFORMANCE in tests/test_strategy.py") from exc
    return make


CONFORMANCE.update({name: (_default_factory(cls), {}) for name, cls in EXPORTED.items() if name not in _covered})
ALL = {name: factory for name, (factory, _) in CONFORMANCE.items()}
for _name, (_factory, _attrs) in CONFORMANCE.items():
    globals()[f"Test{_name}Conformance"] = type(f"Test{_name}Conformance", (StrategyConformance,),
                                                {"make_strategy": staticmethod(_factory), **_attrs})


def test_conformance_covers_every_exported_strategy():
    assert set(EXPORTED) >= {"Random", "GridSearch", "RegularizedEvolution", "PolicyBasedRL", "ZeroCostWarmStart"}
    built = {type(factory()).__name__ for factory in ALL.values()}
    assert built == set(EXPORTED), f"exported but not in the conformance suite: {set(EXPORTED) - built}"


def test_toy_optimum_is_rare_for_random():
    # 625 archs; random search with 100 queries finds the optimum with probability ~0.15.
    hits = 0
    for seed in range(20):
        trials = run_ask_tell(Random(dedup=True), toy_space(), toy_score, budget=100, seed=seed)
        hits += max(t.score for t in trials) == OPTIMUM
    assert hits <= 8


def test_grid_search_enumerates_each_arch_once():
    space = toy_space()
    for shuffle in (False, True):
        trials = run_ask_tell(GridSearch(shuffle=shuffle), space, toy_score, budget=10_000, seed=3)
        keys = [arch_key(t.arch) for t in trials]
        assert len(keys) == space.size == len(set(keys))
    plain = [t.arch for t in run_ask_tell(GridSearch(), space, toy_score, budget=5)]
    assert plain == list(space.grid())[:5]


def test_resume_rejects_other_space():
    s = RegularizedEvolution()
    s.setup(toy_space(), 0)
    state = s.state_dict()
    other = RegularizedEvolution()
    other.setup(Space([Categorical([1, 2], label="x")]), 0)
    with pytest.raises(ValueError, match="another space"):
        other.load_state_dict(state)


def test_evolution_ages_out_oldest():
    s = RegularizedEvolution(population_size=5, sample_size=2)
    trials = run_ask_tell(s, toy_space(), toy_score, budget=30, seed=0)
    assert len(s._population) == 5
    assert [k for k, _ in s._population] == [arch_key(t.arch) for t in trials[-5:]]


def test_evolution_mutates_at_least_one_choice():
    s = RegularizedEvolution(population_size=5, sample_size=2, mutation_prob=0.0, dedup=False)
    s.setup(toy_space(), 0)
    parent = {"a": 0, "b": 0, "c": 0, "d": 0}
    for _ in range(50):
        child = s._mutate(parent)
        assert sum(child[k] != parent[k] for k in LABELS) == 1


def test_local_search_moves_to_best_neighbour():
    s = LocalSearch(max_restarts=0)
    trials = run_ask_tell(s, toy_space(), toy_score, budget=200, seed=0)
    # one climb on a separable objective ends at the optimum, then stops (no restart allowed)
    assert max(t.score for t in trials) == OPTIMUM
    assert s.ask() is None


def test_rl_controller_learns():
    """After training, the controller samples the good region far more often than uniform."""
    s = PolicyBasedRL(learning_rate=0.05, dedup=False)
    run_ask_tell(s, toy_space(), toy_score, budget=80, seed=0)
    samples = [s.space.from_indices(s._sample()[0]) for _ in range(100)]
    close = np.mean([toy_score(a) >= -1.0 for a in samples])
    uniform = np.mean([toy_score(a) >= -1.0 for a in toy_space().grid()])
    assert close > 2 * uniform


def test_predictor_ranks_unseen_archs():
    s = PredictorBased(num_init=5, n_models=3, epochs=100)
    run_ask_tell(s, toy_space(), toy_score, budget=40, seed=0)
    archs = list(toy_space().grid())
    pred = s._predict(archs)[0]
    true = np.array([toy_score(a) for a in archs])
    assert np.corrcoef(pred, true)[0, 1] > 0.8


def _curve(arch, step):
    # rank-preserving learning curves: the final score scaled by a common saturating factor
    return (toy_score(arch) - 5.0) * (1 + 2.0 / step)


@pytest.mark.parametrize("wrapper", ["sh", "hb"])
def test_multi_fidelity_stops_weak_trials_never_the_best(wrapper):
    inner = Random(dedup=True)
    s = SuccessiveHalving(inner, min_step=1, max_step=27, eta=3) if wrapper == "sh" else Hyperband(inner, 1, 27, 3)
    trials = run_ask_tell(s, toy_space(), _curve, budget=60, seed=0, steps=27)
    stopped = [t for t in trials if t.status is TrialStatus.STOPPED]
    assert s.stopped == len(stopped) > 10
    used = sum(t.metrics["steps"] for t in trials)
    assert used < 0.7 * 27 * len(trials)
    best = max(trials, key=lambda t: toy_score(t.arch))
    assert best.status is TrialStatus.SUCCEEDED and best.metrics["steps"] == 27
    if wrapper == "hb":
        assert len({s._passed.get(str(t.id), [None])[0] for t in trials}) >= 1
        brackets = {s._bracket_of(t) for t in trials}
        assert len(brackets) > 1


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="sample_size"):
        RegularizedEvolution(population_size=5, sample_size=10)
    with pytest.raises(ValueError, match="mutation_prob"):
        RegularizedEvolution(mutation_prob=2)
    with pytest.raises(ValueError, match="algorithm"):
        PolicyBasedRL(algorithm="a2c")
    with pytest.raises(ValueError, match="acquisition"):
        PredictorBased(acquisition="pi")
    with pytest.raises(ValueError, match="eta"):
        SuccessiveHalving(Random(), eta=1)
    with pytest.raises(TypeError, match="wraps a Strategy"):
        SuccessiveHalving("random")
    with pytest.raises(ValueError, match="seed"):
        TPE(seed=3)
    with pytest.raises(ValueError, match="order"):
        Progressive(order=["a", "zz"]).setup(toy_space(), 0)


def test_strategy_import_is_light():
    code = "import sys, nasforge.strategy; print('torch' in sys.modules, 'optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    code = "import sys, nasforge.strategy.testing; print('pytest' in sys.modules)"  # the suite imports pytest lazily
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["False"]


def test_tpe_is_quiet(capfd):
    run_ask_tell(TPE(), toy_space(), toy_score, budget=15, seed=0)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_multi_fidelity_warns_when_rungs_lie_past_the_evaluators_epochs(tmp_path):
    import warnings

    from nasforge import Experiment
    from nasforge.evaluate import FunctionEvaluator
    from nasforge.strategy import Hyperband, Random, SuccessiveHalving

    space = Space([Categorical(list(range(20)), label="x")])

    def nine_epochs(arch, ctx):
        for epoch in range(1, 10):
            ctx.report(epoch, {"score": arch["x"] * epoch / 9})
        return {"score": float(arch["x"])}

    # declared up front by the evaluator (Supervised presets: reported_steps = epochs)
    ev = FunctionEvaluator(nine_epochs, uses_model=False)
    ev.reported_steps = 9
    with pytest.warns(UserWarning, match=r"Hyperband: max_step=81 .* reports steps up to 9 .* rung\(s\) at step 27 .*max_step=9"):
        Experiment(space, Hyperband(Random(), min_step=1, max_step=81), ev, max_trials=2, executor="inline").run()
    # seen at run time from a finished trial's reports when the evaluator does not declare it
    with pytest.warns(UserWarning, match="SuccessiveHalving: max_step=81 .* up to 9 .* 27"):
        Experiment(space, SuccessiveHalving(Random(), max_step=81), FunctionEvaluator(nine_epochs, uses_model=False),
                   max_trials=2, executor="inline").run()
    with pytest.warns(UserWarning, match="min_step is past the last step, so no trial is ever stopped"):
        Experiment(space, SuccessiveHalving(Random(), min_step=12), FunctionEvaluator(nine_epochs, uses_model=False),
                   max_trials=1, executor="inline").run()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # budgets in epochs that fit: no warning
        for strategy in (SuccessiveHalving(Random(), min_step=1, max_step=9), Hyperband(Random(), min_step=1, max_step=9),
                         SuccessiveHalving(Random())):
            Experiment(space, strategy, FunctionEvaluator(nine_epochs, uses_model=False), max_trials=3, executor="inline").run()


# -- the extension points -------------------------------------------------------------------------------
def _docstring_example() -> type:
    """The example of HistoryStrategy's docstring (also the README's), run as written: it keeps the
    shipped contract."""
    doc = inspect.getdoc(HistoryStrategy) or ""
    start = doc.rindex("\n", 0, doc.index("class Greedy(HistoryStrategy):")) + 1
    code = textwrap.dedent(doc[start:])
    namespace: dict = {"HistoryStrategy": HistoryStrategy}
    exec(compile(code, "HistoryStrategy.__doc__", "exec"), namespace)
    return namespace["Greedy"]


Greedy = _docstring_example()


def test_readme_snippet_runs(capsys):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("<!-- section:extend-S -->"):readme.index("<!-- /section:extend-S -->")]
    code = section.split("```python\n")[1].split("```")[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert capsys.readouterr().out.strip() == "0.3"
    suite = namespace["TestGreedy"]()
    suite.test_state_round_trip_gives_same_future_proposals()
    suite.test_exhausts_tiny_spaces()


class TestHistoryStrategyExampleConformance(StrategyConformance):
    make_strategy = Greedy


def test_strategy_is_an_abstract_base_class():
    with pytest.raises(TypeError, match="abstract"):
        Strategy()

    class NoTell(Strategy):
        def ask(self):
            return None

    with pytest.raises(TypeError, match="tell"):
        NoTell()
    assert inspect.isabstract(HistoryStrategy) and not inspect.isabstract(Greedy)
    g = Greedy()  # HistoryStrategy's tell records the result; setup/on_report/state_dict have defaults
    trials = run_ask_tell(g, toy_space(), toy_score, budget=5, seed=0)
    assert g.best() == (trials[int(np.argmax([t.score for t in trials]))].arch, max(t.score for t in trials))
    assert g.on_report(trials[0], 1, 0.0) is False and json.loads(json.dumps(g.state_dict()))["scores"]


class NearestNeighbour:
    """The example of Surrogate's docstring, with a record of what it was given."""

    def __init__(self):
        self.fits = []

    def fit(self, X, y):
        self.X, self.y = X, y
        self.fits.append((X.shape, y.dtype))

    def predict(self, X):
        d = ((X[:, None, :] - self.X[None]) ** 2).sum(-1)
        return self.y[d.argmin(1)], np.sqrt(d.min(1))


class TestPredictorBasedCustomSurrogateConformance(StrategyConformance):
    def make_strategy(self):
        return PredictorBased(num_init=8, surrogate=NearestNeighbour())


class TestProgressiveCustomSurrogateConformance(StrategyConformance):
    seed_sensitive = False  # a beam search ranked by a deterministic surrogate: no random decision left

    def make_strategy(self):
        return Progressive(beam_size=5, surrogate=NearestNeighbour())


def test_surrogate_protocol():
    from nasforge.strategy import MLPEnsemble, Surrogate

    assert isinstance(MLPEnsemble(), Surrogate) and isinstance(NearestNeighbour(), Surrogate)
    for cls in (PredictorBased, Progressive):
        nn_ = NearestNeighbour()
        s = cls(surrogate=nn_)
        run_ask_tell(s, toy_space(), toy_score, budget=40, seed=0)
        width = toy_space().encoding_size("onehot")
        assert nn_.fits and all(shape[1] == width and dtype.kind == "f" for shape, dtype in nn_.fits)
        mean, std = s._predict(list(toy_space().grid())[:7])
        assert mean.shape == std.shape == (7,)
        with pytest.raises(TypeError, match=r"surrogate .*Surrogate.*has no predict\(\)"):
            cls(surrogate=type("OnlyFit", (), {"fit": lambda self, X, y: None})())


def test_default_surrogate_is_seeded_by_the_strategy():
    """MLPEnsemble.set_seed: the same strategy seed gives the same surrogate, another seed another."""
    def fitted(seed):
        s = PredictorBased(num_init=4, n_models=2, hidden=8, epochs=20)
        run_ask_tell(s, toy_space(), toy_score, budget=6, seed=seed)
        return s._predict(list(toy_space().grid())[:50])[0]

    assert np.array_equal(fitted(3), fitted(3)) and not np.array_equal(fitted(3), fitted(4))


def test_space_mutate_is_evolutions_mutation():
    from tests.test_conditional import family_space

    for space in (toy_space(), family_space()):
        for seed in range(40):
            rng = np.random.default_rng(seed)
            parent = space.sample(rng)
            mutable = [lab for lab in space.active_labels(parent) if len(space[lab]) > 1]

            def changed(child, space=space, mutable=mutable, parent=parent):
                assert space.canonical(child) == child
                return [lab for lab in mutable if lab in child and child[lab] != parent[lab]]

            exact = not space.conditional  # else a change may deactivate another changed label
            for n in (1, 2):
                k = len(changed(space.mutate(parent, rng, n=n, prob=0.0)))
                assert k == min(n, len(mutable)) if exact else 1 <= k <= n
            child = space.mutate(parent, rng, prob=1.0)  # every active choice (that stays active)
            assert changed(child) == [lab for lab in mutable if lab in child]
            evolution = RegularizedEvolution(mutation_prob=0.3)
            evolution.setup(space, seed)
            assert evolution._mutate(parent) == space.mutate(parent, seed, prob=0.3)  # one mutation, same stream
    space, parent = toy_space(), {"a": 0, "b": 0, "c": 0, "d": 0}
    counts = [sum(a != b for a, b in zip(space.mutate(parent, s, prob=0.5).values(), parent.values())) for s in range(400)]
    assert abs(np.mean(counts) - (1 + 0.5 * 3)) < 0.3  # one forced change + Binomial(3, prob)
    with pytest.raises(ValueError, match="prob"):
        space.mutate(parent, 0, prob=1.5)


def test_one_arch_key_and_random_loads_old_keys():
    from nasforge.space import arch_key as space_key
    from nasforge.strategy.base import arch_key as common_key

    assert common_key is space_key is arch_key
    r = Random()
    run_ask_tell(r, toy_space(), toy_score, budget=10, seed=0)
    state = r.state_dict()
    old = {**state, "seen": [json.dumps(json.loads(k), sort_keys=True) for k in state["seen"]]}  # the old key spacing
    r2 = Random()
    r2.setup(toy_space(), 0)
    r2.load_state_dict(old)
    assert r2._seen == r._seen
def test_tpe_density_matches_the_mixture_written_out():
    """TPE's vectorised log density equals the Parzen mixture computed term by term."""
    from nasforge.strategy.tpe import _log_density

    rng = np.random.default_rng(0)
    for _ in range(30):
        sizes = rng.integers(2, 6, size=rng.integers(1, 4))
        n = int(rng.integers(0, 40))
        obs = np.stack([rng.integers(0, k, size=n) for k in sizes], axis=1) if n else np.zeros((0, len(sizes)), int)
        cand = np.stack([rng.integers(0, k, size=7) for k in sizes], axis=1)
        w = rng.random(n + 1) + 0.1
        mix = w / w.sum()
        prior = float(rng.random() + 0.2)
        f = prior / (n + 1)
        expected = []
        for x in cand:
            total = mix[n] * np.prod([1.0 / k for k in sizes])
            for i in range(n):
                total += mix[i] * np.prod([(f + (x[j] == obs[i, j])) / (k * f + 1) for j, k in enumerate(sizes)])
            expected.append(np.log(total))
        np.testing.assert_allclose(_log_density(mix, obs, sizes, prior, cand), expected, rtol=1e-10)


def test_tpe_splits_best_scores_and_counts_pending_as_bad():
    space = Space([Categorical(list(range(8)), label="a"), Categorical(list(range(8)), label="b")])
    tpe = TPE(n_startup_trials=0, gamma=0.25)
    tpe.setup(space, 0)
    scores = {}
    for i in range(12):
        arch = tpe.ask()
        if i < 10:
            scores[i] = float(arch["a"] * 8 + arch["b"])
            tpe.tell(Trial(id=i, arch=arch, status=TrialStatus.SUCCEEDED, score=scores[i]))
    below, above = tpe._split()
    done = [i for i, e in enumerate(tpe._entries) if e[1] == "done"]
    pending = [i for i, e in enumerate(tpe._entries) if e[1] == "pending"]
    by_score = sorted(done, key=lambda i: -tpe._entries[i][2])
    k = -(-len(done) // 4)  # ceil(0.25 * done): repeats of known archs are observations too
    assert list(below) == sorted(by_score[:k])
    assert list(above) == sorted(by_score[k:] + pending) and len(pending) == 2
