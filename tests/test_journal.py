"""The strategy journal (issue 10, defect 6): the state is checkpointed now and then instead of
after every trial, and a resume (checkpoint + replayed events) proposes exactly what an
uninterrupted run proposes."""

from __future__ import annotations

import json
import sqlite3

import pytest

from nasforge import Experiment
from nasforge.evaluate import Evaluator, FunctionEvaluator
from nasforge.experiment import journal as journal_module
from nasforge.experiment.interrupt import ExperimentInterrupted
from nasforge.strategy import Random
from nasforge.strategy.base import Strategy

from .test_strategy import ALL, toy_score, toy_space


class Interrupt(Evaluator):
    """An evaluator that stops the whole run (like Ctrl-C) when it reaches its ``at``-th call."""

    uses_model = False
    metric = "score"
    mode = "max"

    def __init__(self, at: int | None):
        self.at = at
        self.calls = 0

    def evaluate(self, arch, ctx):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        if arch["d"] == 0:
            raise RuntimeError("a failed trial")  # failures are told too
        for step in range(1, 4):  # reports reach on_report (multi-fidelity strategies stop some)
            ctx.report(step, {"score": toy_score(arch) - 0.2 * (3 - step)})
        return {"score": toy_score(arch)}


def _run(tmp_path, name, factory, n, interrupt_at=None):
    db = tmp_path / f"{name}-{interrupt_at}.db"
    kw = dict(max_trials=n, executor="inline", store=db, name="j", seed=5, progress=False)
    exp = Experiment(toy_space(), factory(), Interrupt(interrupt_at), **kw)
    if interrupt_at is None:
        exp.run()
    else:
        with pytest.raises(ExperimentInterrupted):
            exp.run()
        exp = Experiment(toy_space(), factory(), Interrupt(None), **kw)  # a new process, in effect
        exp.run()
    return [(t.id, json.dumps(t.arch, sort_keys=True), t.status.value, t.score) for t in exp.trials()]


@pytest.mark.parametrize("name", list(ALL))
def test_resume_from_checkpoint_plus_events_proposes_the_same_archs(tmp_path, name, monkeypatch):
    monkeypatch.setattr(journal_module, "MIN_EVENTS", 8)  # several checkpoints in a short run
    reference = _run(tmp_path, name, ALL[name], 24)
    for at in (6, 17):  # interrupted between checkpoints: the newest events are replayed
        assert _run(tmp_path, name, ALL[name], 24, interrupt_at=at) == reference, f"interrupted at trial {at}"


class Counting(Strategy):
    """Random search whose state holds the whole history (like most strategies) and counts how
    often it is serialised."""

    def __init__(self):
        self.inner = Random(dedup=True)
        self.dumps = 0

    def setup(self, space, seed=None):
        self.inner.setup(space, seed)

    def ask(self):
        return self.inner.ask()

    def tell(self, trial):  # Strategy is an abstract base class: ask and tell are required
        self.inner.tell(trial)

    def state_dict(self):
        self.dumps += 1
        return self.inner.state_dict()

    def load_state_dict(self, state):
        self.inner.load_state_dict(state)


def test_the_state_is_not_rewritten_after_every_trial(tmp_path):
    """Writing the whole state per ask/tell made the cost per trial grow with the history; the
    checkpoints are now spaced geometrically: O(log n) of them, O(n) state bytes in total."""
    strategy = Counting()
    db = tmp_path / "c.db"
    Experiment(toy_space(), strategy, FunctionEvaluator(lambda a, ctx: 0.0, uses_model=False), max_trials=600,
               executor="inline", store=db, name="c", seed=0, progress=False).run()
    assert strategy.dumps <= 25  # was 1,200 (after every ask and every tell)
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 600
    state, seq = con.execute("SELECT strategy_state, state_seq FROM experiments").fetchone()
    assert len(json.loads(state)["seen"]) == 600 and seq == 1200  # the final checkpoint has everything
    assert con.execute("SELECT COUNT(*) FROM strategy_events").fetchone()[0] == 0
