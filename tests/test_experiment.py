"""The experiment loop with a real SQLite store and a real process pool (no mocks)."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import time

import pytest

from nasforge import Categorical, Experiment, Space, TrialStatus, load_arch
from nasforge.evaluate import FunctionEvaluator
from nasforge.execution import LocalExecutor
from nasforge.store import StoreConflictError
from nasforge.strategy import Random, Strategy

SPACE = Space([Categorical([1, 2, 3, 4, 5, 6, 7, 8], label="x"), Categorical(["a", "b"], label="y")])


class ListStrategy(Strategy):
    """Proposes the given archs in order, then nothing; remembers what it was told."""

    def __init__(self, archs, stop_at=None):
        self.archs = list(archs)
        self.stop_at = stop_at
        self.told = []
        self.i = 0

    def ask(self):
        if self.i >= len(self.archs):
            return None
        self.i += 1
        return self.archs[self.i - 1]

    def tell(self, trial):
        self.told.append((trial.id, trial.status, trial.score, trial.error))

    def on_report(self, trial, step, score):
        return self.stop_at is not None and step >= self.stop_at

    def state_dict(self):
        return {**super().state_dict(), "i": self.i}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.i = state["i"]


def score_fn(arch, ctx):
    return {"score": arch["x"] + (0.5 if arch["y"] == "b" else 0.0), "x": arch["x"]}


def behave(arch, ctx):
    kind = arch["kind"]
    if kind == "raise":
        raise ValueError("bad candidate")
    if kind == "nan":
        return math.nan
    if kind == "inf":
        return {"score": math.inf}
    if kind == "sleep":
        time.sleep(30)
    if kind == "exit":
        os._exit(7)
    if kind == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(5)
    if kind == "report":
        for step in range(50):
            ctx.report(step, {"score": step / 100})
        return 1.0
    return 0.5


def test_inline_run_best_export_and_fixed_arch(tmp_path):
    strategy = ListStrategy([{"x": 3, "y": "a"}, {"x": 8, "y": "b"}, {"x": 5, "y": "b"}])
    exp = Experiment(SPACE, strategy, FunctionEvaluator(score_fn, uses_model=False),
                     max_trials=10, executor="inline", store=tmp_path / "s.db", name="t", seed=1)
    summary = exp.run()
    assert summary.n_trials == 3 and summary.stop_reason == "strategy exhausted"
    assert summary.best.arch == {"x": 8, "y": "b"}
    trials = exp.trials()
    assert [t.status for t in trials] == [TrialStatus.SUCCEEDED] * 3
    assert trials[0].metrics == {"score": 3.0, "x": 3.0} and trials[0].duration is not None
    assert [t.id for t in exp.best(2)] == [1, 2]
    arch = exp.export(tmp_path / "best.json")
    assert arch == {"x": 8, "y": "b"} == load_arch(tmp_path / "best.json")
    assert [tid for tid, *_ in strategy.told] == [0, 1, 2]


def test_min_mode_and_metric_override():
    exp = Experiment(SPACE, ListStrategy([{"x": 3, "y": "a"}, {"x": 1, "y": "a"}]),
                     FunctionEvaluator(score_fn, uses_model=False), executor="inline", metric="x", mode="min")
    exp.run()
    best = exp.best()[0]
    assert best.arch["x"] == 1 and best.score == -1.0


def test_two_workers_every_failure_kind_is_recorded(tmp_path):
    kinds = ["ok", "raise", "nan", "inf", "sleep", "exit", "segv", "ok", "report"]
    space = Space([Categorical(kinds[:-2] + ["report"], label="kind")])
    strategy = ListStrategy([{"kind": k} for k in kinds], stop_at=3)
    exp = Experiment(space, strategy, FunctionEvaluator(behave, uses_model=False), max_trials=20,
                     concurrency=2, executor="local", trial_timeout=5.0, store=tmp_path / "f.db", name="fail")
    summary = exp.run()
    trials = {t.id: t for t in exp.trials()}
    assert summary.n_trials == len(kinds)
    assert trials[0].status is TrialStatus.SUCCEEDED and trials[7].status is TrialStatus.SUCCEEDED
    assert trials[1].status is TrialStatus.FAILED and trials[1].error.startswith("ValueError: bad candidate")
    assert "Traceback" in trials[1].error
    assert trials[2].status is TrialStatus.FAILED and "non-finite metric(s): score=nan" in trials[2].error
    assert trials[3].status is TrialStatus.FAILED and "score=inf" in trials[3].error
    assert trials[4].status is TrialStatus.FAILED and trials[4].error == "timeout after 5 s"
    assert trials[5].status is TrialStatus.FAILED and trials[5].error == "worker exited with code 7 while running the trial"
    assert trials[6].status is TrialStatus.FAILED and trials[6].error == "worker died with signal 11 (SIGSEGV)"
    # stopped early by the strategy's on_report at step 3: its last report is kept
    assert trials[8].status is TrialStatus.STOPPED and trials[8].metrics == {"score": 0.03}
    assert [s for s, _ in trials[8].reports] == [0, 1, 2, 3]
    # the strategy was told about every trial, failures included (score None, reason given)
    told = {tid: (status, score, error) for tid, status, score, error in strategy.told}
    assert sorted(told) == list(range(len(kinds)))
    assert told[6] == (TrialStatus.FAILED, None, "worker died with signal 11 (SIGSEGV)")
    assert {t.worker for t in trials.values()} >= {"local-0", "local-1"}


def test_resume_keeps_trials_and_counts_budget_across_runs(tmp_path):
    db = tmp_path / "r.db"

    def make(max_trials):
        return Experiment(SPACE, Random(dedup=True), FunctionEvaluator(score_fn, uses_model=False),
                          max_trials=max_trials, executor="inline", store=db, name="r", seed=5)

    first = make(4)
    assert first.run().n_trials == 4
    before = {t.id: (t.arch, t.metrics) for t in first.trials()}
    second = make(10)
    summary = second.run()
    assert summary.n_trials == 10 and summary.stop_reason == "max_trials"
    after = second.trials()
    assert len(after) == 10 and [t.id for t in after] == list(range(10))
    assert {t.id: (t.arch, t.metrics) for t in after if t.id < 4} == before
    # the dedup state was restored: no arch proposed twice across the two runs
    assert len({json.dumps(t.arch, sort_keys=True) for t in after}) == 10
    # a third run with the same budget does nothing
    assert make(10).run().n_trials == 10


def test_resume_requeues_interrupted_trials_under_their_id(tmp_path):
    db = tmp_path / "q.db"
    exp = Experiment(SPACE, Random(), FunctionEvaluator(score_fn, uses_model=False), max_trials=3,
                     executor="inline", store=db, name="q", seed=2)
    exp.run()
    # simulate a process killed while trial 2 ran: its row is RUNNING again, partial report kept
    con = sqlite3.connect(db)
    con.execute("UPDATE trials SET status='RUNNING', metrics=NULL, score=NULL, finished=NULL WHERE id=2")
    con.execute("INSERT INTO reports (experiment_id, trial_id, step, metrics, time) VALUES (1, 2, 0, '{}', 0)")
    con.commit()
    con.close()
    arch2 = exp.trials()[2].arch
    summary = Experiment(SPACE, Random(), FunctionEvaluator(score_fn, uses_model=False), max_trials=3,
                         executor="inline", store=db, name="q", seed=2).run()
    assert summary.resumed_trials == 1 and summary.n_trials == 3
    t2 = exp.trials()[2]
    assert t2.status is TrialStatus.SUCCEEDED and t2.arch == arch2 and t2.reports == []


def test_conflicting_space_is_refused(tmp_path):
    db = tmp_path / "c.db"
    Experiment(SPACE, Random(), FunctionEvaluator(score_fn, uses_model=False), max_trials=1,
               executor="inline", store=db, name="c").run()
    other = Space([Categorical([1, 2], label="x"), Categorical(["a", "b"], label="y")])
    with pytest.raises(StoreConflictError, match="'c'.*different space"):
        Experiment(other, Random(), FunctionEvaluator(score_fn, uses_model=False), max_trials=2,
                   executor="inline", store=db, name="c").run()
    with pytest.raises(StoreConflictError, match="metric='score', now metric='x'"):
        Experiment(SPACE, Random(), FunctionEvaluator(score_fn, uses_model=False), max_trials=2,
                   executor="inline", store=db, name="c", metric="x").run()
    # another name in the same store is a separate experiment
    Experiment(other, Random(), FunctionEvaluator(score_fn, uses_model=False), max_trials=1,
               executor="inline", store=db, name="c2").run()


def test_max_time_and_exhausted_strategy():
    slow = FunctionEvaluator(lambda arch, ctx: time.sleep(0.05) or 1.0, uses_model=False)
    summary = Experiment(SPACE, Random(), slow, max_time=0.3, executor="inline").run()
    assert summary.stop_reason == "max_time" and 1 <= summary.n_trials < 50
    tiny = Space([Categorical([1, 2, 3], label="x")])
    summary = Experiment(tiny, Random(dedup=True), FunctionEvaluator(lambda a, c: a["x"], uses_model=False),
                         max_trials=100, executor="inline").run()
    assert summary.n_trials == 3 and summary.stop_reason == "strategy exhausted"


def test_inline_timeout_at_reports():
    def reporting(arch, ctx):
        for step in range(1000):
            time.sleep(0.01)
            ctx.report(step, 0.0)
        return 1.0

    exp = Experiment(SPACE, Random(), FunctionEvaluator(reporting, uses_model=False), max_trials=1,
                     executor="inline", trial_timeout=0.1)
    exp.run()
    (t,) = exp.trials()
    assert t.status is TrialStatus.FAILED and t.error == "timeout after 0.1 s"


def test_user_mistakes_raise_clear_errors():
    ev = FunctionEvaluator(score_fn, uses_model=False)
    with pytest.raises(TypeError, match=r"strategy: got str, which is not a nasforge.strategy.Strategy"):
        Experiment(SPACE, "random", ev)
    with pytest.raises(TypeError, match="model_space must be a nasforge.nn.ModelSpace"):
        Experiment(object(), Random(), ev)
    with pytest.raises(TypeError, match="uses_model=True.*plain Space"):
        Experiment(SPACE, Random(), FunctionEvaluator(score_fn))
    with pytest.raises(ValueError, match="max_trials must be a positive int"):
        Experiment(SPACE, Random(), ev, max_trials=0)
    with pytest.raises(ValueError, match="concurrency must be a positive int"):
        Experiment(SPACE, Random(), ev, concurrency=0)
    with pytest.raises(ValueError, match="unknown executor 'threads'"):
        Experiment(SPACE, Random(), ev, executor="threads")
    with pytest.raises(ValueError, match="mode must be 'max' or 'min'"):
        Experiment(SPACE, Random(), ev, mode="maximise")
    with pytest.raises(ValueError, match="trial_timeout must be a positive number"):
        Experiment(SPACE, Random(), ev, trial_timeout=-1)
    with pytest.raises(TypeError, match=r"evaluator: got int, which is not a nasforge.evaluate.Evaluator"):
        Experiment(SPACE, Random(), 3)
    exp = Experiment(SPACE, Random(), ev, executor="inline")
    with pytest.raises(ValueError, match="no successful trial|0 successful trial"):
        exp.export()

    class Bad(Random):
        def ask(self):
            return {"x": 99, "y": "a"}

    with pytest.raises(ValueError, match="Bad proposed an invalid arch.*99.*'x'"):
        Experiment(SPACE, Bad(), ev, max_trials=1, executor="inline").run()


class _DuckStrategy:
    def setup(self, space, seed=None):
        pass

    def ask(self):
        return None

    def tell(self, trial):
        pass


class _DuckEvaluator:
    uses_model = False

    def evaluate(self, arch, ctx):
        return 1.0


class _DuckExecutor:
    capacity = 1

    def submit(self, task_id, key, args, timeout=None):
        return 0.0


@pytest.mark.parametrize(
    "arg, value, message",
    [
        ("strategy", object(), r"strategy: got object, which is not a nasforge\.strategy\.Strategy \(it lacks ask\(\) and "
                               r"tell\(\)\); subclass Strategy and implement ask\(\) and tell\(\)"),
        ("strategy", _DuckStrategy(), r"strategy: got _DuckStrategy, .*\(it has ask\(\) and tell\(\) but does not subclass it\)"),
        ("strategy", Random, r"strategy: got the class Random itself; pass an instance, e.g. Random\(\.\.\.\)"),
        ("evaluator", _DuckEvaluator(), r"evaluator: got _DuckEvaluator, which is not a nasforge\.evaluate\.Evaluator \(it has "
                                        r"evaluate\(\) but does not subclass it\); subclass Evaluator and implement evaluate\(\)"),
        ("evaluator", None, r"evaluator: got NoneType, .*\(it lacks evaluate\(\)\).*or pass a function"),
        ("evaluator", FunctionEvaluator, r"evaluator: got the class FunctionEvaluator itself; pass an instance"),
        ("executor", LocalExecutor, r"executor: got the class LocalExecutor itself; pass an instance"),
        ("executor", _DuckExecutor(), r"executor: got _DuckExecutor, which is not a nasforge\.execution\.Executor \(it lacks "
                                      r"cancel\(\), idle_slots\(\), poll\(\), register\(\) and running\(\)\); "
                                      r"subclass Executor and implement cancel\(\), capacity\(\), .*submit\(\)"),
        ("executor", 3, r"executor: got int, .*\(it lacks cancel\(\), capacity\(\), idle_slots\(\), poll\(\), "
                        r"register\(\), running\(\) and submit\(\)\).*or pass 'inline', 'local' or 'ray'"),
    ],
)
def test_only_the_abcs_are_accepted_and_the_error_names_what_is_missing(arg, value, message):
    """Duck-typed objects are refused with the argument, the class got, the base class and the
    contract methods it lacks (a nasforge subclass of each ABC is accepted: the other tests)."""
    kwargs = {"strategy": Random(), "evaluator": FunctionEvaluator(score_fn, uses_model=False), "executor": "inline", arg: value}
    with pytest.raises(TypeError, match=message):
        Experiment(SPACE, kwargs.pop("strategy"), kwargs.pop("evaluator"), **kwargs)


class Vandal(Strategy):
    """A strategy that tries to change what it is told (every way a trial can be changed)."""

    def __init__(self, how):
        self.how = how
        self.errors = []

    def ask(self):
        return self.space.sample(self.rng)

    def _try(self, trial):
        try:
            self.how(trial)
        except (TypeError, AttributeError) as exc:
            self.errors.append(exc)

    def tell(self, trial):
        self._try(trial)

    def on_report(self, trial, step, score):
        self._try(trial)
        return False


VANDALISM = {
    "score": lambda t: setattr(t, "score", 1e9),
    "status": lambda t: setattr(t, "status", TrialStatus.FAILED),
    "delete": lambda t: delattr(t, "error"),
    "arch item": lambda t: t.arch.__setitem__("x", 99),
    "arch update": lambda t: t.arch.update({"y": "zzz"}),
    "arch pop": lambda t: t.arch.pop("x"),
    "metrics item": lambda t: t.metrics.__setitem__("score", 1e9),
    "metrics clear": lambda t: t.metrics.clear(),
    "reports": lambda t: t.reports.append((99, {"score": 1e9})),
    "report metrics": lambda t: t.reports and t.reports[-1][1].__setitem__("score", 1e9),
    "objectives": lambda t: t.objectives is not None and t.objectives.append(1.0),
}


@pytest.mark.parametrize("how", sorted(VANDALISM))
def test_strategies_are_told_frozen_trials_and_cannot_change_the_store(tmp_path, how):
    def reporting(arch, ctx):
        ctx.report(1, {"score": float(arch["x"])})
        return {"score": float(arch["x"])}

    kwargs = dict(max_trials=4, executor="inline", seed=3, name="v")
    ev = FunctionEvaluator(reporting, uses_model=False)
    plain = Experiment(SPACE, Random(), ev, store=tmp_path / "plain.db", **kwargs)
    plain.run()
    vandal = Vandal(VANDALISM[how])
    exp = Experiment(SPACE, vandal, ev, store=tmp_path / "vandal.db", **kwargs)
    exp.run()
    told = 8 if how not in ("objectives",) else 0  # 4 tells + 4 reports (single-objective: no objectives)
    assert len(vandal.errors) == told, vandal.errors
    assert all("read-only" in str(e) for e in vandal.errors)
    stored = [(t.id, t.arch, t.status, t.metrics, t.score, t.reports, t.error) for t in exp.trials()]
    expected = [(t.id, t.arch, t.status, t.metrics, t.score, t.reports, t.error) for t in plain.trials()]
    assert stored == expected and len(stored) == 4  # same seed, same archs: what a strategy did changed nothing


def test_a_frozen_trial_reads_like_a_trial():
    from nasforge.trial import Trial

    t = Trial(2, {"x": 3, "y": [1, 2]}, TrialStatus.SUCCEEDED, {"score": 1.0}, 1.0, [(0, {"score": 0.5})], objectives=[1.0, -2.0])
    f = t.frozen()
    assert isinstance(f, Trial) and f.arch == t.arch and f.metrics == t.metrics and f.reports == [(0, {"score": 0.5})]
    assert json.loads(json.dumps({"arch": f.arch, "objectives": f.objectives})) == {"arch": t.arch, "objectives": [1.0, -2.0]}
    mutable = dict(f.arch)
    mutable["x"] = 4  # a copy is the strategy's own
    import copy
    import pickle

    deep = copy.deepcopy(f.arch)
    deep["y"].append(3)
    assert type(deep) is dict and t.arch == {"x": 3, "y": [1, 2]}
    assert pickle.loads(pickle.dumps(f)).arch == t.arch
    t.metrics["score"] = 2.0  # the copy does not follow the original either
    assert f.metrics == {"score": 1.0}
    with pytest.raises(TypeError, match="read-only"):
        f.arch["y"].append(3)


def test_plain_function_evaluator_and_test_fn(tmp_path):
    ev = FunctionEvaluator(score_fn, uses_model=False,
                           test_fn=lambda arch, ctx, retrain: {"test_score": arch["x"] * (2 if retrain else 1)})
    exp = Experiment(SPACE, ListStrategy([{"x": 2, "y": "a"}, {"x": 6, "y": "a"}]), ev,
                     executor="inline", store=tmp_path / "t.db", name="t")
    exp.run()
    (result,) = exp.test(top_k=1, retrain=True)
    assert result.trial_id == 1 and result.metrics == {"test_score": 12.0} and result.status == "SUCCEEDED"
    assert [r.metrics for r in exp.tests()] == [{"test_score": 12.0}]


def test_progress_bar_and_history_plot(tmp_path, capsys):
    from nasforge.viz import best_so_far, plot_history

    exp = Experiment(SPACE, ListStrategy([{"x": 2, "y": "a"}, {"x": 1, "y": "a"}, {"x": 7, "y": "b"}]),
                     FunctionEvaluator(score_fn, uses_model=False), executor="inline", progress=True)
    exp.run()
    err = capsys.readouterr().err
    assert "3/" in err or "3 " in err
    assert "best score 7.5 (#2)" in err
    trials = exp.trials()
    assert best_so_far(trials, "score") == [(0, 2.0), (1, 2.0), (2, 7.5)]
    assert best_so_far(trials, "score", mode="min") == [(0, 2.0), (1, 1.0), (2, 1.0)]
    png = plot_history(trials, tmp_path / "h.png", metric="score")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no successful trial reports 'acc'"):
        plot_history(trials, tmp_path / "x.png", metric="acc")


def test_given_executor_is_reused_and_left_running():
    with LocalExecutor(2) as ex:
        for name in ("a", "b"):
            Experiment(SPACE, Random(), FunctionEvaluator(score_fn, uses_model=False), max_trials=3,
                       executor=ex, concurrency=2, name=name).run()
            assert ex.idle_slots() == 2  # still up for the next experiment


def torch_loaded(arch, ctx):
    import sys

    return {"score": 1.0, "torch_loaded": float("torch" in sys.modules)}


def test_evaluator_without_model_never_pays_for_torch_in_workers():
    exp = Experiment(SPACE, Random(), FunctionEvaluator(torch_loaded, uses_model=False), max_trials=1,
                     executor="local")
    exp.run()
    assert exp.trials()[0].metrics["torch_loaded"] == 0.0


def test_evaluator_is_an_abstract_base_class():
    import abc

    from nasforge.evaluate import Evaluator

    assert isinstance(Evaluator, abc.ABCMeta) and Evaluator.__abstractmethods__ == {"evaluate"}
    with pytest.raises(TypeError, match="abstract.*evaluate"):
        Evaluator()

    class NoEvaluate(Evaluator):
        def config(self):
            return {}

    with pytest.raises(TypeError, match="abstract.*evaluate"):
        NoEvaluate()

    class Minimal(Evaluator):
        uses_model = False

        def evaluate(self, arch, ctx):
            return float(arch["x"])

    ev = Minimal()  # the hooks have defaults: config() names the class, metric, mode, uses_model; test() refuses clearly
    assert ev.config() == {"class": "test_evaluator_is_an_abstract_base_class.<locals>.Minimal", "metric": "score",
                           "mode": "max", "uses_model": False}
    with pytest.raises(NotImplementedError, match="Minimal has no test-set evaluation"):
        ev.test({"x": 1}, None)
    exp = Experiment(SPACE, Random(), ev, max_trials=3, executor="inline", seed=1)
    exp.run()
    assert [t.status for t in exp.trials()] == [TrialStatus.SUCCEEDED] * 3


def _interrupting(arch, ctx):
    if arch["x"] == 3:
        raise KeyboardInterrupt
    return float(arch["x"])


def _failing_strategy_run():
    class Broken(Random):
        def tell(self, trial):
            raise RuntimeError("a strategy bug")

    return Broken()


@pytest.mark.parametrize("ending", ["budget", "exhausted", "interrupted", "strategy error"])
def test_run_gives_the_signal_handlers_back_however_it_ends(tmp_path, ending):
    """SIGTERM / SIGHUP stop run() cleanly while it runs; after it, whatever its ending, the
    program's own handlers are back (before: SIGTERM kept raising ExperimentInterrupted anywhere)."""
    sigs = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None]
    saved = {s: signal.signal(s, signal.SIG_DFL) for s in sigs}  # each case on its own, whatever ran before
    try:
        _run_ending(tmp_path, ending)
        assert {s: signal.getsignal(s) for s in sigs} == {s: signal.SIG_DFL for s in sigs}
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def _run_ending(tmp_path, ending):
    ev = FunctionEvaluator(_interrupting if ending == "interrupted" else score_fn, uses_model=False)
    strategy = _failing_strategy_run() if ending == "strategy error" else (
        ListStrategy([{"x": 1, "y": "a"}]) if ending == "exhausted" else ListStrategy([{"x": x, "y": "a"} for x in (1, 2, 3, 4)]))
    exp = Experiment(SPACE, strategy, ev, max_trials=3 if ending == "budget" else None, executor="inline",
                     store=tmp_path / "s.db", progress=False)
    if ending == "interrupted":
        with pytest.raises(KeyboardInterrupt):
            exp.run()
    elif ending == "strategy error":
        with pytest.raises(RuntimeError, match="a strategy bug"):
            exp.run()
    else:
        exp.run()
