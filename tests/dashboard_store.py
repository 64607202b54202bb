"""Real stores for the dashboard tests: a finished search with reports, failures, a test-set result
and a trial still running; strings that hold HTML and script."""

from __future__ import annotations

import time
from pathlib import Path

from nasforge import Categorical, Experiment, Space
from nasforge.evaluate import FunctionEvaluator
from nasforge.store import Store
from nasforge.strategy import Random
from nasforge.trial import Trial, TrialStatus

EVIL = "<script>window.__pwned = 1</script>"
EVIL_LABEL = "<img src=x onerror=\"window.__pwned=2\">"
OPS = ["conv_3x3", "skip_connect", "none", EVIL]

# A NAS-Bench-201-like cell (labels op_<node>_<input>) plus a width and a label that holds HTML.
SPACE = Space(
    [Categorical(OPS, label=f"op_{n}_{i}") for n, i in ((1, 0), (2, 0), (2, 1))]
    + [Categorical([8, 16, 32], label="width"), Categorical([0, 1], label=EVIL_LABEL)]
)


def _value(arch) -> float:
    good = {"conv_3x3": 0.3, "skip_connect": 0.15, "none": 0.0, EVIL: 0.1}
    return round(0.2 + sum(good[arch[f"op_{n}_{i}"]] for n, i in ((1, 0), (2, 0), (2, 1))) / 2 + arch["width"] / 400, 6)


def evaluate(arch, ctx):
    final = _value(arch)
    for epoch in range(3):
        ctx.report(epoch, {"val_acc": final * (epoch + 1) / 3, "loss": 2.0 / (epoch + 1)})
    if arch["op_1_0"] == "none" and arch["width"] == 8:
        raise RuntimeError(f"cursed arch {EVIL}")
    return {"val_acc": final, "params": float(1000 * arch["width"] + 10 * len(arch["op_2_1"]))}


def test_fn(arch, ctx, retrain):
    return {"test_acc": _value(arch) - 0.01, "params": 1000.0 * arch["width"]}


def make_store(path: str | Path, trials: int = 14, name: str = "demo") -> Path:
    """A store with ``trials`` finished trials (some failed), one test-set result, and one RUNNING trial."""
    path = Path(path)
    exp = Experiment(SPACE, Random(dedup=True), FunctionEvaluator(evaluate, uses_model=False, metric="val_acc", test_fn=test_fn),
                     max_trials=trials, executor="inline", store=path, name=name, seed=3)
    exp.run()
    exp.test(top_k=1, retrain=True)
    with Store(path) as store:
        rec = store.experiment(name)
        add_failed_trial(store, rec.id, trials)  # failures are certain, whatever the sampler drew
        add_running_trial(store, rec.id, trials + 1)
        store.update_experiment(rec.id, status="running")
    return path


def shown_status(path: str | Path, name: str = "demo") -> str:
    """The status the dashboard must show: the store's live status where the store knows owners
    (a status written by hand, with no live owner, reads "interrupted" there), else the recorded one."""
    with Store(path, readonly=True) as store:
        live = getattr(store, "live_status", None)
        return live(name) if callable(live) else store.experiment(name).status


def add_failed_trial(store: Store, exp_id: int, trial_id: int) -> None:
    arch = {"op_1_0": "none", "op_2_0": EVIL, "op_2_1": "none", "width": 8, EVIL_LABEL: 1}
    now = time.time()
    trial = Trial(id=trial_id, arch=arch, status=TrialStatus.RUNNING, started=now - 2)
    store.add_trial(exp_id, trial)
    store.add_report(exp_id, trial_id, 0, {"val_acc": 0.1, "loss": 2.5})
    trial.status, trial.finished = TrialStatus.FAILED, now
    trial.error = f"Traceback (most recent call last):\n  ...\nRuntimeError: cursed arch {EVIL}"
    store.finish_trial(exp_id, trial)


def add_running_trial(store: Store, exp_id: int, trial_id: int) -> None:
    arch = {"op_1_0": "conv_3x3", "op_2_0": "conv_3x3", "op_2_1": "skip_connect", "width": 16, EVIL_LABEL: 0}
    store.add_trial(exp_id, Trial(id=trial_id, arch=arch, status=TrialStatus.RUNNING, started=time.time()))
    store.add_report(exp_id, trial_id, 0, {"val_acc": 0.3, "loss": 2.0})


def add_finished_trial(store: Store, exp_id: int, trial_id: int, value: float) -> None:
    arch = {"op_1_0": "conv_3x3", "op_2_0": "conv_3x3", "op_2_1": "conv_3x3", "width": 32, EVIL_LABEL: 1}
    now = time.time()
    trial = Trial(id=trial_id, arch=arch, status=TrialStatus.RUNNING, started=now - 1)
    store.add_trial(exp_id, trial)
    trial.status, trial.finished, trial.metrics, trial.score = TrialStatus.SUCCEEDED, now, {"val_acc": value, "params": 32000.0}, value
    store.finish_trial(exp_id, trial)
