"""Reloading results, the evaluator as part of an experiment's identity, final tests with seeds, kept weights."""

from __future__ import annotations

import hashlib
import json
import statistics

import pytest
import torch

from nasforge import Categorical, Experiment, Space, TrialStatus
from nasforge.evaluate import Classification, Evaluator, FunctionEvaluator
from nasforge.experiment import ExperimentResults
from nasforge.experiment.results import NoResultsError
from nasforge.store import Store, StoreConflictError, StoreError
from nasforge.strategy import Random
from tests.test_evaluate import TEST, TRAIN, VAL, Tiny

SPACE = Space([Categorical([1, 2, 3, 4, 5, 6], label="x"), Categorical(["a", "b"], label="y")])


def score(arch, ctx):
    if arch["x"] == 6 and arch["y"] == "a":
        raise RuntimeError("six-a fails")
    return {"score": arch["x"] + (0.5 if arch["y"] == "b" else 0.0), "x": float(arch["x"])}


def seeded_test(arch, ctx, retrain):
    return {"test_score": arch["x"] + (ctx.seed % 1000) / 1000, "retrain": float(retrain)}


def run(db, name="demo", trials=8, **kw):
    ev = kw.pop("evaluator", None) or FunctionEvaluator(score, uses_model=False, test_fn=seeded_test)
    exp = Experiment(SPACE, Random(dedup=True), ev, max_trials=trials, executor="inline", store=db, name=name, seed=0, **kw)
    exp.run()
    return exp


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_load_reads_everything_back_without_space_or_evaluator(tmp_path):
    db = tmp_path / "r.db"
    exp = run(db)
    exp.test(top_k=2, seeds=2)
    before = {p.name: sha(p) for p in tmp_path.iterdir() if p.is_file() and not p.name.endswith("-shm")}
    res = Experiment.load(db, "demo")
    assert isinstance(res, ExperimentResults) and res.metric == "score" and res.mode == "max" and res.status == "done"
    assert [t.id for t in res.trials()] == [t.id for t in exp.trials()]
    assert [t.id for t in res.best(3)] == [t.id for t in exp.best(3)]
    assert res.export(tmp_path / "best.json") == exp.export() == json.loads((tmp_path / "best.json").read_text())
    assert res.export(rank=2) == exp.export(rank=2)
    with pytest.raises(NoResultsError, match="cannot export rank 50"):
        res.export(rank=50)
    tests = res.test_results()
    assert [t.trial_id for t in tests] == [t.id for t in exp.best(2)] and all(t.n_runs == 2 for t in tests)
    assert len(res.tests()) == 4 and len(res.test_results(aggregate=False)) == 4
    records = res.records()
    assert len(records) == 8 and {"trial", "status", "score", "x", "arch.x", "arch.y", "duration", "error"} <= set(records[0])
    failed = [r for r in records if r["status"] == "FAILED"]
    assert all(r["error"].startswith("RuntimeError: six-a fails") for r in failed)
    df = res.to_pandas()
    assert list(df.index) == [t.id for t in exp.trials()]
    assert df.loc[exp.best()[0].id, "score"] == exp.best()[0].metrics["score"]
    assert Experiment.load(db).name == "demo"  # one experiment: the name may be left out
    assert "trials=8" in repr(res)
    # read-only: the database and its write-ahead log are untouched (readers only mark the -shm index)
    assert {p.name: sha(p) for p in tmp_path.iterdir() if p.is_file() and p.name != "best.json"
            and not p.name.endswith("-shm")} == before


def test_load_errors_and_store_reads_by_name(tmp_path):
    db = tmp_path / "two.db"
    run(db, "a", trials=3)
    run(db, "b", trials=2)
    with pytest.raises(StoreError, match="holds 2 experiments \\('a', 'b'\\); give the name"):
        Experiment.load(db)
    with pytest.raises(StoreError, match="no experiment named 'c' .* it holds: 'a', 'b'"):
        Experiment.load(db, "c")
    with pytest.raises(StoreError, match="does not exist"):
        Experiment.load(tmp_path / "missing.db", "a")
    store = Store(db, readonly=True)
    assert len(store.trials("a")) == 3 and len(store.trials("b", with_reports=False)) == 2
    assert store.trials("a") == store.trials(store.experiment("a").id)
    assert sum(store.status_counts("b").values()) == 2 and store.tests("a") == []
    with pytest.raises(StoreError, match="no experiment named 'z'.*'a', 'b'"):
        store.trials("z")
    with pytest.raises(TypeError, match="a name \\(str\\) or a record id"):
        store.trials(1.5)


class Recipe(Evaluator):
    """A user's own evaluator: its settings count once its config() names them; counters never do."""

    uses_model = False

    def __init__(self, epochs, scale=abs):
        self.epochs = epochs
        self.scale = scale
        self.calls = 0

    def evaluate(self, arch, ctx):
        self.calls += 1
        return float(self.scale(arch["x"] * self.epochs))

    def config(self):
        return {**super().config(), "epochs": self.epochs, "scale": self.scale}


class Plain(Recipe):
    def config(self):
        return Evaluator.config(self)  # the default: class, metric, mode, uses_model


def test_a_changed_evaluator_is_refused_with_what_changed(tmp_path):
    db = tmp_path / "e.db"
    run(db, "f", trials=2, evaluator=FunctionEvaluator(score, uses_model=False, config={"epochs": 3}))
    with pytest.raises(StoreConflictError, match=r"config\.epochs 3 → 6.*allow_evaluator_change=True"):
        run(db, "f", trials=3, evaluator=FunctionEvaluator(score, uses_model=False, config={"epochs": 6}))
    assert len(Store(db, readonly=True).trials("f")) == 2  # nothing was mixed in
    exp = run(db, "f", trials=3, evaluator=FunctionEvaluator(score, uses_model=False, config={"epochs": 6}),
              allow_evaluator_change=True)
    assert len(exp.trials()) == 3
    config = Experiment.load(db, "f").config
    assert config["evaluator_config"]["config"] == {"epochs": 6}
    assert config["evaluator_history"][0]["config"] == {"epochs": 3}
    run(db, "f", trials=4, evaluator=FunctionEvaluator(score, uses_model=False, config={"epochs": 6}))  # same: resumes
    # a user's Evaluator: what its config() names (functions by name, never by address)
    recipe = Recipe(3)
    exp = run(db, "g", trials=1, evaluator=recipe)
    exp.max_trials = 2
    exp.run()  # the same object again, its call counter moved on: still the same experiment
    assert recipe.calls == 2
    run(db, "g", trials=3, evaluator=Recipe(3))
    with pytest.raises(StoreConflictError, match="epochs 3 → 6"):
        run(db, "g", trials=4, evaluator=Recipe(6))
    with pytest.raises(StoreConflictError, match='scale "abs" → "round"'):
        run(db, "g", trials=4, evaluator=Recipe(3, scale=round))
    # without a config() of its own only the class, metric and mode count
    run(db, "h", trials=1, evaluator=Plain(3))
    run(db, "h", trials=2, evaluator=Plain(6))
    with pytest.raises(StoreConflictError, match='class "Plain" → "Recipe"'):
        run(db, "h", trials=3, evaluator=Recipe(6))


def test_a_changed_training_recipe_is_refused(tmp_path):
    db = tmp_path / "c.db"

    def make(epochs, **kw):
        return Experiment(Tiny(), Random(dedup=True), Classification(TRAIN, VAL, epochs=epochs, batch_size=64, **kw),
                          max_trials=1, executor="inline", store=db, name="cls")

    make(1).run()
    make(1, device="cpu").run()  # where it runs is not what it measures
    with pytest.raises(StoreConflictError, match="epochs 1 → 2"):
        make(2).run()
    with pytest.raises(StoreConflictError, match="lr 0.001 → 0.01"):
        make(1, lr=1e-2).run()
    with pytest.raises(StoreConflictError, match=r"train_data\.n 240 → 120"):
        Experiment(Tiny(), Random(), Classification((TRAIN[0][:120], TRAIN[1][:120]), VAL, epochs=1, batch_size=64),
                   max_trials=1, executor="inline", store=db, name="cls").run()


def test_test_with_seeds_reports_mean_and_std_and_reuses_rows(tmp_path, capsys):
    db = tmp_path / "t.db"
    exp = run(db)
    results = exp.test(top_k=2, retrain=True, seeds=3)
    assert [r.trial_id for r in results] == [t.id for t in exp.best(2)]
    for r in results:
        values = [run_.metrics["test_score"] for run_ in r.runs]
        assert len(values) == 3 and len(set(values)) == 3  # three different seeds
        assert len({run_.seed for run_ in r.runs}) == 3
        assert r.metrics["test_score"] == pytest.approx(statistics.mean(values))
        assert r.std["test_score"] == pytest.approx(statistics.stdev(values))
        assert "±" in str(r) and "3 seeds" in str(r) and not r.reused
    assert len(exp.tests()) == 6
    # a fresh process re-running the finished script reuses every stored run
    again = run(db).test(top_k=2, retrain=True, seeds=3)
    assert len(Store(db, readonly=True).tests("demo")) == 6
    assert [r.metrics for r in again] == [r.metrics for r in results] and all(r.reused for r in again)
    # more seeds: only the new ones run; the first seed of seeds=1 is the first of seeds=3
    assert run(db).test(top_k=1, seeds=1)[0].runs[0].seed == results[0].runs[0].seed
    four = run(db).test(top_k=1, seeds=4)
    assert len(Store(db, readonly=True).tests("demo")) == 7 and [r.reused for r in four[0].runs] == [True] * 3 + [False]
    # redo runs them again; retrain=False is a different evaluation
    run(db).test(top_k=1, seeds=2, redo=True)
    assert len(Store(db, readonly=True).tests("demo")) == 9
    assert run(db).test(top_k=1, retrain=False)[0].metrics["retrain"] == 0.0
    assert len(Store(db, readonly=True).tests("demo")) == 10
    # a different test function is a different evaluation: not reused
    other = FunctionEvaluator(score, uses_model=False, test_fn=lambda arch, ctx, retrain: {"test_score": 0.0})
    assert run(db, evaluator=other).test(top_k=1)[0].metrics["test_score"] == 0.0
    with pytest.raises(ValueError, match="seeds must be a positive int"):
        exp.test(seeds=0)


def test_test_shows_progress_and_seeded_networks_differ(tmp_path, capsys):
    ev = Classification(TRAIN, VAL, test_data=TEST, epochs=1, batch_size=32, lr=3e-2, final_epochs=3)
    exp = Experiment(Tiny(), Random(dedup=True), ev, max_trials=1, executor="inline", store=tmp_path / "p.db", name="p")
    exp.run()
    capsys.readouterr()
    (result,) = exp.test(top_k=1, seeds=2, weights_dir=tmp_path / "w", progress=True)
    err = capsys.readouterr().err
    assert "test trial 0 (rank 1) seed 1/2" in err and "seed 2/2" in err and "epoch 3/3" in err
    assert "test_acc" in err
    a, b = (torch.load(r.weights) for r in result.runs)
    assert [p.name for p in sorted((tmp_path / "w").iterdir())] == ["trial_0_seed0.pt", "trial_0_seed1.pt"]
    assert any(not torch.equal(a[k], b[k]) for k in a)  # different seeds, different networks
    assert result.metrics["test_acc"] == pytest.approx((result.runs[0].metrics["test_acc"] + result.runs[1].metrics["test_acc"]) / 2)


def test_save_weights_keeps_the_best_trial_across_runs(tmp_path):
    db = tmp_path / "w.db"

    def make(trials):
        ev = Classification(TRAIN, VAL, epochs=2, batch_size=32, lr=3e-2)
        return Experiment(Tiny(), Random(dedup=True), ev, max_trials=trials, executor="inline", store=db, name="w",
                          seed=1, save_weights="best")

    exp = make(3)
    exp.run()
    folder = tmp_path / "w.weights" / "w"
    info = json.loads((folder / "best.json").read_text())
    best = exp.best()[0]
    assert info["trial"] == best.id and info["arch"] == best.arch
    net = Tiny().freeze(best.arch)
    net.load_state_dict(torch.load(folder / "best.pt"))
    acc, _ = Classification(TRAIN, VAL).accuracy(net, VAL)
    assert acc == pytest.approx(best.metrics["val_acc"])  # the weights of the scored network
    make(4).run()  # resume: only a better trial replaces them
    info2 = json.loads((folder / "best.json").read_text())
    assert info2["trial"] == Experiment.load(db, "w").best()[0].id
    assert Experiment.load(db, "w").best_weights() == str(folder / "best.pt")
    with pytest.raises(ValueError, match="save_weights must be None, 'best' or 'all'"):
        Experiment(Tiny(), Random(), Classification(TRAIN, VAL), save_weights="last", store=db)
    with pytest.raises(ValueError, match="needs weights_dir"):
        Experiment(Tiny(), Random(), Classification(TRAIN, VAL), save_weights="best")
    with pytest.raises(ValueError, match="uses_model=True"):
        Experiment(SPACE, Random(), FunctionEvaluator(score, uses_model=False), save_weights="best", store=db)
    exp = Experiment(Tiny(), Random(dedup=True), Classification(TRAIN, VAL, epochs=1, batch_size=64), max_trials=2,
                     executor="local", save_weights="all", weights_dir=tmp_path / "all", name="all")
    exp.run()
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["best.json", "best.pt", "trial_0.pt", "trial_1.pt"]
    assert all(t.status is TrialStatus.SUCCEEDED for t in exp.trials())


def test_stores_written_before_seeds_were_recorded(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    exp = run(db, trials=3)
    best = exp.best()[0]
    store = exp._open_store()
    exp_id = store.experiment("demo").id
    for value in (1.0, 2.0):  # an older version added a row each time the script ran
        store.add_test(exp_id, best.id, best.arch, True, "SUCCEEDED", {"test_score": value})
    store.close()
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE tests DROP COLUMN seed")
    con.execute("ALTER TABLE tests DROP COLUMN config")
    con.commit()
    con.close()
    (old,) = Experiment.load(db, "demo").test_results()  # read-only: works without the new columns
    assert old.metrics == {"test_score": 2.0} and old.n_runs == 1  # the newest row of an unrecorded seed counts
    fresh = run(db, trials=3).test(top_k=1, seeds=2)  # a writable open adds the columns; old rows are not reused
    assert len(fresh[0].runs) == 2 and not any(r.reused for r in fresh[0].runs)
    assert {r.seed for r in Store(db, readonly=True).tests("demo")} >= {None}


def test_reloaded_export_leaves_out_hyperparameter_choices(tmp_path, capsys):
    import nasforge.nn as nn
    from nasforge.cli import main

    def fit(arch, ctx, lr):
        return {"score": arch["x"] + lr}

    ev = FunctionEvaluator(fit, uses_model=False, lr=nn.choice([0.1, 0.2], label="lr"))
    exp = Experiment(SPACE, Random(dedup=True), ev, max_trials=6, executor="inline", store=tmp_path / "hp.db", name="hp")
    exp.run()
    assert "lr" in exp.best()[0].arch  # the trial holds the hyper-parameter value
    res = Experiment.load(tmp_path / "hp.db")
    assert res.export() == exp.export() and "lr" not in res.export()
    assert main(["export", str(tmp_path / "hp.db")]) == 0
    assert json.loads(capsys.readouterr().out) == exp.export()
