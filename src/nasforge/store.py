"""The durable record of experiments: one SQLite file (standard library ``sqlite3``, WAL mode).

Tables:

* ``experiments`` — name, config JSON (space fingerprint and description, metric, mode,
  strategy, evaluator…), the strategy's state JSON, status, times;
* ``trials`` — per experiment and trial id: arch JSON, status, metrics JSON, score, start / end
  times, worker, error text, attempts;
* ``reports`` — intermediate ``(trial, step, metrics)`` values;
* ``tests`` — final test-set evaluations of chosen archs;
* ``owners`` — who runs (or last ran) each experiment: pid, host, start and heartbeat times;
* ``strategy_events`` — the strategy's asks, tells and reports since its last state checkpoint
  (see :mod:`nasforge.experiment.journal`): the state is not rewritten after every trial.

One process at a time may run an experiment: it holds an exclusive lock on a small file beside
the store (``<store>-owner-<id>.lock``, ``flock``; the kernel releases it when the process dies,
so a dead owner's experiment is simply taken over). Readers need no lock: a read-only store
(``Store(path, readonly=True)``) opens files on read-only media and never creates a file.

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

import errno
import functools
import json
import logging
import os
import socket
import sqlite3
import stat
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from typing import Any

from nasforge.errors import NasforgeError
from nasforge.trial import ExperimentStatus, Trial, TrialStatus

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: owner rows and heartbeats only, no lock files
    fcntl = None  # type: ignore[assignment]

__all__ = ["ExperimentLockedError", "ExperimentRecord", "Lease", "Store", "StoreConflictError", "StoreError", "TestRecord"]

logger = logging.getLogger("nasforge.store")

SCHEMA_VERSION = 2
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Without a usable lock file, an owner whose heartbeat is older than this is taken for dead.
HEARTBEAT_TIMEOUT = 60.0
HEARTBEAT_EVERY = 5.0
#: ``flock`` errors of a file system without locks (heartbeats decide there)
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL)

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
CREATE TABLE IF NOT EXISTS owners (
    experiment_id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS strategy_events (
    experiment_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    trial_id INTEGER,
    payload TEXT,
    PRIMARY KEY (experiment_id, seq)
);
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
#: (``state_seq``: a schema-1 store's strategy checkpoints gain a sequence number)
_ADDED_COLUMNS = (("experiments", "state_seq", "INTEGER"), ("tests", "seed", "INTEGER"), ("tests", "config", "TEXT"))


class StoreError(NasforgeError, ValueError):
    """The store file or a record in it cannot be used as asked."""


class StoreConflictError(StoreError):
    """An experiment name already exists in the store with an incompatible config."""


class ExperimentLockedError(StoreError):
    """Another live process runs this experiment (one owner per experiment)."""


@dataclass
class ExperimentRecord:
    id: int
    name: str
    config: dict[str, Any]
    strategy_state: dict[str, Any] | None
    status: str
    created: float
    updated: float
    #: the strategy state is a checkpoint that includes the strategy events up to this sequence
    #: number (None: a state from before strategy events existed; it includes everything)
    state_seq: int | None = None


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


def _rowid(cursor: sqlite3.Cursor) -> int:
    if cursor.lastrowid is None:  # pragma: no cover - an INSERT always sets it
        raise StoreError("SQLite returned no row id for an insert")
    return cursor.lastrowid


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _dumps_arch(arch: dict[str, Any]) -> str:
    """An arch as JSON in its own (the space's definition) order: canonical archs are stored as they are."""
    return json.dumps(arch)


def _inspect(path: str) -> bytes:
    """Check that ``path`` can be a store file before SQLite touches it; returns its first 100
    bytes (its SQLite header) when it has content, b"" when it is missing or empty (a new store)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise StoreError(f"cannot use {path!r} as a nasforge store: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise StoreError(f"{path!r} is a directory; give the path of the store file inside it (e.g. {os.path.join(path, 'search.db')!r})")
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{path!r} is not a regular file (a pipe, socket or device); a nasforge store is an SQLite file")
    if st.st_size == 0:
        return b""
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as exc:
        raise StoreError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    if not head.startswith(_SQLITE_MAGIC):
        raise StoreError(f"{path!r} is not an SQLite database, so not a nasforge store (a nasforge store is an SQLite file)")
    return head


def _guarded(method: Any) -> Any:
    """Turn SQLite's errors (damaged pages, a file that is not a store…) into a StoreError naming the file."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            raise
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(f"{self.path!r} holds a damaged record ({exc}); the store was altered or is damaged") from exc

    return wrapper


def _host() -> str:
    return socket.gethostname()


class Lease:
    """The right to run one experiment of a store: an exclusive ``flock`` on a file beside it
    (released by the kernel when the process dies) plus an owner row (pid, host, heartbeat) that
    readers can show. Obtained with :meth:`Store.acquire`; ``release()`` gives it up."""

    def __init__(self, store: Store, exp_id: int, fd: int | None):
        self.store = store
        self.exp_id = exp_id
        self._fd = fd
        self._beat = time.monotonic()
        self.released = False

    def heartbeat(self, force: bool = False) -> None:
        """Refresh the owner row's heartbeat (at most every few seconds unless ``force``)."""
        if self.released or (not force and time.monotonic() - self._beat < HEARTBEAT_EVERY):
            return
        self._beat = time.monotonic()
        self.store._heartbeat(self.exp_id)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        self.store._leases.pop(self.exp_id, None)
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class Store:
    """An SQLite store of experiments, trials, reports and test results (see module docs).

    ``path`` is a file path (parent folders are created) or ``":memory:"`` for a store that
    lives as long as the object. ``readonly=True`` opens an existing file without writing
    anything (no lock, no ``-wal``/``-shm`` file is created; read-only media work).

    A file that is not a nasforge store — a directory, a pipe, a damaged file, the SQLite
    database of another application — raises :class:`StoreError` naming it, and is left untouched.
    """

    def __init__(self, path: str | os.PathLike = ":memory:", readonly: bool = False):
        self.path = os.fspath(path)
        self.readonly = readonly
        self._leases: dict[int, Lease] = {}
        memory = self.path == ":memory:"
        if readonly:
            if memory or not os.path.exists(self.path):
                raise StoreError(f"store file {self.path!r} does not exist")
            head = _inspect(self.path)
            if not head:
                raise StoreError(f"{self.path!r} is empty: not a nasforge store")
            self._db = self._connect_readonly(head)
            if not self._has_schema():
                raise StoreError(f"{self.path!r} is an SQLite file but not a nasforge store (no experiments table)")
            self._check_version()
            return
        existing = b""  # the header of an existing store file
        if not memory:
            existing = _inspect(self.path)
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
            if existing:
                self._refuse_foreign(existing)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            if existing:  # damaged pages: refuse before writing
                verdict = self._db.execute("PRAGMA quick_check(1)").fetchone()
                if verdict is None or verdict[0] != "ok":
                    raise StoreError(
                        f"{self.path!r} is damaged ({verdict[0] if verdict else 'no verdict'}); restore a copy "
                        f"or start a new store (nothing was written to it)"
                    )
            if not memory:
                self._db.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: every commit survives a killed process (not necessarily a power cut).
            self._db.execute("PRAGMA synchronous = NORMAL")
            if existing:
                self._check_version()
            with self._tx():
                for stmt in filter(str.strip, _SCHEMA.split(";")):
                    self._db.execute(stmt)
                self._add_missing_columns()
                self._db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: sqlite3.DatabaseError) -> StoreError:
        text = str(exc)
        if "readonly" in text or "read-only" in text:
            return StoreError(f"{self.path!r} is open read-only ({text})")
        if isinstance(exc, sqlite3.IntegrityError):
            return StoreError(f"{self.path!r}: {text} (another process wrote the same record; is a second process running this experiment?)")
        if "locked" in text or "busy" in text:
            return StoreError(f"{self.path!r} is locked by another process for too long ({text})")
        return StoreError(f"cannot use {self.path!r} as a nasforge store: {text} (is the file damaged? restore a copy)")

    def _connect_readonly(self, head: bytes) -> sqlite3.Connection:
        """A connection that writes nothing: ``mode=ro`` when the store's ``-wal`` exists (a live
        or killed writer; its files are used as they are) or the file is not in WAL mode;
        ``immutable=1`` for a WAL-mode file without ``-wal`` (nobody writes it, and SQLite would
        otherwise create the ``-wal``/``-shm`` files)."""
        from urllib.parse import quote

        uri = "file:" + quote(os.path.abspath(self.path))
        try:
            has_wal = os.path.exists(self.path + "-wal")
            immutable = not has_wal and head[18:20] == b"\x02\x02"  # bytes 18-19 are 2: WAL mode
            db = sqlite3.connect(uri + ("?immutable=1" if immutable else "?mode=ro"), uri=True, isolation_level=None, timeout=30)
            try:
                db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            except sqlite3.OperationalError:
                if immutable:
                    raise
                db.close()  # e.g. a -wal without its -shm on read-only media: read the file as it is
                db = sqlite3.connect(uri + "?immutable=1", uri=True, isolation_level=None, timeout=30)
            db.execute("PRAGMA query_only = ON")
            return db
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        except OSError as exc:
            raise StoreError(f"cannot read {self.path!r}: {exc.strerror or exc}") from None

    def _refuse_foreign(self, head: bytes) -> None:
        """Refuse (before any write) an SQLite file that holds tables but is no nasforge store."""
        db = self._connect_readonly(head)  # writes nothing
        try:
            try:
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                version = None
                if "meta" in tables:
                    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                    version = row[0] if row else None
            except sqlite3.DatabaseError as exc:
                raise self._error(exc) from exc
        finally:
            db.close()
        if tables and (version is None or "experiments" not in tables):
            shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
            raise StoreError(
                f"{self.path!r} is the SQLite database of another application (tables: {shown}), not a "
                f"nasforge store; it was left untouched — give the experiment a new file"
            )

    def _check_version(self) -> None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:
            return  # no meta table: checked by the caller
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path!r} was written by a newer nasforge (store schema {row[0]}, this version reads up to "
                f"{SCHEMA_VERSION}); upgrade nasforge"
            )

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
        for lease in list(self._leases.values()):
            lease.release()
        if not self.readonly and self.path != ":memory:":
            # a closed store in rollback mode: readers need no -wal/-shm files at all
            with suppress(sqlite3.DatabaseError):  # another connection open: stays in WAL mode
                self._db.execute("PRAGMA journal_mode = DELETE")
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    # -- ownership ---------------------------------------------------------------------------------
    def _lock_path(self, exp_id: int) -> str:
        return f"{self.path}-owner-{exp_id}.lock"

    def _lock_state(self, exp_id: int) -> bool | None:
        """True: a live process holds the experiment's lock; False: nobody does; None: unknown."""
        if exp_id in self._leases:
            return True
        if self.path == ":memory:":
            return False
        if fcntl is None:  # pragma: no cover - Windows
            return None
        try:
            fd = os.open(self._lock_path(exp_id), os.O_RDONLY)
        except FileNotFoundError:
            return False
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError as exc:
            return None if exc.errno in _NO_LOCKS else True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def _owner_row(self, exp_id: int) -> tuple | None:
        try:
            return self._db.execute(
                "SELECT pid, host, started_at, heartbeat_at FROM owners WHERE experiment_id = ?", (exp_id,)
            ).fetchone()
        except sqlite3.OperationalError:  # a store from before owners were recorded
            return None

    def _require(self, name: str) -> ExperimentRecord:
        record = self.experiment(name)
        if record is None:
            names = ", ".join(repr(r.name) for r in self.experiments()) or "none"
            raise StoreError(f"no experiment named {name!r} in {self.path!r}; it holds: {names}")
        return record

    def owner(self, name: str) -> dict[str, Any] | None:
        """Who runs (or last ran) experiment ``name``: ``{"pid", "host", "started_at",
        "heartbeat_at", "alive"}`` (times in unix seconds), or None if it never ran.

        ``alive`` is True while that process holds the experiment's lock (or, where the lock
        file cannot be checked, while its heartbeat is recent). Works on a read-only store.
        """
        record = self._require(name)
        row = self._owner_row(record.id)
        if row is None:
            return None
        pid, host, started_at, heartbeat_at = row
        held = self._lock_state(record.id)
        alive = held if held is not None else (time.time() - heartbeat_at) < HEARTBEAT_TIMEOUT
        return {"pid": pid, "host": host, "started_at": started_at, "heartbeat_at": heartbeat_at, "alive": bool(alive)}

    def live_status(self, name: str) -> str:
        """``"running"`` (a live process owns it), ``"done"`` (its last run ended normally) or
        ``"interrupted"`` (nobody runs it and it did not finish: killed, stopped, crashed)."""
        record = self._require(name)
        owner = self.owner(name)
        if owner is not None and owner["alive"]:
            return ExperimentStatus.RUNNING.value
        return (ExperimentStatus.DONE if record.status == ExperimentStatus.DONE else ExperimentStatus.INTERRUPTED).value

    def acquire(self, exp_id: int, name: str | None = None, wait: float = 2.0) -> Lease:
        """Become the only process that runs experiment ``exp_id``; raises
        :class:`ExperimentLockedError` naming the live owner. A dead owner's lease is taken over."""
        if self.readonly:
            raise StoreError(f"{self.path!r} is open read-only; it cannot run an experiment")
        label = repr(name) if name is not None else f"#{exp_id}"
        if exp_id in self._leases:
            raise self._locked(exp_id, label)
        fd = None
        if self.path != ":memory:" and fcntl is not None:
            fd = os.open(self._lock_path(exp_id), os.O_RDWR | os.O_CREAT, 0o666)
            end = time.monotonic() + wait  # a reader may hold a shared lock for a moment
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= end:
                        os.close(fd)
                        raise self._locked(exp_id, label) from None
                    time.sleep(0.05)
                except OSError as exc:  # no locks on this file system: heartbeats decide
                    if exc.errno not in _NO_LOCKS:
                        os.close(fd)
                        raise
                    os.close(fd)
                    fd = None
                    row = self._owner_row(exp_id)
                    if row is not None and time.time() - row[3] < HEARTBEAT_TIMEOUT and row[:2] != (os.getpid(), _host()):
                        raise self._locked(exp_id, label) from None
                    break
        lease = Lease(self, exp_id, fd)
        try:
            previous = self._owner_row(exp_id)
            t = time.time()
            with self._tx() as db:
                db.execute(
                    "INSERT OR REPLACE INTO owners (experiment_id, pid, host, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)",
                    (exp_id, os.getpid(), _host(), t, t),
                )
        except BaseException:
            lease.release()
            raise
        if previous is not None:
            logger.info("experiment %s: taking over from pid %s on %s (no longer running)", label, previous[0], previous[1])
        self._leases[exp_id] = lease
        return lease

    def _locked(self, exp_id: int, label: str) -> ExperimentLockedError:
        row = self._owner_row(exp_id)
        if row is None:
            who = "another process"
        else:
            pid, host, started_at, heartbeat_at = row
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started_at))
            who = f"pid {pid} on host {host!r} (since {when}, last heartbeat {max(0.0, time.time() - heartbeat_at):.0f} s ago)"
            if pid == os.getpid() and host == _host():
                who += " — this very process (another Experiment object or run() is using it)"
        return ExperimentLockedError(
            f"experiment {label} in {self.path!r} is being run by {who}; only one process may run an "
            f"experiment at a time: wait for it to finish or stop it, or use another name or store "
            f"(reading it — nasforge show, Experiment.trials() — needs no lock)"
        )

    def _heartbeat(self, exp_id: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE owners SET heartbeat_at = ? WHERE experiment_id = ?", (time.time(), exp_id))

    # -- experiments ---------------------------------------------------------------------------
    def _record(self, row: tuple) -> ExperimentRecord:
        id_, name, created, updated, config, state, status, seq = row
        return ExperimentRecord(
            id_, name, json.loads(config), json.loads(state) if state else None, status, created, updated, seq
        )

    @property
    def _EXP_COLS(self) -> str:
        cols = getattr(self, "_exp_cols", None)
        if cols is None:
            seq = "state_seq" if "state_seq" in self._columns("experiments") else "NULL"  # a read-only schema-1 store
            cols = self._exp_cols = f"id, name, created, updated, config, strategy_state, status, {seq}"
        return cols

    def experiments(self) -> list[ExperimentRecord]:
        rows = self._db.execute(f"SELECT {self._EXP_COLS} FROM experiments ORDER BY id").fetchall()
        return [self._record(r) for r in rows]

    def experiment(self, name: str) -> ExperimentRecord | None:
        row = self._db.execute(f"SELECT {self._EXP_COLS} FROM experiments WHERE name = ?", (name,)).fetchone()
        return self._record(row) if row else None

    def create_experiment(self, name: str, config: dict[str, Any]) -> int:
        t = time.time()
        try:
            with self._tx() as db:
                cur = db.execute(
                    "INSERT INTO experiments (name, created, updated, config, status) VALUES (?, ?, ?, ?, ?)",
                    (name, t, t, _dumps(config), ExperimentStatus.CREATED.value),
                )
                return _rowid(cur)
        except sqlite3.IntegrityError:
            raise StoreConflictError(
                f"an experiment named {name!r} already exists in {self.path!r} (created by another process just now?)"
            ) from None

    def update_experiment(self, exp_id: int, *, config: dict[str, Any] | None = None,
                          status: ExperimentStatus | str | None = None) -> None:
        with self._tx() as db:
            if config is not None:
                db.execute("UPDATE experiments SET config = ? WHERE id = ?", (_dumps(config), exp_id))
            if status is not None:
                db.execute("UPDATE experiments SET status = ? WHERE id = ?", (status.value if isinstance(status, ExperimentStatus) else status, exp_id))
            db.execute("UPDATE experiments SET updated = ? WHERE id = ?", (time.time(), exp_id))

    def _set_state(self, db: sqlite3.Connection, exp_id: int, state: dict[str, Any] | str | None, seq: int | None = None) -> None:
        """Write a strategy state checkpoint (a dict, or its JSON text) that includes the strategy
        events up to ``seq`` (None: every event recorded so far)."""
        if state is not None:
            if seq is None:
                row = db.execute("SELECT MAX(seq) FROM strategy_events WHERE experiment_id = ?", (exp_id,)).fetchone()
                seq = row[0] if row and row[0] is not None else 0
            db.execute(
                "UPDATE experiments SET strategy_state = ?, state_seq = ?, updated = ? WHERE id = ?",
                (state if isinstance(state, str) else _dumps(state), seq, time.time(), exp_id),
            )

    def _add_events(self, db: sqlite3.Connection, exp_id: int, events: Sequence[tuple[int, str, int | None, Any]]) -> None:
        if events:
            db.executemany(
                "INSERT INTO strategy_events (experiment_id, seq, kind, trial_id, payload) VALUES (?, ?, ?, ?, ?)",
                [(exp_id, seq, kind, tid, _dumps(payload)) for seq, kind, tid, payload in events],
            )

    def record_strategy(
        self,
        exp_id: int,
        events: Sequence[tuple[int, str, int | None, Any]] = (),
        state: dict[str, Any] | str | None = None,
        state_seq: int | None = None,
    ) -> None:
        """Append strategy events ``(seq, kind, trial_id, payload)`` and/or write a state checkpoint
        that includes the events up to ``state_seq``; older events are then dropped."""
        with self._tx() as db:
            self._add_events(db, exp_id, events)
            if state is not None:
                self._set_state(db, exp_id, state, state_seq)
                if state_seq is not None:
                    db.execute("DELETE FROM strategy_events WHERE experiment_id = ? AND seq <= ?", (exp_id, state_seq))

    def strategy_events(self, exp_id: int, after: int | None = None) -> list[tuple[int, str, int | None, Any]]:
        """The strategy events of an experiment with a sequence number above ``after``, in order."""
        try:
            rows = self._db.execute(
                "SELECT seq, kind, trial_id, payload FROM strategy_events WHERE experiment_id = ? AND seq > ? ORDER BY seq",
                (exp_id, -1 if after is None else after),
            ).fetchall()
        except sqlite3.OperationalError:  # a read-only store from before strategy events
            return []
        return [(seq, kind, tid, json.loads(payload) if payload is not None else None) for seq, kind, tid, payload in rows]

    # -- trials ------------------------------------------------------------------------------------
    def add_trial(
        self, exp_id: int, trial: Trial, strategy_state: dict[str, Any] | None = None, events: Sequence[tuple] = ()
    ) -> None:
        """Insert a new trial (normally RUNNING) together with the strategy's record of its ``ask``
        (``events``, and/or a full ``strategy_state``)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO trials (experiment_id, id, arch, status, started, worker, attempts) VALUES (?, ?, ?, ?, ?, ?, 1)",
                (exp_id, trial.id, _dumps_arch(trial.arch), trial.status.value, trial.started, trial.worker),
            )
            self._add_events(db, exp_id, events)
            self._set_state(db, exp_id, strategy_state)

    def start_trial(self, exp_id: int, trial: Trial) -> None:
        """Mark a (re-queued) trial as running again."""
        with self._tx() as db:
            db.execute(
                "UPDATE trials SET status = ?, started = ?, worker = ?, attempts = attempts + 1 WHERE experiment_id = ? AND id = ?",
                (trial.status.value, trial.started, trial.worker, exp_id, trial.id),
            )

    def finish_trial(
        self, exp_id: int, trial: Trial, strategy_state: dict[str, Any] | None = None, events: Sequence[tuple] = ()
    ) -> None:
        """Record a finished trial and the strategy's record of its ``tell``, atomically."""
        with self._tx() as db:
            self._add_events(db, exp_id, events)
            db.execute(
                "UPDATE trials SET status = ?, metrics = ?, score = ?, started = ?, finished = ?, worker = ?, error = ? "
                "WHERE experiment_id = ? AND id = ?",
                (trial.status.value, _dumps(trial.metrics), trial.score, trial.started,
                 trial.finished, trial.worker, trial.error, exp_id, trial.id),
            )
            self._set_state(db, exp_id, strategy_state)

    def add_report(
        self,
        exp_id: int,
        trial_id: int,
        step: int,
        metrics: dict[str, float],
        strategy_state: dict[str, Any] | None = None,
        events: Sequence[tuple] = (),
    ) -> None:
        with self._tx() as db:
            self._add_events(db, exp_id, events)
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
                    "UPDATE trials SET status = ?, started = NULL, worker = NULL WHERE experiment_id = ? AND id = ?",
                    (TrialStatus.WAITING.value, exp_id, tid),
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
            try:
                status = TrialStatus(status)
            except ValueError:
                raise StoreError(
                    f"{self.path!r}: trial {tid} has the unknown status {status!r} (valid: "
                    f"{', '.join(s.value for s in TrialStatus)}); the store was altered or is damaged"
                ) from None
            out.append(Trial(id=tid, arch=json.loads(arch), status=status,
                             metrics=json.loads(metrics) if metrics else {}, score=score,
                             reports=reports.get(tid, []), error=error, started=started,
                             finished=finished, worker=worker))
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
                (exp_id, trial_id, _dumps_arch(arch), int(retrain), status, _dumps(metrics or {}), error, weights, time.time(),
                 seed, config),
            )
            return _rowid(cur)

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


for _name, _member in list(vars(Store).items()):
    if callable(_member) and not _name.startswith("_") and _name != "close":
        setattr(Store, _name, _guarded(_member))
del _name, _member
