"""``Experiment``: the one loop that ties a space, a strategy, an evaluator, an executor and a store."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nasforge.evaluate.base import Evaluator, evaluator_config
from nasforge.evaluate.function import FunctionEvaluator
from nasforge.execution import EXECUTORS, Executor
from nasforge.experiment.interrupt import ExperimentInterrupted, interrupt_signals, shielded
from nasforge.experiment.interrupt import report as report_interrupt
from nasforge.experiment.journal import StrategyJournal
from nasforge.experiment.loop import SearchLoop, running_executor
from nasforge.experiment.objectives import (
    COSTS,
    Constraints,
    CostMeter,
    _infer_input_shape,
    objective_vector,
    pareto_trials,
    parse_objectives,
)
from nasforge.experiment.progress import Progress, progress_wanted
from nasforge.experiment.results import (
    ExperimentResults,
    NoResultsError,
    TestResult,
    _positive,
    write_arch,
)
from nasforge.experiment.runners import TrialRunner
from nasforge.space import Space
from nasforge.store import ExperimentRecord, Lease, Store, StoreConflictError, StoreError
from nasforge.strategy.base import Strategy
from nasforge.trial import ExperimentStatus, Trial, TrialStatus, check_mode, rank_trials

__all__ = ["Experiment", "ExperimentInterrupted", "ExperimentSummary", "NoResultsError", "TestResult"]

logger = logging.getLogger("nasforge.experiment")


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


def _config_diff(before: Any, now: Any, prefix: str = "") -> str:
    """``"epochs 3 → 6, lr 0.001 → 0.003"``: what changed between two JSON configs (first few keys)."""
    if isinstance(before, dict) and isinstance(now, dict):
        parts = [_config_diff(before.get(key), now.get(key), f"{prefix}{key}.")
                 for key in sorted(set(before) | set(now)) if before.get(key) != now.get(key)]
        return ", ".join(parts[:5]) + (f" and {len(parts) - 5} more" if len(parts) > 5 else "")
    label = prefix[:-1] or "config"
    return f"{label} {json.dumps(before)} → {json.dumps(now)}"


def _require(arg: str, value: Any, base: type, where: str, methods: tuple[str, ...], alternative: str = "") -> None:
    """``TypeError`` naming the argument, what it got and what is missing unless ``value`` is a ``base``."""
    if isinstance(value, base):
        return
    if isinstance(value, type) and issubclass(value, base):
        raise TypeError(f"{arg}: got the class {value.__name__} itself; pass an instance, e.g. {value.__name__}(...)")

    def listed(names: list[str]) -> str:
        return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)

    lacking = [f"{m}()" for m in methods if not hasattr(value, m)]
    why = f"it lacks {listed(lacking)}" if lacking else f"it has {listed([f'{m}()' for m in methods])} but does not subclass it"
    raise TypeError(
        f"{arg}: got {type(value).__name__}, which is not a {where} ({why}); subclass {base.__name__} "
        f"and implement {listed([f'{m}()' for m in methods])}{alternative}"
    )


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
    The evaluator's configuration
    (``evaluator.config()``: recipe, epochs, data sizes) is part of the experiment's identity:
    resuming with a different one raises :class:`~nasforge.store.StoreConflictError` naming what
    changed, unless ``allow_evaluator_change=True`` (then the new configuration is recorded and
    the leaderboard mixes both, knowingly).

    ``save_weights="best"`` keeps the weights of the best trial seen during the search
    (``"all"``: of every successful trial) in ``weights_dir`` (default: a folder beside the
    store: ``runs/search.db`` -> ``runs/search.weights/<name>/``): ``best.pt`` (state dict), ``best.json`` (trial, arch,
    metrics), ``trial_<id>.pt``.

    Results are read back, without the space or the evaluator, with
    ``Experiment.load(store, name)`` (:class:`~nasforge.experiment.results.ExperimentResults`).

    ``constraints`` (``{"params": 1e6, "flops": 5e7, "latency_ms": 5.0, "input_shape": (1, 3, 32,
    32)}`` or a :class:`~nasforge.experiment.objectives.Constraints`): an arch over budget is
    measured on its frozen network before training and recorded as ``REJECTED`` with the
    measured values; the strategy is told (score None); rejects do not count against
    ``max_trials``, and ``max_rejected`` of them stop the run. ``objectives`` (``[("val_acc",
    "max"), ("params", "min")]``): multi-objective search; the first is the main metric,
    :meth:`pareto` returns the non-dominated trials, strategies with ``set_objectives`` (NSGA-II
    ``RegularizedEvolution``, multi-objective ``TPE``) optimise the whole vector
    (``trial.objectives``). ``params``, ``flops`` and ``latency_ms`` objectives the evaluator does
    not return are measured like constraints.

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
        constraints: Mapping[str, Any] | Constraints | None = None,
        objectives: list[tuple[str, str]] | None = None,
        allow_evaluator_change: bool = False,
        save_weights: str | None = None,
        weights_dir: str | os.PathLike | None = None,
    ):
        if callable(evaluator) and not hasattr(evaluator, "evaluate") and not isinstance(evaluator, type):
            evaluator = FunctionEvaluator(evaluator)
        _require("evaluator", evaluator, Evaluator, "nasforge.evaluate.Evaluator", ("evaluate",), " (or pass a function fn(model, ctx))")
        _require("strategy", strategy, Strategy, "nasforge.strategy.Strategy", ("ask", "tell"))
        if isinstance(executor, str) and executor not in EXECUTORS:
            raise ValueError(f"unknown executor {executor!r}; valid: 'inline', 'local', 'ray', or an Executor instance")
        if not isinstance(executor, str):
            methods = tuple(sorted(Executor.__abstractmethods__))
            _require("executor", executor, Executor, "nasforge.execution.Executor", methods, " (or pass 'inline', 'local' or 'ray')")
        uses_model = bool(getattr(evaluator, "uses_model", True))
        if isinstance(model_space, Space):
            space = model_space
            if uses_model:
                raise TypeError(
                    f"{type(evaluator).__name__} evaluates networks (uses_model=True) but a plain Space was given; "
                    f"pass a model space (a nasforge.nn.ModelSpace instance), or an evaluator with uses_model=False"
                )
        else:
            found = getattr(model_space, "space", None)
            if not isinstance(found, Space) or not callable(getattr(model_space, "freeze", None)):
                raise TypeError(
                    f"model_space must be a nasforge.nn.ModelSpace instance (with .space and .freeze(arch)) "
                    f"or a nasforge.space.Space, got {type(model_space).__name__}"
                )
            space = found
        hyper = getattr(evaluator, "hyperparameters", None)
        if isinstance(hyper, Space) and len(hyper):  # joint architecture and training-recipe search
            space = space.merged(hyper, f"{type(evaluator).__name__}'s hyper-parameter choices")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        if store is not None and not isinstance(store, (str, os.PathLike, Store)):
            raise TypeError(f"store must be a file path, a Store or None (in memory), got {type(store).__name__}")
        self.objectives = parse_objectives(objectives)
        if self.objectives is not None:
            if metric is not None and metric != self.objectives[0][0]:
                raise ValueError(f"metric={metric!r} differs from the first objective {self.objectives[0][0]!r}; pass one of them")
            if mode is not None and mode != self.objectives[0][1]:
                raise ValueError(f"mode={mode!r} differs from the first objective's mode {self.objectives[0][1]!r}; pass one of them")
            metric, mode = metric or self.objectives[0][0], mode or self.objectives[0][1]
        self.constraints = Constraints.from_arg(constraints)
        metric = metric or getattr(evaluator, "metric", "score")
        if mode is None:
            mode = getattr(evaluator, "mode", "max") if metric == getattr(evaluator, "metric", None) else "max"
        check_mode(mode)
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
        self.metric: str = str(metric)
        self.mode: str = mode
        self.progress = progress
        self.allow_evaluator_change = bool(allow_evaluator_change)
        if save_weights not in (None, "best", "all"):
            raise ValueError(f"save_weights must be None, 'best' or 'all', got {save_weights!r}")
        if save_weights is not None and not uses_model:
            raise ValueError(f"save_weights={save_weights!r} needs an evaluator that trains networks (uses_model=True)")
        if save_weights is not None and weights_dir is None and (store is None or (isinstance(store, Store) and store.path == ":memory:")):
            raise ValueError("save_weights with an in-memory store needs weights_dir=... (where to write the weights)")
        self.save_weights = save_weights
        self._weights_dir = os.fspath(weights_dir) if weights_dir is not None else None
        if executor == "inline" and concurrency > 1:
            logger.warning("executor='inline' runs one trial at a time; concurrency=%d is ignored", concurrency)
        if self.max_trials is None and self.max_time is None:
            logger.info("no max_trials nor max_time: the experiment runs until the strategy is exhausted")
        self._store_arg = store
        self._store: Store | None = store if isinstance(store, Store) else None
        self._record: ExperimentRecord | None = None
        self._costs = self._cost_meter(model_space, evaluator)

    def _cost_meter(self, model_space: Any, evaluator: Any) -> CostMeter | None:
        """What the driver measures itself: the constrained costs and the cost objectives."""
        wanted = list(self.constraints.limits) if self.constraints is not None else []
        wanted += [n for n, _ in self.objectives or [] if n in COSTS and n not in wanted and n != "params"]
        if not wanted:
            return None
        c = self.constraints
        shape = c.input_shape if c is not None and c.input_shape is not None else _infer_input_shape(evaluator)
        return CostMeter(model_space, wanted, shape, c.latency_repeats if c else 20, c.device if c else None)

    # -- store & identity -----------------------------------------------------------------------------
    @property
    def store_path(self) -> str:
        if isinstance(self._store_arg, Store):
            return self._store_arg.path
        return os.fspath(self._store_arg) if self._store_arg is not None else ":memory:"

    @classmethod
    def load(cls, store: str | os.PathLike | Store, name: str | None = None) -> ExperimentResults:
        """Read an experiment's results back, read-only, without its space or evaluator.

        Returns an :class:`~nasforge.experiment.results.ExperimentResults` with ``trials()``,
        ``best(k)``, ``export(path)``, ``test_results()``, ``records()`` and ``to_pandas()``.
        ``name`` may be left out when the store holds a single experiment.
        """
        return ExperimentResults(store, name)

    @property
    def weights_dir(self) -> str | None:
        """Where ``save_weights`` writes (None when weights are not kept)."""
        if self.save_weights is None:
            return None
        if self._weights_dir is not None:
            return self._weights_dir
        base = os.path.splitext(os.path.abspath(self.store_path))[0]
        return os.path.join(base + ".weights", self.name)

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
            "evaluator_config": evaluator_config(self.evaluator),
            "weights_dir": self.weights_dir,
            "model_space": type(self.model_space).__name__,
            "seed": seed,
            "max_trials": self.max_trials,
            "max_time": self.max_time,
            "concurrency": self.concurrency,
            "executor": self.executor if isinstance(self.executor, str) else type(self.executor).__name__,
            "trial_timeout": self.trial_timeout,
            "nasforge_version": nasforge.__version__,
            **({"objectives": [list(o) for o in self.objectives]} if self.objectives else {}),
            **({"constraints": self.constraints.describe()} if self.constraints is not None else {}),
        }

    def _open_experiment(self) -> ExperimentRecord:
        store = self._open_store()
        record = store.experiment(self.name)
        if record is None:
            seed = self.seed if self.seed is not None else secrets.randbelow(2**31)
            store.create_experiment(self.name, self._config(seed))
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
            self._check_evaluator(old)
            if self.seed is not None and old.get("seed") != self.seed:
                logger.warning("resuming %r with its stored seed %s (ignoring seed=%s)", self.name, old.get("seed"), self.seed)
            config = self._config(old["seed"])
            config["created_with"] = {k: old.get(k) for k in ("max_trials", "max_time", "concurrency", "executor")}
            if "evaluator_config" in old and old["evaluator_config"] != config["evaluator_config"]:
                config["evaluator_history"] = [*old.get("evaluator_history", []), old["evaluator_config"]]
            store.update_experiment(record.id, config=config)
        record = store.experiment(self.name)
        if record is None:  # deleted by another process meanwhile
            raise StoreError(f"experiment {self.name!r} disappeared from {self.store_path!r} while it was opened")
        self._record = record
        return record

    def _check_evaluator(self, old: dict[str, Any]) -> None:
        """Refuse to mix scores of a different evaluator configuration (unless allowed)."""
        before = old.get("evaluator_config")
        if before is None:  # a store written before evaluator configs were recorded
            return
        now = evaluator_config(self.evaluator)
        if before == now:
            return
        changes = _config_diff(before, now)
        if not self.allow_evaluator_change:
            raise StoreConflictError(
                f"experiment {self.name!r} in {self.store_path!r} was run with a different evaluator configuration "
                f"({changes}); its scores would not be comparable with the stored ones. Use another name or store, "
                f"or pass Experiment(..., allow_evaluator_change=True) to resume and mix them knowingly"
            )
        logger.warning("experiment %r: the evaluator configuration changed (%s); mixing results as allowed", self.name, changes)

    def _tell_objectives(self) -> None:
        """Multi-objective experiments tell the strategy how many objectives ``trial.objectives``
        has (before its ``setup``: the setting persists across it)."""
        if self.objectives is None or len(self.objectives) < 2:
            return
        hook = getattr(self.strategy, "set_objectives", None)
        if callable(hook):
            hook(len(self.objectives))
        else:
            logger.info("%s is single-objective: it optimises %r alone", type(self.strategy).__name__, self.metric)

    def _with_objectives(self, trial: Trial) -> Trial:
        if self.objectives is not None and trial.status is TrialStatus.SUCCEEDED:
            trial.objectives = objective_vector(trial.metrics, self.objectives)
        return trial

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
        trials = [self._with_objectives(t) for t in store.trials(exp_id)]
        requeued = store.requeue_unfinished(exp_id)
        requeued_ids = {t.id for t in requeued}
        finished = [t for t in trials if t.id not in requeued_ids and t.status.finished]
        self._tell_objectives()
        journal = StrategyJournal(self.strategy, store, exp_id, self.space)
        journal.restore(record.strategy_state, record.state_seq, seed, {t.id: t for t in trials}, finished)
        if finished or requeued:
            message = f"resuming {self.name!r}: {len(finished)} finished trials kept, {len(requeued)} re-queued"
            if self.progress is False:
                logger.info("%s", message)
            else:
                print(message, file=sys.stderr, flush=True)
        runner = TrialRunner(self.model_space, self.evaluator, self.metric, seed)
        runner.save_weights = self.save_weights is not None
        self._warn_about_steps()
        self._best_kept = self._kept_best_score()
        bar = Progress(self.name, self.metric, self.max_trials, self.max_time) if progress_wanted(self.progress) else None
        loop = SearchLoop(self, store, exp_id, lease, journal, trials, finished, requeued, bar)
        store.update_experiment(exp_id, status=ExperimentStatus.RUNNING)
        status = ExperimentStatus.INTERRUPTED
        interrupted: ExperimentInterrupted | None = None
        n_requeued = 0
        resources = contextlib.ExitStack()
        with interrupt_signals():  # left after the shielded clean-up: the caller's handlers come back
            try:
                resources.enter_context(bar or contextlib.nullcontext())
                stop_reason = loop.run(resources.enter_context(running_executor(self, "trial", runner, self.concurrency)))
                journal.checkpoint()
                status = ExperimentStatus.DONE
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (interrupt_signals)
                interrupted = exc if isinstance(exc, ExperimentInterrupted) else ExperimentInterrupted(str(exc) or "interrupted")
            finally:
                with shielded():
                    resources.close()
                    if interrupted is not None:
                        n_requeued = len(store.requeue_unfinished(exp_id))
                    store.update_experiment(exp_id, status=status)
        if interrupted is not None:
            raise report_interrupt(interrupted, n_requeued) from None
        summary = ExperimentSummary(
            name=self.name,
            store=self.store_path,
            metric=self.metric,
            mode=self.mode,
            n_trials=loop.total,
            counts=dict(store.status_counts(exp_id)),
            best=loop.best,
            elapsed=time.monotonic() - loop.start,
            stop_reason=stop_reason,
            resumed_trials=len(requeued),
        )
        logger.info("%s", summary)
        return summary

    def _require_record(self) -> ExperimentRecord:
        return self._record if self._record is not None else self._open_experiment()

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
        return [self._with_objectives(t) for t in self._open_store().trials(record.id)]

    def best(self, k: int = 1) -> list[Trial]:
        """The ``k`` best successful trials by the main metric (best first)."""
        _positive("k", k, int, allow_none=False)
        return rank_trials(self.trials(), k)

    def pareto(self, objectives: list[tuple[str, str]] | None = None) -> list[Trial]:
        """The non-dominated successful trials for ``objectives`` (default: the experiment's),
        sorted by the first objective, best first.

        Example::

            exp = Experiment(space, RegularizedEvolution(), ev, objectives=[("val_acc", "max"), ("params", "min")])
            exp.run()
            for t in exp.pareto():
                print(t.metrics["val_acc"], t.metrics["params"], t.arch)
        """
        objectives = parse_objectives(objectives) if objectives is not None else self.objectives
        if objectives is None or len(objectives) < 2:
            raise ValueError(
                "pareto() needs at least 2 objectives: create the Experiment with objectives=[('val_acc', 'max'), "
                "('params', 'min')] or pass them to pareto(...)"
            )
        return pareto_trials(self.trials(), objectives)

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
        hyper = getattr(self.evaluator, "hyperparameters", None)
        arch = {label: value for label, value in top[rank - 1].arch.items() if not isinstance(hyper, Space) or label not in hyper}
        if path is not None:
            write_arch(arch, path)
        return arch

    def tests(self) -> list[TestResult]:
        """Every single final test run recorded so far, oldest first (see :meth:`test`; one per seed)."""
        return [] if self._existing_record() is None else ExperimentResults(self._open_store(), self.name).tests()

    def test(
        self,
        top_k: int = 1,
        retrain: bool = True,
        weights_dir: str | os.PathLike | None = None,
        archs: list[dict[str, Any]] | None = None,
        seeds: int = 1,
        redo: bool = False,
        progress: bool | None = None,
    ) -> list[TestResult]:
        """Train the ``top_k`` best archs from scratch and measure them on the test set.

        ``retrain=True`` trains on train+val, ``retrain=False`` on the train split alone (the
        evaluator's ``test`` method implements both; ``Supervised`` presets use their
        ``final_epochs`` recipe). ``seeds=n`` trains each candidate ``n`` times with different
        seeds (initialisation and data order) and returns one result per candidate whose
        ``metrics`` are the means and ``std`` the sample standard deviations (``runs`` holds the
        single runs). Runs already stored for the same arch, seed, ``retrain`` and evaluator test
        configuration are reused (re-running a finished script adds no duplicate rows); pass
        ``redo=True`` to run them again. Runs on the experiment's executor, up to
        ``concurrency`` at a time, with live progress (candidate, seed, epoch, elapsed) on a
        terminal or with ``progress=True``. Results are stored with the experiment and returned
        in search-rank order; with ``weights_dir`` the trained weights are saved there as
        ``trial_<id>.pt`` (``trial_<id>_seed<k>.pt`` with several seeds). ``archs`` evaluates the
        given archs instead of the top-k.

        Example::

            for r in exp.test(top_k=3, retrain=True, seeds=3):
                print(r)   # trial 12: test_acc 0.9712 ± 0.0021, test_loss … (3 seeds, retrained on train+val)
        """
        from nasforge.experiment.final import run_final_tests

        _positive("top_k", top_k, int, allow_none=False)
        _positive("seeds", seeds, int, allow_none=False)
        self._require_record()
        if archs is not None:
            chosen: list[tuple[int | None, dict[str, Any]]] = [(None, self.space.validate(a)) for a in archs]
        else:
            top = self.best(top_k)
            if not top:
                raise NoResultsError(f"experiment {self.name!r} has no successful trial to test; run() it first")
            chosen = [(t.id, t.arch) for t in top]
        return run_final_tests(self, chosen, retrain, seeds, redo, weights_dir, progress)

    # -- search-time weights and budget checks ----------------------------------------------------------
    def _warn_about_steps(self) -> None:
        """Let a multi-fidelity strategy check its budget against the steps the evaluator reports."""
        steps = getattr(self.evaluator, "reported_steps", None)
        check = getattr(self.strategy, "check_reported_steps", None)
        if isinstance(steps, int) and not isinstance(steps, bool) and callable(check):
            check(steps)

    def _kept_best_score(self) -> float | None:
        folder = self.weights_dir
        if folder is None:
            return None
        try:
            with open(os.path.join(folder, "best.json")) as f:
                return float(json.load(f)["score"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _keep_weights(self, trial: Trial, blob: bytes) -> None:
        folder = self.weights_dir
        if folder is None:
            return
        os.makedirs(folder, exist_ok=True)

        def write(name: str, data: bytes) -> None:
            tmp = os.path.join(folder, f".{name}.tmp")
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, os.path.join(folder, name))

        if self.save_weights == "all":
            write(f"trial_{trial.id}.pt", blob)
        best = getattr(self, "_best_kept", None)
        if trial.score is not None and (best is None or trial.score > best):
            write("best.pt", blob)
            info = {"experiment": self.name, "trial": trial.id, "arch": trial.arch, "metrics": trial.metrics, "score": trial.score}
            write("best.json", (json.dumps(info, indent=2) + "\n").encode())
            self._best_kept = trial.score

    def __repr__(self) -> str:
        return (
            f"Experiment(name={self.name!r}, store={self.store_path!r}, strategy={self.strategy!r}, "
            f"evaluator={self.evaluator!r}, max_trials={self.max_trials}, concurrency={self.concurrency}, "
            f"executor={self.executor!r})"
        )
