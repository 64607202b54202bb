"""The durable record of experiments: one SQLite file (standard library ``sqlite3``, WAL mode).

Tables:

* ``experiments`` — name, config JSON (space fingerprint and description, metric, mode,
  strategy, evaluator…), the strategy's state JSON, status, times;
* ``trials`` — per experiment and trial id: arch JSON, status, metrics JSON, score, start / end
  times, worker, error text, attempts;
* ``reports`` — intermediate ``(trial, step, metrics)`` values;
* ``tests`` — final test-set evaluations of chosen archs.

Every change is one transaction, and the strategy's state is written in the same transaction
as the trial change that produced it, so a process killed at any moment leaves a consistent
file: at most the trials that were running are lost (and re-queued on resume). The store
holds no search logic; one process (the experiment's parent) writes, any number may read.

Reading (any process, any time; ``Store(path, readonly=True)`` never writes)::

    store = Store("runs/mnist1d.db", readonly=True)
    store.experiments()               # [ExperimentRecord(id, name, config, strategy_state, status, …)]
    store.experiment("mnist1d")       # one record by name, or None
    store.trials("mnist1d")           # [Trial] in id order (by name or by record id), with reports
    store.trials("mnist1d", with_reports=False)
    store.status_counts("mnist1d")    # {"SUCCEEDED": 40, "FAILED": 2}
    store.tests("mnist1d")            # [TestRecord] final test evaluations, one per seed and run

For analysis prefer ``Experiment.load(path, name)`` (best / export / test results / pandas).
Writing is the experiment's job (``create_experiment``, ``add_trial``, ``finish_trial``,
``add_report``, ``requeue_unfinished``, ``add_test``); a user never needs it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from nasforge.errors import NasforgeError
from nasforge.trial import Trial, TrialStatus

__all__ = ["ExperimentRecord", "Store", "StoreConflictError", "StoreError", "TestRecord"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    config TEXT NOT NULL,
    strategy_state TEXT,
    status TEXT NOT NULL DEFAULT 'created'
);
CREATE TABLE IF NOT EXISTS trials (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    id INTEGER NOT NULL,
    arch TEXT NOT NULL,
    status TEXT NOT NULL,
    metrics TEXT,
    score REAL,
    started REAL,
    finished REAL,
    worker TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, id)
);
CREATE TABLE IF NOT EXISTS reports (
    experiment_id INTEGER NOT NULL,
    trial_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_by_trial ON reports (experiment_id, trial_id);
CREATE TABLE IF NOT EXISTS tests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id INTEGER NOT NULL,
    trial_id INTEGER,
    arch TEXT NOT NULL,
    retrain INTEGER NOT NULL,
    status TEXT NOT NULL,
    metrics TEXT,
    error TEXT,
    weights TEXT,
    created REAL NOT NULL,
    seed INTEGER,
    config TEXT
);
"""

#: columns added after the first release: (table, column, type); added on open when missing
_ADDED_COLUMNS = (("tests", "seed", "INTEGER"), ("tests", "config", "TEXT"))


class StoreError(NasforgeError, ValueError):
    """The store file or a record in it cannot be used as asked."""


class StoreConflictError(StoreError):
    """An experiment name already exists in the store with an incompatible config."""


@dataclass
class ExperimentRecord:
    id: int
    name: str
    config: dict[str, Any]
    strategy_state: dict[str, Any] | None
    status: str
    created: float
    updated: float


@dataclass
class TestRecord:
    id: int
    trial_id: int | None
    arch: dict[str, Any]
    retrain: bool
    status: str
    metrics: dict[str, float]
    error: str | None
    weights: str | None
    created: float
    seed: int | None = None
    config: str | None = None  # hash of the evaluator's test configuration

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("id", "created", "config")}


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class Store:
    """An SQLite store of experiments, trials, reports and test results (see module docs).

    ``path`` is a file path (parent folders are created) or ``":memory:"`` for a store that
    lives as long as the object. ``readonly=True`` opens an existing file without writing.
    """

    def __init__(self, path: str | os.PathLike = ":memory:", readonly: bool = False):
        self.path = os.fspath(path)
        self.readonly = readonly
        memory = self.path == ":memory:"
        if readonly:
            if memory or not os.path.exists(self.path):
                raise StoreError(f"store file {self.path!r} does not exist")
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA query_only = ON")
            if not self._has_schema():
                raise StoreError(f"{self.path!r} is an SQLite file but not a nasforge store (no experiments table)")
            return
        if not memory:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            if not memory:
                self._db.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: every commit survives a killed process (not necessarily a power cut).
            self._db.execute("PRAGMA synchronous = NORMAL")
            with self._tx():
                for stmt in _SCHEMA.strip().split(";"):
                    if stmt.strip():
                        self._db.execute(stmt)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
                self._add_missing_columns()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open {self.path!r} as a nasforge store: {exc}") from exc

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})").fetchall()}

    def _add_missing_columns(self) -> None:
        for table, column, kind in _ADDED_COLUMNS:
            if column not in self._columns(table):
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _exp_id(self, experiment: int | str) -> int:
        """The record id of an experiment given by id or by name (clear error for an unknown name)."""
        if isinstance(experiment, bool) or not isinstance(experiment, (int, str)):
            raise TypeError(f"experiment must be a name (str) or a record id (int), got {type(experiment).__name__}")
        if isinstance(experiment, int):
            return experiment
        row = self._db.execute("SELECT id FROM experiments WHERE name = ?", (experiment,)).fetchone()
        if row is None:
            names = ", ".join(repr(r[0]) for r in self._db.execute("SELECT name FROM experiments ORDER BY id")) or "none"
            raise StoreError(f"no experiment named {experiment!r} in {self.path!r}; it holds: {names}")
        return int(row[0])

    def _has_schema(self) -> bool:
        try:
            row = self._db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='experiments'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open {self.path!r} as a nasforge store: {exc}") from exc
        return row is not None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    # -- experiments ---------------------------------------------------------------------------
    def _record(self, row: tuple) -> ExperimentRecord:
        id_, name, created, updated, config, state, status = row
        return ExperimentRecord(id_, name, json.loads(config), json.loads(state) if state else None, status, created, updated)

    _EXP_COLS = "id, name, created, updated, config, strategy_state, status"

    def experiments(self) -> list[ExperimentRecord]:
        rows = self._db.execute(f"SELECT {self._EXP_COLS} FROM experiments ORDER BY id").fetchall()
        return [self._record(r) for r in rows]

    def experiment(self, name: str) -> ExperimentRecord | None:
        row = self._db.execute(f"SELECT {self._EXP_COLS} FROM experiments WHERE name = ?", (name,)).fetchone()
        return self._record(row) if row else None

    def create_experiment(self, name: str, config: dict[str, Any]) -> int:
        t = time.time()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO experiments (name, created, updated, config, status) VALUES (?, ?, ?, ?, 'created')",
                (name, t, t, _dumps(config)),
            )
            return int(cur.lastrowid)

    def update_experiment(self, exp_id: int, *, config: dict[str, Any] | None = None, status: str | None = None) -> None:
        with self._tx() as db:
            if config is not None:
                db.execute("UPDATE experiments SET config = ? WHERE id = ?", (_dumps(config), exp_id))
            if status is not None:
                db.execute("UPDATE experiments SET status = ? WHERE id = ?", (status, exp_id))
            db.execute("UPDATE experiments SET updated = ? WHERE id = ?", (time.time(), exp_id))

    def _set_state(self, db: sqlite3.Connection, exp_id: int, state: dict[str, Any] | None) -> None:
        if state is not None:
            db.execute(
                "UPDATE experiments SET strategy_state = ?, updated = ? WHERE id = ?",
                (_dumps(state), time.time(), exp_id),
            )

    # -- trials ------------------------------------------------------------------------------------
    def add_trial(self, exp_id: int, trial: Trial, strategy_state: dict[str, Any] | None = None) -> None:
        """Insert a new trial (normally RUNNING) together with the strategy state after its ``ask``."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO trials (experiment_id, id, arch, status, started, worker, attempts) VALUES (?, ?, ?, ?, ?, ?, 1)",
                (exp_id, trial.id, _dumps(trial.arch), trial.status.value, trial.started, trial.worker),
            )
            self._set_state(db, exp_id, strategy_state)

    def start_trial(self, exp_id: int, trial: Trial) -> None:
        """Mark a (re-queued) trial as running again."""
        with self._tx() as db:
            db.execute(
                "UPDATE trials SET status = ?, started = ?, worker = ?, attempts = attempts + 1 WHERE experiment_id = ? AND id = ?",
                (trial.status.value, trial.started, trial.worker, exp_id, trial.id),
            )

    def finish_trial(self, exp_id: int, trial: Trial, strategy_state: dict[str, Any] | None = None) -> None:
        """Record a finished trial and the strategy state after its ``tell``, atomically."""
        with self._tx() as db:
            db.execute(
                "UPDATE trials SET status = ?, metrics = ?, score = ?, started = ?, finished = ?, worker = ?, error = ? "
                "WHERE experiment_id = ? AND id = ?",
                (
                    trial.status.value,
                    _dumps(trial.metrics),
                    trial.score,
                    trial.started,
                    trial.finished,
                    trial.worker,
                    trial.error,
                    exp_id,
                    trial.id,
                ),
            )
            self._set_state(db, exp_id, strategy_state)

    def add_report(
        self, exp_id: int, trial_id: int, step: int, metrics: dict[str, float], strategy_state: dict[str, Any] | None = None
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO reports (experiment_id, trial_id, step, metrics, time) VALUES (?, ?, ?, ?, ?)",
                (exp_id, trial_id, step, _dumps(metrics), time.time()),
            )
            self._set_state(db, exp_id, strategy_state)

    def requeue_unfinished(self, exp_id: int) -> list[Trial]:
        """Turn trials left RUNNING / WAITING by a dead process back into WAITING ones (same id, same
        arch), drop their partial reports, and return them in id order."""
        unfinished = (TrialStatus.RUNNING.value, TrialStatus.WAITING.value)
        with self._tx() as db:
            rows = db.execute(
                "SELECT id FROM trials WHERE experiment_id = ? AND status IN (?, ?) ORDER BY id", (exp_id, *unfinished)
            ).fetchall()
            ids = [r[0] for r in rows]
            for tid in ids:
                db.execute("DELETE FROM reports WHERE experiment_id = ? AND trial_id = ?", (exp_id, tid))
                db.execute(
                    "UPDATE trials SET status = 'WAITING', started = NULL, worker = NULL WHERE experiment_id = ? AND id = ?",
                    (exp_id, tid),
                )
        return [t for t in self.trials(exp_id) if t.id in set(ids)]

    def trials(self, experiment: int | str, with_reports: bool = True) -> list[Trial]:
        """Every trial of an experiment (its name or record id), in id order, with its reports unless told not to."""
        exp_id = self._exp_id(experiment)
        rows = self._db.execute(
            "SELECT id, arch, status, metrics, score, started, finished, worker, error FROM trials "
            "WHERE experiment_id = ? ORDER BY id",
            (exp_id,),
        ).fetchall()
        reports: dict[int, list[tuple[int, dict[str, float]]]] = {}
        if with_reports:
            for tid, step, metrics in self._db.execute(
                "SELECT trial_id, step, metrics FROM reports WHERE experiment_id = ? ORDER BY rowid", (exp_id,)
            ):
                reports.setdefault(tid, []).append((step, json.loads(metrics)))
        out = []
        for tid, arch, status, metrics, score, started, finished, worker, error in rows:
            out.append(
                Trial(
                    id=tid,
                    arch=json.loads(arch),
                    status=TrialStatus(status),
                    metrics=json.loads(metrics) if metrics else {},
                    score=score,
                    reports=reports.get(tid, []),
                    error=error,
                    started=started,
                    finished=finished,
                    worker=worker,
                )
            )
        return out

    def attempts(self, experiment: int | str) -> dict[int, int]:
        """How many times each trial was started (re-queued trials run again)."""
        exp_id = self._exp_id(experiment)
        return dict(self._db.execute("SELECT id, attempts FROM trials WHERE experiment_id = ?", (exp_id,)).fetchall())

    def status_counts(self, experiment: int | str) -> dict[str, int]:
        """``{status: count}`` of an experiment's trials."""
        exp_id = self._exp_id(experiment)
        return dict(
            self._db.execute("SELECT status, COUNT(*) FROM trials WHERE experiment_id = ? GROUP BY status", (exp_id,)).fetchall()
        )

    # -- tests ----------------------------------------------------------------------------------
    def add_test(
        self,
        exp_id: int,
        trial_id: int | None,
        arch: dict[str, Any],
        retrain: bool,
        status: str,
        metrics: dict[str, float] | None,
        error: str | None = None,
        weights: str | None = None,
        seed: int | None = None,
        config: str | None = None,
    ) -> int:
        """Record one final test evaluation (one seed of one arch)."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO tests (experiment_id, trial_id, arch, retrain, status, metrics, error, weights, created, seed, config) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (exp_id, trial_id, _dumps(arch), int(retrain), status, _dumps(metrics or {}), error, weights, time.time(),
                 seed, config),
            )
            return int(cur.lastrowid)

    def tests(self, experiment: int | str) -> list[TestRecord]:
        """The final test evaluations of an experiment (its name or record id), oldest first."""
        exp_id = self._exp_id(experiment)
        have = self._columns("tests")  # a read-only store written by an older version lacks the new columns
        extra = ", ".join(c if c in have else "NULL" for c in ("seed", "config"))
        rows = self._db.execute(
            f"SELECT id, trial_id, arch, retrain, status, metrics, error, weights, created, {extra} FROM tests "
            "WHERE experiment_id = ? ORDER BY id",
            (exp_id,),
        ).fetchall()
        return [
            TestRecord(i, t, json.loads(a), bool(r), s, json.loads(m) if m else {}, e, w, c, sd, cf)
            for i, t, a, r, s, m, e, w, c, sd, cf in rows
        ]
