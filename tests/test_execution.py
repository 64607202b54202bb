"""Executors: inline and a real local process pool (no mocks)."""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path

import pytest

from nasforge.evaluate import ResultError, TrialContext, normalize_metrics
from nasforge.execution import InlineExecutor, LocalExecutor, make_executor


def _collect(ex, n, on_report=None, timeout=60.0):
    on_report = on_report or (lambda *a: False)
    done = []
    end = time.monotonic() + timeout
    while len(done) < n:
        assert time.monotonic() < end, f"only {len(done)} of {n} tasks finished"
        done += ex.poll(1.0, on_report)
    return {c.task_id: c for c in done}


def behave(kind, channel):
    """A runner whose behaviour is chosen by its argument."""
    if kind == "ok":
        return {"score": 1.0, "pid": os.getpid()}
    if kind == "raise":
        raise RuntimeError("boom from the evaluator")
    if kind == "sleep":
        time.sleep(30)
    if kind == "exit":
        os._exit(3)
    if kind == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(5)
    if kind == "report":
        for step in range(100):
            if channel.report(step, {"score": float(step)}):
                return {"stopped_at": step}
        return {"stopped_at": -1}
    raise AssertionError(kind)


def wait_for_partner(args, channel):
    """Start, then wait until the other task has started too: proves they run at the same time."""
    folder, me, other = args
    Path(folder, f"started-{me}").write_text(str(os.getpid()))
    end = time.monotonic() + 30
    while not Path(folder, f"started-{other}").exists():
        if time.monotonic() > end:
            return {"concurrent": 0.0, "pid": os.getpid()}
        time.sleep(0.01)
    return {"concurrent": 1.0, "pid": os.getpid()}


def test_normalize_metrics():
    assert normalize_metrics(0.5, "acc") == {"acc": 0.5}
    assert normalize_metrics({"acc": 1, "n": True}, "acc") == {"acc": 1.0, "n": 1.0}
    with pytest.raises(ResultError, match="lack the main metric 'acc'"):
        normalize_metrics({"loss": 1.0}, "acc")
    with pytest.raises(ResultError, match="non-finite.*acc=nan"):
        normalize_metrics(math.nan, "acc")
    with pytest.raises(ResultError, match="non-finite.*loss=inf"):
        normalize_metrics({"acc": 1.0, "loss": math.inf}, "acc")
    with pytest.raises(ResultError, match="returned None"):
        normalize_metrics(None, "acc")
    with pytest.raises(ResultError, match="metric 'acc' is a str"):
        normalize_metrics({"acc": "high"}, "acc")


def test_trial_context_report_and_stop():
    seen = []

    class Channel:
        def report(self, step, metrics):
            seen.append((step, metrics))
            return step >= 1

    ctx = TrialContext(3, {"a": 1}, Channel(), metric="acc")
    ctx.report(0, 0.5)
    assert seen == [(0, {"acc": 0.5})] and not ctx.should_stop
    from nasforge.execution import TrialStopped

    with pytest.raises(TrialStopped):
        ctx.report(1, {"acc": 0.6})
    assert ctx.should_stop
    with pytest.raises(TypeError, match="step must be an int"):
        ctx.report("epoch", 1.0)


def test_inline_executor_runs_and_records_errors():
    ex = InlineExecutor()
    ex.register("b", behave)
    ex.submit(0, "b", "ok")
    assert ex.idle_slots() == 0
    (c,) = ex.poll(None, lambda *a: False)
    assert c.status == "ok" and c.value["score"] == 1.0 and c.worker == "inline"
    ex.submit(1, "b", "raise")
    (c,) = ex.poll(None, lambda *a: False)
    assert c.status == "error" and c.error.startswith("RuntimeError: boom from the evaluator")
    assert "Traceback" in c.error
    ex.submit(2, "b", "report")
    (c,) = ex.poll(None, lambda task, step, m: step == 2)
    assert c.status == "ok" and c.value == {"stopped_at": 2}


def test_make_executor_errors():
    with pytest.raises(ValueError, match="unknown executor 'fork'.*'inline', 'local'"):
        make_executor("fork")
    with pytest.raises(ValueError, match="n_workers must be a positive int"):
        LocalExecutor(0)


def test_local_pool_runs_two_tasks_at_once(tmp_path):
    with LocalExecutor(2) as ex:
        ex.register("pair", wait_for_partner)
        ex.submit(0, "pair", (str(tmp_path), "a", "b"))
        ex.submit(1, "pair", (str(tmp_path), "b", "a"))
        done = _collect(ex, 2)
    assert done[0].value["concurrent"] == 1.0 and done[1].value["concurrent"] == 1.0
    assert done[0].value["pid"] != done[1].value["pid"]
    assert {done[0].worker, done[1].worker} == {"local-0", "local-1"}


def test_local_pool_isolates_every_failure_kind_and_replaces_workers():
    with LocalExecutor(2) as ex:
        ex.register("b", behave)
        ex.submit(0, "b", "ok")
        ex.submit(1, "b", "raise")
        first = _collect(ex, 2)
        pids_before = {first[0].value["pid"]}
        ex.submit(2, "b", "exit")
        ex.submit(3, "b", "segv")
        crashed = _collect(ex, 2)
        ex.submit(4, "b", "sleep", timeout=0.5)
        ex.submit(5, "b", "ok")
        last = _collect(ex, 2)
        # reports round-trip to the parent and the stop decision comes back
        ex.submit(6, "b", "report")
        stopped = _collect(ex, 1, on_report=lambda task, step, m: step == 3)
    assert first[0].status == "ok"
    assert first[1].status == "error" and "RuntimeError: boom from the evaluator" in first[1].error
    assert crashed[2].status == "error" and crashed[2].error == "worker exited with code 3 while running the trial"
    assert crashed[3].status == "error" and crashed[3].error == "worker died with signal 11 (SIGSEGV)"
    assert last[4].status == "error" and last[4].error == "timeout after 0.5 s"
    assert last[5].status == "ok" and last[5].value["pid"] not in pids_before | {None}
    assert stopped[6].value == {"stopped_at": 3}


def test_local_pool_ships_closures_with_cloudpickle():
    offset = 41

    def add(x, channel):  # a closure: not importable, travels by value
        return x + offset

    with LocalExecutor(1) as ex:
        ex.register("add", add)
        ex.submit(0, "add", 1)
        assert _collect(ex, 1)[0].value == 42


def test_inline_executor_sets_and_restores_torch_threads():
    import torch

    from nasforge.execution import InlineExecutor, available_cores
    from nasforge.execution.inline import default_inline_threads

    assert default_inline_threads() == max(1, available_cores() // 2)
    assert InlineExecutor().threads == default_inline_threads()
    before = torch.get_num_threads()
    seen = []
    for threads in (1, 3):
        ex = InlineExecutor(threads=threads)
        ex.register("t", lambda args, channel: seen.append(torch.get_num_threads()) or 0)
        ex.submit(0, "t", None)
        assert ex.poll(None, lambda *a: False)[0].status == "ok"
        assert torch.get_num_threads() == before  # the caller's setting is back
    assert seen == [1, 3]
    ex = InlineExecutor(threads=None)
    ex.register("t", lambda args, channel: seen.append(torch.get_num_threads()) or 0)
    ex.submit(0, "t", None)
    ex.poll(None, lambda *a: False)
    assert seen[-1] == before
    with pytest.raises(ValueError, match="threads must be a positive int, 'auto' or None"):
        InlineExecutor(threads=0)


PAYLOADS = [("a tuple", 1, 2.5), "text", None, {"nested": {"list": [1, "x", None]}}, 3, [b"bytes"]]


def _reports_payloads(payloads, channel):
    """A raw runner: reports arbitrary (picklable) payloads through the channel, stops when asked."""
    from nasforge.execution import TrialStopped

    for step, payload in enumerate(payloads):
        if channel.report(step, payload):
            raise TrialStopped()
    return payloads[-1]


@pytest.mark.parametrize("kind", ["inline", "local"])
@pytest.mark.parametrize("stop_at", [None, 0, 3])
def test_executors_pass_reports_through_as_opaque_payloads(kind, stop_at):
    """The executor is a generic pool: what a runner reports reaches on_report unchanged (no metric
    checks there; they live in the evaluator's TrialContext), and a stopped task ends with the last
    payload it reported."""
    ex = make_executor(kind, 1)
    ex.register("p", _reports_payloads)
    seen = []

    def on_report(task_id, step, payload):
        seen.append((task_id, step, payload))
        return stop_at is not None and step >= stop_at

    with ex:
        ex.submit(7, "p", PAYLOADS)
        (c,) = _collect(ex, 1, on_report).values()
    n = len(PAYLOADS) if stop_at is None else stop_at + 1
    assert seen == [(7, step, p) for step, p in enumerate(PAYLOADS[:n])]
    if stop_at is None:
        assert (c.status, c.value) == ("ok", PAYLOADS[-1])
    else:
        assert (c.status, c.value) == ("stopped", PAYLOADS[stop_at])
