"""``Experiment``: the one loop that ties a space, a strategy, an evaluator, an executor and a store."""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from nasforge.errors import InvalidArchError, NasforgeError
from nasforge.evaluate.base import Evaluator
from nasforge.evaluate.function import FunctionEvaluator
from nasforge.execution import EXECUTORS, Completion, Executor, make_executor
from nasforge.experiment.interrupt import ExperimentInterrupted, interrupt_signals, shielded
from nasforge.experiment.interrupt import report as report_interrupt
from nasforge.experiment.journal import StrategyJournal
from nasforge.experiment.progress import Progress, progress_wanted
from nasforge.experiment.runners import FinalTestRunner, TrialRunner
from nasforge.space import Space
from nasforge.store import ExperimentRecord, Lease, Store, StoreConflictError
from nasforge.strategy.base import Strategy
from nasforge.trial import Trial, TrialStatus

__all__ = ["Experiment", "ExperimentInterrupted", "ExperimentSummary", "NoResultsError", "TestResult"]

logger = logging.getLogger("nasforge.experiment")


class NoResultsError(NasforgeError, ValueError):
    """Asked for a best trial / an export / a test before any trial succeeded."""


@dataclass
class ExperimentSummary:
    """What :meth:`Experiment.run` returns."""

    name: str
    store: str
    metric: str
    mode: str
    n_trials: int
    counts: dict[str, int]
    best: Trial | None
    elapsed: float
    stop_reason: str
    resumed_trials: int = 0

    def __str__(self) -> str:
        counts = ", ".join(f"{k.lower()} {v}" for k, v in sorted(self.counts.items()))
        lines = [
            f"experiment {self.name!r} ({self.store}): {self.n_trials} trials ({counts}); "
            f"stopped: {self.stop_reason}; this run took {self.elapsed:.1f} s"
        ]
        if self.best is not None:
            lines.append(
                f"best: trial {self.best.id} {self.metric}={self.best.metrics.get(self.metric)} arch={json.dumps(self.best.arch)}"
            )
        return "\n".join(lines)


@dataclass
class TestResult:
    """A final test-set evaluation of one chosen arch (see :meth:`Experiment.test`)."""

    trial_id: int | None
    arch: dict[str, Any]
    retrain: bool
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    weights: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive(name: str, value: Any, kind: type = float, allow_none: bool = True) -> Any:
    if value is None and allow_none:
        return None
    ok = not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int)
    if not ok or not (value > 0) or (kind is float and not math.isfinite(value)):
        what = "a positive int" if kind is int else "a positive number of seconds"
        raise ValueError(f"{name} must be {what}{' or None' if allow_none else ''}, got {value!r}")
    return value


class Experiment:
    """A multi-trial architecture search: the strategy proposes, the executor evaluates, the store records.

    ``model_space`` is a model space instance (``nasforge.nn.ModelSpace``: it has ``.space`` and
    ``.freeze(arch)``), or a plain :class:`~nasforge.space.Space` when the evaluator does not
    use networks (``FunctionEvaluator(fn, uses_model=False)``). ``evaluator`` may also be a
    plain function ``fn(model, ctx)``.

    The main ``metric`` and its ``mode`` (``"max"`` / ``"min"``) default to the evaluator's.
    Budgets: ``max_trials`` counts every trial ever started under this ``name`` in this
    ``store`` (across runs); ``max_time`` (seconds) bounds one ``run()`` call: no trial starts
    after it, running ones finish. ``trial_timeout`` (seconds) fails a trial that runs longer.

    ``store`` is the SQLite file that records everything (None: in memory, nothing kept).
    Running the same script again with the same ``store`` and ``name`` resumes: finished trials
    are kept, trials that were running when the process died are re-queued (same id, same
    arch, run again), the strategy's state is restored. One process at a time runs an
    experiment: a second ``run()`` of the same store and name while the first is alive raises
    :class:`~nasforge.store.ExperimentLockedError` naming the owner (reading needs no lock).
    Ctrl-C, SIGTERM and SIGHUP stop ``run()`` cleanly (running trials re-queued, one line
    printed, :class:`ExperimentInterrupted` raised).

    Example::

        exp = Experiment(Net(), RegularizedEvolution(), Classification(train, val, test),
                         max_trials=50, concurrency=2, store="runs/mnist1d.db", name="mnist1d")
        exp.run()
        print(exp.best(3))
        exp.export("best.json")
        exp.test(top_k=1, retrain=True, weights_dir="runs/weights")
    """

    def __init__(
        self,
        model_space: Any,
        strategy: Strategy,
        evaluator: Evaluator | Callable[..., Any],
        *,
        max_trials: int | None = None,
        max_time: float | None = None,
        concurrency: int = 1,
        store: str | os.PathLike | Store | None = None,
        name: str = "experiment",
        seed: int | None = None,
        executor: str | Executor = "local",
        trial_timeout: float | None = None,
        metric: str | None = None,
        mode: str | None = None,
        progress: bool | None = None,
    ):
        if callable(evaluator) and not hasattr(evaluator, "evaluate"):
            evaluator = FunctionEvaluator(evaluator)
        if not callable(getattr(evaluator, "evaluate", None)):
            raise TypeError(
                f"evaluator must be an Evaluator (with evaluate(model_or_arch, ctx)) or a function, got {type(evaluator).__name__}"
            )
        uses_model = bool(getattr(evaluator, "uses_model", True))
        if isinstance(model_space, Space):
            space = model_space
            if uses_model:
                raise TypeError(
                    f"{type(evaluator).__name__} evaluates networks (uses_model=True) but a plain Space was given; "
                    f"pass a model space (a nasforge.nn.ModelSpace instance), or an evaluator with uses_model=False"
                )
        else:
            space = getattr(model_space, "space", None)
            if not isinstance(space, Space) or not callable(getattr(model_space, "freeze", None)):
                raise TypeError(
                    f"model_space must be a nasforge.nn.ModelSpace instance (with .space and .freeze(arch)) "
                    f"or a nasforge.space.Space, got {type(model_space).__name__}"
                )
        hyper = getattr(evaluator, "hyperparameters", None)
        if isinstance(hyper, Space) and len(hyper):  # joint architecture and training-recipe search
            space = space.merged(hyper, f"{type(evaluator).__name__}'s hyper-parameter choices")
        if not isinstance(strategy, Strategy):
            if not all(callable(getattr(strategy, m, None)) for m in ("setup", "ask", "tell")):
                raise TypeError(
                    f"strategy must be a nasforge.strategy.Strategy (e.g. nasforge.strategy.Random()), got {type(strategy).__name__}"
                )
        if isinstance(executor, str) and executor not in EXECUTORS:
            raise ValueError(f"unknown executor {executor!r}; valid: 'inline', 'local', 'ray', or an Executor instance")
        if not isinstance(executor, (str, Executor)):
            raise TypeError(f"executor must be 'inline', 'local', 'ray' or an Executor instance, got {type(executor).__name__}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        if store is not None and not isinstance(store, (str, os.PathLike, Store)):
            raise TypeError(f"store must be a file path, a Store or None (in memory), got {type(store).__name__}")
        metric = metric or getattr(evaluator, "metric", "score")
        if mode is None:
            mode = getattr(evaluator, "mode", "max") if metric == getattr(evaluator, "metric", None) else "max"
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.model_space = model_space
        self.space = space
        self.strategy = strategy
        self.evaluator = evaluator
        self.max_trials = _positive("max_trials", max_trials, int)
        self.max_time = _positive("max_time", max_time)
        self.concurrency = _positive("concurrency", concurrency, int, allow_none=False)
        self.trial_timeout = _positive("trial_timeout", trial_timeout)
        self.name = name
        self.seed = seed
        self.executor = executor
        self.metric = metric
        self.mode = mode
        self.progress = progress
        if executor == "inline" and concurrency > 1:
            logger.warning("executor='inline' runs one trial at a time; concurrency=%d is ignored", concurrency)
        if self.max_trials is None and self.max_time is None:
            logger.info("no max_trials nor max_time: the experiment runs until the strategy is exhausted")
        self._store_arg = store
        self._store: Store | None = store if isinstance(store, Store) else None
        self._record: ExperimentRecord | None = None
        self._journal: StrategyJournal | None = None

    # -- store & identity -----------------------------------------------------------------------------
    @property
    def store_path(self) -> str:
        if isinstance(self._store_arg, Store):
            return self._store_arg.path
        return os.fspath(self._store_arg) if self._store_arg is not None else ":memory:"

    def _open_store(self) -> Store:
        if self._store is None:
            self._store = Store(self.store_path)
        return self._store

    def _config(self, seed: int) -> dict[str, Any]:
        import nasforge

        return {
            "space_fingerprint": self.space.fingerprint(),
            "space": self.space.describe(),
            "space_size": self.space.size,
            "metric": self.metric,
            "mode": self.mode,
            "strategy": type(self.strategy).__name__,
            "strategy_repr": repr(self.strategy),
            "evaluator": repr(self.evaluator),
            "model_space": type(self.model_space).__name__,
            "seed": seed,
            "max_trials": self.max_trials,
            "max_time": self.max_time,
            "concurrency": self.concurrency,
            "executor": self.executor if isinstance(self.executor, str) else type(self.executor).__name__,
            "trial_timeout": self.trial_timeout,
            "nasforge_version": nasforge.__version__,
        }

    def _open_experiment(self) -> ExperimentRecord:
        store = self._open_store()
        record = store.experiment(self.name)
        if record is None:
            seed = self.seed if self.seed is not None else secrets.randbelow(2**31)
            store.create_experiment(self.name, self._config(seed))
            record = store.experiment(self.name)
            assert record is not None
        else:
            old = record.config
            if old.get("space_fingerprint") != self.space.fingerprint():
                raise StoreConflictError(
                    f"experiment {self.name!r} in {self.store_path!r} was run on a different space "
                    f"(fingerprint {old.get('space_fingerprint')} vs {self.space.fingerprint()} now; "
                    f"{len(old.get('space', []))} vs {len(self.space)} labels); use another name or store to avoid mixing results"
                )
            for key, now_value in (("metric", self.metric), ("mode", self.mode), ("strategy", type(self.strategy).__name__)):
                if old.get(key) != now_value:
                    raise StoreConflictError(
                        f"experiment {self.name!r} in {self.store_path!r} was run with {key}={old.get(key)!r}, "
                        f"now {key}={now_value!r}; use another name or store to avoid mixing results"
                    )
            if self.seed is not None and old.get("seed") != self.seed:
                logger.warning("resuming %r with its stored seed %s (ignoring seed=%s)", self.name, old.get("seed"), self.seed)
            config = self._config(old["seed"])
            config["created_with"] = {k: old.get(k) for k in ("max_trials", "max_time", "concurrency", "executor")}
            store.update_experiment(record.id, config=config)
            record = store.experiment(self.name)
            assert record is not None
        self._record = record
        return record

    def _restore_strategy(self, record: ExperimentRecord, finished: list[Trial]) -> None:
        """Bring the strategy to the state recorded in the store (checkpoint plus replayed events)."""
        store = self._open_store()
        trials = {t.id: t for t in store.trials(record.id)}
        self._journal = StrategyJournal(self.strategy, store, record.id, self.space)
        self._journal.restore(record.strategy_state, record.state_seq, int(record.config["seed"]), trials, finished)

    # -- the loop --------------------------------------------------------------------------------------
    def _score(self, metrics: Mapping[str, float]) -> float | None:
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return None
        return float(value) if self.mode == "max" else -float(value)

    def run(self) -> ExperimentSummary:
        """Run (or resume) the search until a budget is spent or the strategy is exhausted."""
        record = self._open_experiment()
        store = self._open_store()
        lease = store.acquire(record.id, self.name)  # one driver per experiment; readers need none
        try:
            return self._run(record, store, lease)
        finally:
            lease.release()

    def _run(self, record: ExperimentRecord, store: Store, lease: Lease) -> ExperimentSummary:
        exp_id = record.id
        seed = int(record.config["seed"])
        trials = store.trials(exp_id)
        requeued = store.requeue_unfinished(exp_id)
        requeued_ids = {t.id for t in requeued}
        finished = [t for t in trials if t.id not in requeued_ids and t.status.finished]
        journal = self._journal = StrategyJournal(self.strategy, store, exp_id, self.space)
        journal.restore(record.strategy_state, record.state_seq, seed, {t.id: t for t in trials}, finished)
        if finished or requeued:
            message = f"resuming {self.name!r}: {len(finished)} finished trials kept, {len(requeued)} re-queued"
            if self.progress is False:
                logger.info("%s", message)
            else:
                print(message, file=sys.stderr, flush=True)
        total = len(trials)
        next_id = max((t.id for t in trials), default=-1) + 1
        pending: deque[Trial] = deque(requeued)
        running: dict[int, Trial] = {}
        counts = {s.value: 0 for s in TrialStatus}
        for t in finished:
            counts[t.status.value] += 1
        best = max((t for t in finished if t.score is not None and t.status is TrialStatus.SUCCEEDED), key=lambda t: t.score, default=None)

        uses_model = bool(getattr(self.evaluator, "uses_model", True))
        executor = make_executor(self.executor, self.concurrency, preload=("torch",) if uses_model else ())
        owns_executor = executor is not self.executor  # an Executor given by the user stays up
        executor.register("trial", TrialRunner(self.model_space, self.evaluator, self.metric, seed))

        def on_report(task_id: int, step: int, metrics: dict[str, float]) -> bool:
            trial = running.get(task_id)
            if trial is None:  # pragma: no cover - a late report of a killed trial
                return True
            trial.reports.append((step, metrics))
            stop = False
            events: list = []
            score = self._score(metrics)
            if score is not None:
                stop, events = journal.on_report(trial, step, score, metrics)
            store.add_report(exp_id, task_id, step, metrics, events=events)
            journal.maybe_checkpoint()
            return stop

        start = time.monotonic()
        stop_reason = ""
        show = progress_wanted(self.progress)
        bar = Progress(self.name, self.metric, self.max_trials, self.max_time) if show else None
        store.update_experiment(exp_id, status="running")
        status = "interrupted"
        interrupted: ExperimentInterrupted | None = None
        n_requeued = 0
        signals = interrupt_signals()
        signals.__enter__()
        try:
            if bar is not None:
                bar.__enter__()
            executor.start()
            while True:
                lease.heartbeat()
                # 1. fill free slots: re-queued trials first, then new asks
                while not stop_reason and executor.idle_slots() > 0:
                    if self.max_time is not None and time.monotonic() - start >= self.max_time:
                        stop_reason = "max_time"
                        break
                    if pending:
                        trial = pending.popleft()
                        trial.status = TrialStatus.RUNNING
                        trial.reports = []
                        trial.started = executor.submit(trial.id, "trial", (trial.id, trial.arch), self.trial_timeout)
                        store.start_trial(exp_id, trial)
                        running[trial.id] = trial
                        continue
                    if self.max_trials is not None and total >= self.max_trials:
                        stop_reason = "max_trials"
                        break
                    arch = journal.ask()
                    if arch is None:
                        journal.record_empty_ask()
                        if not running:
                            stop_reason = "strategy exhausted"
                        break
                    try:
                        arch = self.space.validate(arch)
                    except InvalidArchError as exc:
                        raise InvalidArchError(f"{type(self.strategy).__name__} proposed an invalid arch: {exc}") from None
                    trial = Trial(id=next_id, arch=arch, status=TrialStatus.RUNNING)
                    next_id += 1
                    total += 1
                    trial.started = time.time()
                    store.add_trial(exp_id, trial, events=journal.ask_event(trial.id))
                    journal.maybe_checkpoint()
                    executor.submit(trial.id, "trial", (trial.id, trial.arch), self.trial_timeout)
                    running[trial.id] = trial
                if not running:
                    if not stop_reason:
                        stop_reason = "strategy exhausted"
                    break
                # 2. wait for results
                wait = 0.25 if bar is not None else 1.0
                if self.max_time is not None and not stop_reason:
                    wait = max(0.0, min(wait, self.max_time - (time.monotonic() - start)))
                for completion in executor.poll(wait, on_report):
                    trial = running.pop(completion.task_id, None)
                    if trial is None:  # pragma: no cover
                        continue
                    self._finish(trial, completion)
                    counts[trial.status.value] += 1
                    if trial.status is TrialStatus.SUCCEEDED and trial.score is not None and (best is None or trial.score > best.score):
                        best = trial
                if bar is not None:
                    done = sum(counts[s] for s in ("SUCCEEDED", "FAILED", "STOPPED"))
                    bar.update(done, len(running), counts["FAILED"], best.metrics.get(self.metric) if best else None, best.id if best else None, total)
            journal.checkpoint()
            status = "done"
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (interrupt_signals)
            interrupted = exc if isinstance(exc, ExperimentInterrupted) else ExperimentInterrupted(str(exc) or "interrupted")
        finally:
            with shielded():
                signals.__exit__(None, None, None)
                if owns_executor:
                    executor.shutdown()
                if bar is not None:
                    bar.__exit__(None, None, None)
                if interrupted is not None:
                    n_requeued = len(store.requeue_unfinished(exp_id))
                store.update_experiment(exp_id, status=status)
        if interrupted is not None:
            raise report_interrupt(interrupted, n_requeued) from None
        elapsed = time.monotonic() - start
        summary = ExperimentSummary(
            name=self.name,
            store=self.store_path,
            metric=self.metric,
            mode=self.mode,
            n_trials=total,
            counts={k: v for k, v in store.status_counts(exp_id).items()},
            best=best,
            elapsed=elapsed,
            stop_reason=stop_reason,
            resumed_trials=len(requeued),
        )
        logger.info("%s", summary)
        return summary

    def _finish(self, trial: Trial, c: Completion) -> None:
        trial.started = c.started if c.started is not None else trial.started
        trial.finished = c.finished
        trial.worker = c.worker
        if c.status == "ok":
            trial.status = TrialStatus.SUCCEEDED
            trial.metrics = dict(c.value)
            trial.score = self._score(trial.metrics)
        elif c.status == "stopped":
            trial.status = TrialStatus.STOPPED
            last = c.value if c.value is not None else (trial.reports[-1][1] if trial.reports else {})
            trial.metrics = dict(last)
            trial.score = self._score(trial.metrics)
        else:
            trial.status = TrialStatus.FAILED
            trial.metrics = {}
            trial.score = None
            trial.error = c.error or "unknown error"
            logger.warning("trial %d failed: %s", trial.id, trial.error.splitlines()[0] if trial.error else "")
        journal = self._journal
        events = journal.tell_event(trial)
        try:
            journal.tell(trial)
        finally:  # the result is recorded even if the strategy fails on it
            self._open_store().finish_trial(self._require_record().id, trial, events=events)
        journal.maybe_checkpoint()

    def _require_record(self) -> ExperimentRecord:
        if self._record is None:
            self._open_experiment()
        assert self._record is not None
        return self._record

    # -- results ----------------------------------------------------------------------------------------
    def _existing_record(self) -> ExperimentRecord | None:
        if self._record is not None:
            return self._record
        if self._store is None and self.store_path != ":memory:" and not os.path.exists(self.store_path):
            return None
        return self._open_store().experiment(self.name)

    def trials(self) -> list[Trial]:
        """Every trial recorded under this experiment's name (from the store), in id order."""
        record = self._existing_record()
        if record is None:
            return []
        return self._open_store().trials(record.id)

    def best(self, k: int = 1) -> list[Trial]:
        """The ``k`` best successful trials by the main metric (best first)."""
        _positive("k", k, int, allow_none=False)
        ok = [t for t in self.trials() if t.status is TrialStatus.SUCCEEDED and t.score is not None]
        ok.sort(key=lambda t: (-t.score, t.id))
        return ok[:k]

    def export(self, path: str | os.PathLike | None = None, rank: int = 1) -> dict[str, Any]:
        """The (canonical) arch of the ``rank``-th best trial; also written as JSON to ``path`` (for
        ``fixed_arch``). With hyper-parameter choices in the evaluator, only the model's labels are
        exported (the trial, ``best()``, holds the hyper-parameter values too)."""
        _positive("rank", rank, int, allow_none=False)
        top = self.best(rank)
        if len(top) < rank:
            raise NoResultsError(
                f"experiment {self.name!r} has {len(top)} successful trial(s); cannot export rank {rank}"
                + ("; run() it first" if not top else "")
            )
        arch = dict(top[rank - 1].arch)
        hyper = getattr(self.evaluator, "hyperparameters", None)
        if isinstance(hyper, Space) and len(hyper):
            arch = {label: value for label, value in arch.items() if label not in hyper}
        if path is not None:
            folder = os.path.dirname(os.path.abspath(os.fspath(path)))
            os.makedirs(folder, exist_ok=True)
            with open(path, "w") as f:
                json.dump(arch, f, indent=2, sort_keys=False)
                f.write("\n")
        return arch

    def tests(self) -> list[TestResult]:
        """The final test evaluations recorded so far (see :meth:`test`)."""
        record = self._existing_record()
        if record is None:
            return []
        return [
            TestResult(r.trial_id, r.arch, r.retrain, r.status, r.metrics, r.error, r.weights)
            for r in self._open_store().tests(record.id)
        ]

    def test(
        self,
        top_k: int = 1,
        retrain: bool = True,
        weights_dir: str | os.PathLike | None = None,
        archs: list[dict[str, Any]] | None = None,
    ) -> list[TestResult]:
        """Train the ``top_k`` best archs from scratch and measure them on the test set.

        ``retrain=True`` trains on train+val, ``retrain=False`` on the train split alone (the
        evaluator's ``test`` method implements both; ``Classification`` uses its
        ``final_epochs`` recipe). Runs on the experiment's executor, up to ``concurrency`` at a
        time. Results are stored with the experiment and returned best-first by search rank;
        with ``weights_dir`` the trained weights are saved there as ``trial_<id>.pt``.
        ``archs`` evaluates the given archs instead of the top-k.
        """
        _positive("top_k", top_k, int, allow_none=False)
        record = self._require_record()
        store = self._open_store()
        if archs is not None:
            chosen = [(None, self.space.validate(a)) for a in archs]
        else:
            top = self.best(top_k)
            if not top:
                raise NoResultsError(f"experiment {self.name!r} has no successful trial to test; run() it first")
            chosen = [(t.id, t.arch) for t in top]
        seed = int(record.config["seed"])
        uses_model = bool(getattr(self.evaluator, "uses_model", True))
        concurrency = min(self.concurrency, len(chosen))
        executor = make_executor(self.executor, concurrency, preload=("torch",) if uses_model else ())
        owns_executor = executor is not self.executor
        executor.register("test", FinalTestRunner(self.model_space, self.evaluator, self.metric, seed))
        results: dict[int, TestResult] = {}
        queue = deque(enumerate(chosen))

        def on_report(task_id: int, step: int, metrics: dict[str, float]) -> bool:
            logger.debug("test of %s, step %d: %s", chosen[task_id][0], step, metrics)
            return False

        try:
            executor.start()
            while len(results) < len(chosen):
                while queue and executor.idle_slots() > 0:
                    index, (trial_id, arch) = queue.popleft()
                    executor.submit(index, "test", (trial_id if trial_id is not None else -1 - index, arch, retrain))
                for c in executor.poll(1.0, on_report):
                    trial_id, arch = chosen[c.task_id]
                    if c.status == "ok":
                        path = None
                        if weights_dir is not None and c.value.get("weights") is not None:
                            os.makedirs(weights_dir, exist_ok=True)
                            stem = f"trial_{trial_id}" if trial_id is not None else f"arch_{c.task_id}"
                            path = os.path.join(os.fspath(weights_dir), f"{stem}.pt")
                            with open(path, "wb") as f:
                                f.write(c.value["weights"])
                        result = TestResult(trial_id, arch, retrain, "SUCCEEDED", c.value["metrics"], None, path)
                    else:
                        reason = c.error or "stopped"
                        logger.warning("test of trial %s failed: %s", trial_id, reason.splitlines()[0])
                        result = TestResult(trial_id, arch, retrain, "FAILED", {}, reason, None)
                    store.add_test(record.id, trial_id, arch, retrain, result.status, result.metrics, result.error, result.weights)
                    results[c.task_id] = result
        finally:
            if owns_executor:
                executor.shutdown()
        return [results[i] for i in range(len(chosen))]

    def __repr__(self) -> str:
        return (
            f"Experiment(name={self.name!r}, store={self.store_path!r}, strategy={self.strategy!r}, "
            f"evaluator={self.evaluator!r}, max_trials={self.max_trials}, concurrency={self.concurrency}, "
            f"executor={self.executor!r})"
        )
