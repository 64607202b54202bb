"""Reading an experiment's results back: ``Experiment.load(store, name)`` and the test-result type.

The view needs neither the model space nor the evaluator (nor torch): it reads the SQLite store,
read-only, and every call sees the store as it is now (a running search keeps adding trials).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from nasforge.errors import NasforgeError
from nasforge.store import ExperimentRecord, Store, StoreError, TestRecord
from nasforge.trial import Trial, TrialStatus, rank_trials

__all__ = ["ExperimentResults", "NoResultsError", "TestResult", "aggregate_runs", "rank_trials", "write_arch"]


class NoResultsError(NasforgeError, ValueError):
    """Asked for a best trial / an export / a test before any trial succeeded."""


@dataclass
class TestResult:
    """A final test-set evaluation of one chosen arch (see ``Experiment.test``).

    A single run has its ``seed``; the result of ``Experiment.test(seeds=n)`` is an aggregate:
    ``metrics`` are the means over the successful ``runs`` (one per seed), ``std`` the sample
    standard deviations (n - 1 in the denominator; empty for one run), ``seed`` is None.
    ``reused`` marks runs read from the store instead of being run again.
    """

    trial_id: int | None
    arch: dict[str, Any]
    retrain: bool
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    weights: str | None = None
    seed: int | None = None
    std: dict[str, float] = field(default_factory=dict)
    runs: list[TestResult] = field(default_factory=list)
    reused: bool = False

    @property
    def n_runs(self) -> int:
        """How many single runs this result stands for (1 for a single run)."""
        return len(self.runs) if self.runs else 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self, prefix: str = "test_") -> str:
        """``"test_acc 0.9712 ± 0.0021, test_loss 0.0912 ± 0.0040"`` (metrics whose name starts with ``prefix``)."""
        return ", ".join(
            f"{name} {self.metrics[name]:.4f}"
            + (f" ± {self.std[name]:.4f}" if name in self.std else "")
            for name in sorted(self.metrics) if name.startswith(prefix)
        )

    def __str__(self) -> str:
        who = f"trial {self.trial_id}" if self.trial_id is not None else "arch"
        how = "retrained on train+val" if self.retrain else "trained on train"
        if self.runs:
            ok = sum(r.status == TrialStatus.SUCCEEDED for r in self.runs)
            seeds = f"{ok}/{len(self.runs)} seeds" if ok != len(self.runs) else f"{len(self.runs)} seed{'s' * (len(self.runs) > 1)}"
        else:
            seeds = f"seed {self.seed}" if self.seed is not None else "1 run"
        if self.status == TrialStatus.SUCCEEDED:
            body = self.format() or "no test_ metrics"
        else:
            body = "failed: " + ((self.error or "").splitlines() or ["unknown error"])[0]
        return f"{who}: {body} ({seeds}, {how})"


def _record_to_result(r: TestRecord) -> TestResult:
    return TestResult(r.trial_id, r.arch, r.retrain, r.status, r.metrics, r.error, r.weights, r.seed)


def aggregate_runs(runs: list[TestResult]) -> TestResult:
    """One result from the single runs of one arch: means and sample standard deviations."""
    if not runs:
        raise ValueError("aggregate_runs needs at least one run")
    first = runs[0]
    ok = [r for r in runs if r.status == TrialStatus.SUCCEEDED]
    metrics: dict[str, float] = {}
    std: dict[str, float] = {}
    if ok:
        for name in sorted(set(ok[0].metrics).intersection(*(r.metrics for r in ok[1:]))):
            values = [float(r.metrics[name]) for r in ok]
            metrics[name] = mean = sum(values) / len(values)
            if len(values) > 1:
                std[name] = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return TestResult(
        trial_id=first.trial_id,
        arch=first.arch,
        retrain=first.retrain,
        status=(TrialStatus.SUCCEEDED if ok else TrialStatus.FAILED).value,
        metrics=metrics,
        error=next((r.error for r in runs if r.status != TrialStatus.SUCCEEDED), None),
        weights=ok[0].weights if ok else None,
        seed=None if len(runs) > 1 else first.seed,
        std=std,
        runs=list(runs),
        reused=all(r.reused for r in runs),
    )


def hyperparameter_labels(config: dict[str, Any]) -> set[str]:
    """The labels of the evaluator's hyper-parameter choices (not part of the network's arch)."""
    described = (config.get("evaluator_config") or {}).get("hyperparameters") or []
    return {d["label"] for d in described if isinstance(d, dict) and "label" in d}


def _positive(name: str, value: Any, kind: type = float, allow_none: bool = True) -> Any:
    if value is None and allow_none:
        return None
    ok = not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int)
    if not ok or not (value > 0) or (kind is float and not math.isfinite(value)):
        what = "a positive int" if kind is int else "a positive number of seconds"
        raise ValueError(f"{name} must be {what}{' or None' if allow_none else ''}, got {value!r}")
    return value


def write_arch(arch: Any, path: str | os.PathLike) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    with open(path, "w") as f:
        json.dump(arch, f, indent=2, sort_keys=False)
        f.write("\n")


class ExperimentResults:
    """A read-only view of one experiment in a store: what ``Experiment.load(store, name)`` returns.

    No space, no evaluator and no torch needed: ``trials()``, ``best(k)``, ``export(path)``,
    ``test_results()`` (final test evaluations, mean ± std over seeds), ``records()`` (one flat
    dict per trial) and ``to_pandas()``. ``name`` may be left out when the store holds one
    experiment.

    Example::

        res = Experiment.load("runs/search.db", "mnist1d")
        res.best(3)
        df = res.to_pandas()          # one row per trial: trial, status, score, metrics, arch.<label>, …
        for r in res.test_results():
            print(r)                  # trial 12: test_acc 0.9712 ± 0.0021 (3 seeds, retrained on train+val)
    """

    def __init__(self, store: str | os.PathLike | Store, name: str | None = None):
        if not isinstance(store, (Store, str, os.PathLike)):
            raise TypeError(f"store must be a file path or a Store, got {type(store).__name__}")
        self._store = store if isinstance(store, Store) else Store(store, readonly=True)
        records = self._store.experiments()
        names = ", ".join(repr(r.name) for r in records) or "none"
        if name is None:
            if len(records) != 1:
                raise StoreError(f"{self._store.path!r} holds {len(records)} experiments ({names}); give the name: Experiment.load(store, name)")
            name = records[0].name
        if self._store.experiment(name) is None:
            raise StoreError(f"no experiment named {name!r} in {self._store.path!r}; it holds: {names}")
        self.name = name

    # -- the record ---------------------------------------------------------------------------
    @property
    def record(self) -> ExperimentRecord:
        record = self._store.experiment(self.name)
        if record is None:
            raise StoreError(f"experiment {self.name!r} is no longer in {self._store.path!r} (deleted by another process?)")
        return record

    @property
    def config(self) -> dict[str, Any]:
        """The experiment's configuration as stored (space, metric, mode, strategy, evaluator, …)."""
        return self.record.config

    @property
    def metric(self) -> str:
        return str(self.config.get("metric", "score"))

    @property
    def mode(self) -> str:
        return str(self.config.get("mode", "max"))

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def store_path(self) -> str:
        return self._store.path

    # -- trials ---------------------------------------------------------------------------------
    def trials(self, with_reports: bool = True) -> list[Trial]:
        """Every trial in id order (with the intermediate reports unless told not to)."""
        return self._store.trials(self.name, with_reports=with_reports)

    def best(self, k: int = 1) -> list[Trial]:
        """The ``k`` best successful trials by the main metric (best first)."""
        _positive("k", k, int, allow_none=False)
        return rank_trials(self.trials(with_reports=False), k)

    def export(self, path: str | os.PathLike | None = None, rank: int = 1) -> dict[str, Any]:
        """The arch of the ``rank``-th best trial; also written as JSON to ``path`` (for ``fixed_arch``)."""
        _positive("rank", rank, int, allow_none=False)
        top = self.best(rank)
        if len(top) < rank:
            raise NoResultsError(f"experiment {self.name!r} has {len(top)} successful trial(s); cannot export rank {rank}")
        hyper = hyperparameter_labels(self.config)
        arch = {k: v for k, v in top[rank - 1].arch.items() if k not in hyper}  # the network's choices, for fixed_arch
        if path is not None:
            write_arch(arch, path)
        return arch

    def best_weights(self) -> str | None:
        """The file with the weights of the best trial kept during search (``save_weights``), or None."""
        folder = self.config.get("weights_dir")
        if not folder:
            return None
        path = os.path.join(folder, "best.pt")
        return path if os.path.exists(path) else None

    # -- tests ----------------------------------------------------------------------------------
    def tests(self) -> list[TestResult]:
        """Every single test run recorded, oldest first (one per seed, re-runs included)."""
        return [_record_to_result(r) for r in self._store.tests(self.name)]

    def test_results(self, aggregate: bool = True) -> list[TestResult]:
        """Final test evaluations by search rank; with ``aggregate`` one result per arch (mean ± std over seeds).

        When a run was redone, the latest run of each seed counts.
        """
        if not aggregate:
            return self.tests()
        ranked = rank_trials(self.trials(with_reports=False))
        return group_tests(self._store.tests(self.name), ranked)

    # -- tables ---------------------------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        """One flat dict per trial: ``trial``, ``status``, ``score``, every metric, ``arch.<label>``, timing, error."""
        out = []
        for t in self.trials():
            row: dict[str, Any] = {"trial": t.id, "status": t.status.value, "score": t.score}
            row.update(t.metrics)
            for label, value in t.arch.items():
                row[f"arch.{label}"] = json.dumps(value) if isinstance(value, (list, dict)) else value
            row.update(
                arch=json.dumps(t.arch), steps=len(t.reports), started=t.started, finished=t.finished,
                duration=t.duration, worker=t.worker, error=(t.error or "").splitlines()[0] if t.error else None,
            )
            out.append(row)
        return out

    def to_pandas(self) -> Any:
        """:meth:`records` as a ``pandas.DataFrame`` indexed by trial id (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is a common extra
            raise ImportError("to_pandas() needs pandas (pip install pandas); records() gives the same rows as dicts") from None
        frame = pd.DataFrame.from_records(self.records())
        return frame.set_index("trial") if len(frame) else frame

    def plot_history(self, path: str | os.PathLike, title: str | None = None) -> str:
        """Write the search history plot (see :func:`nasforge.viz.plot_history`)."""
        from nasforge.viz import plot_history

        return plot_history(self.trials(with_reports=False), path, metric=self.metric, mode=self.mode, title=title)

    def __repr__(self) -> str:
        total = sum(self._store.status_counts(self.name).values())
        return f"ExperimentResults(name={self.name!r}, store={self.store_path!r}, status={self.status!r}, trials={total}, metric={self.metric!r})"


def group_tests(rows: list[TestRecord], ranked: list[Trial]) -> list[TestResult]:
    """Aggregate stored test runs per arch (latest run of each seed), ordered by search rank."""
    groups: dict[tuple, dict[Any, TestRecord]] = {}
    for r in rows:
        key = (r.trial_id, json.dumps(r.arch, sort_keys=True), r.retrain, r.config)
        # later rows win per seed; rows written before seeds were recorded count as one seed
        groups.setdefault(key, {})[r.seed if r.seed is not None else "unrecorded"] = r
    rank_of: dict[int | None, int] = {t.id: i for i, t in enumerate(ranked)}
    results = [aggregate_runs([_record_to_result(r) for r in per_seed.values()]) for per_seed in groups.values()]
    results.sort(key=lambda res: rank_of.get(res.trial_id, len(rank_of)))  # stable: ties keep order
    return results
