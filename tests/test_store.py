"""The SQLite store on real files."""

from __future__ import annotations

import sqlite3

import pytest

from nasforge.store import Store, StoreError
from nasforge.trial import Trial, TrialStatus


def test_roundtrip_reports_state_and_tests(tmp_path):
    path = tmp_path / "sub" / "s.db"
    store = Store(path)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    exp = store.create_experiment("e", {"space_fingerprint": "abc", "seed": 1})
    t = Trial(id=0, arch={"x": 1}, status=TrialStatus.RUNNING, started=10.0, worker="w0")
    store.add_trial(exp, t, {"rng": 1})
    store.add_report(exp, 0, 0, {"acc": 0.5}, {"rng": 2})
    t.status, t.metrics, t.score, t.finished = TrialStatus.SUCCEEDED, {"acc": 0.9}, 0.9, 12.5
    store.finish_trial(exp, t, {"rng": 3})
    store.add_test(exp, 0, {"x": 1}, True, "SUCCEEDED", {"test_acc": 0.8}, weights="w.pt")
    store.close()

    again = Store(path, readonly=True)
    (rec,) = again.experiments()
    assert rec.name == "e" and rec.config["seed"] == 1 and rec.strategy_state == {"rng": 3}
    (loaded,) = again.trials(rec.id)
    assert loaded.metrics == {"acc": 0.9} and loaded.score == 0.9 and loaded.duration == 2.5
    assert loaded.reports == [(0, {"acc": 0.5})] and loaded.worker == "w0"
    (test,) = again.tests(rec.id)
    assert test.metrics == {"test_acc": 0.8} and test.retrain and test.weights == "w.pt"
    assert again.status_counts(rec.id) == {"SUCCEEDED": 1}
    with pytest.raises(StoreError, match="read-only"):
        again.create_experiment("f", {})


def test_requeue_unfinished(tmp_path):
    store = Store(tmp_path / "q.db")
    exp = store.create_experiment("e", {})
    for i, status in enumerate([TrialStatus.SUCCEEDED, TrialStatus.RUNNING, TrialStatus.FAILED, TrialStatus.RUNNING]):
        store.add_trial(exp, Trial(id=i, arch={"x": i}, status=TrialStatus.RUNNING, started=1.0))
        store.add_report(exp, i, 0, {"acc": 0.1})
        store.finish_trial(exp, Trial(id=i, arch={"x": i}, status=status, started=1.0, finished=2.0))
    requeued = store.requeue_unfinished(exp)
    assert [t.id for t in requeued] == [1, 3]
    assert all(t.status is TrialStatus.WAITING and t.reports == [] and t.started is None for t in requeued)
    assert [len(t.reports) for t in store.trials(exp)] == [1, 0, 1, 0]
    assert store.requeue_unfinished(exp)[0].id == 1  # still waiting until started again


def test_clear_errors_for_bad_files(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "missing.db", readonly=True)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="junk.db.* not an SQLite database"):
        Store(junk)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match="not a nasforge store"):
        Store(other, readonly=True)


def test_a_duplicate_name_is_a_conflict_not_a_raw_integrity_error(tmp_path):
    from nasforge.store import StoreConflictError

    store = Store(tmp_path / "d.db")
    store.create_experiment("e", {})
    with pytest.raises(StoreConflictError, match="'e' already exists"):
        Store(tmp_path / "d.db").create_experiment("e", {})


def test_a_schema_1_store_is_read_as_is_and_migrated_when_written(tmp_path):
    """Stores written before owners and strategy events existed still open and resume."""
    path = tmp_path / "old.db"
    store = Store(path)
    exp = store.create_experiment("e", {"seed": 1})
    store.add_trial(exp, Trial(id=0, arch={"x": 1}, status=TrialStatus.RUNNING), strategy_state={"rng": 7})
    store._db.execute("DROP TABLE owners")
    store._db.execute("DROP TABLE strategy_events")
    store._db.execute("ALTER TABLE experiments DROP COLUMN state_seq")
    store._db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    store.close()
    old = Store(path, readonly=True)
    (rec,) = old.experiments()
    assert rec.strategy_state == {"rng": 7} and rec.state_seq is None
    assert old.owner("e") is None and old.live_status("e") == "interrupted" and old.strategy_events(rec.id) == []
    old.close()
    new = Store(path)
    (rec,) = new.experiments()
    assert rec.strategy_state == {"rng": 7} and rec.state_seq is None
    assert new._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
    new.acquire(rec.id, "e").release()
    assert new.owner("e")["alive"] is False
