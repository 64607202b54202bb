"""The search loop of :meth:`Experiment.run`: fill free slots, collect completions, record.

:class:`SearchLoop` holds one run's state (what is pending, running, counted, best so far) and
does one thing per method; :func:`running_executor` is the executor's start / stop, shared by
the search and the final test runs.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidArchError
from nasforge.execution import Completion, Executor, make_executor
from nasforge.experiment.journal import StrategyJournal
from nasforge.experiment.progress import Progress
from nasforge.space import Arch
from nasforge.store import Lease, Store
from nasforge.trial import Trial, TrialStatus, rank_trials

if TYPE_CHECKING:  # pragma: no cover
    from nasforge.experiment.core import Experiment

__all__ = ["SearchLoop", "running_executor"]

logger = logging.getLogger("nasforge.experiment")


@contextlib.contextmanager
def running_executor(exp: Experiment, key: str, runner: Any, concurrency: int) -> Iterator[Executor]:
    """The experiment's executor with ``runner`` registered under ``key``, started; shut down at
    the end unless the user passed an :class:`Executor` instance (it stays up)."""
    uses_model = bool(getattr(exp.evaluator, "uses_model", True))
    executor = make_executor(exp.executor, concurrency, preload=("torch",) if uses_model else ())
    executor.register(key, runner)
    try:
        executor.start()
        yield executor
    finally:
        if executor is not exp.executor:
            executor.shutdown()


class SearchLoop:
    """One :meth:`Experiment.run`: re-queued trials first, then the strategy's asks, until a budget
    is spent or the strategy is exhausted. The experiment is the only writer of the store."""

    def __init__(self, exp: Experiment, store: Store, exp_id: int, lease: Lease, journal: StrategyJournal,
                 trials: list[Trial], finished: list[Trial], requeued: list[Trial],
                 bar: Progress | None):
        self.exp = exp
        self.store = store
        self.exp_id = exp_id
        self.lease = lease
        self.journal = journal
        self.bar = bar
        self.n_rejected = sum(t.status is TrialStatus.REJECTED for t in trials)
        self.total = len(trials) - self.n_rejected  # rejects never count against max_trials
        self.next_id = max((t.id for t in trials), default=-1) + 1
        self.pending: deque[Trial] = deque(requeued)
        self.running: dict[int, Trial] = {}
        self.counts = {s.value: sum(t.status is s for t in finished) for s in TrialStatus}
        self.best: Trial | None = next(iter(rank_trials(finished, k=1)), None)
        self.stop_reason = ""
        self.start = time.monotonic()

    def run(self, executor: Executor) -> str:
        """Loop until done; returns why it stopped."""
        self.executor = executor
        while True:
            self.lease.heartbeat()
            self.fill()
            if not self.running:
                return self.stop_reason or "strategy exhausted"
            self.collect()

    def _out_of_time(self) -> bool:
        return self.exp.max_time is not None and time.monotonic() - self.start >= self.exp.max_time

    # -- 1. fill free slots: re-queued trials first, then new asks ----------------------------------------
    def fill(self) -> None:
        while not self.stop_reason and self.executor.idle_slots() > 0:
            if self._out_of_time():
                self.stop_reason = "max_time"
            elif self.pending:
                self._resubmit(self.pending.popleft())
            elif self.exp.max_trials is not None and self.total >= self.exp.max_trials:
                self.stop_reason = "max_trials"
            elif not self._ask():
                return

    def _submit(self, trial: Trial) -> float:
        return self.executor.submit(trial.id, "trial", (trial.id, trial.arch), self.exp.trial_timeout)

    def _resubmit(self, trial: Trial) -> None:
        trial.status = TrialStatus.RUNNING
        trial.reports = []
        trial.started = self._submit(trial)
        self.store.start_trial(self.exp_id, trial)
        self.running[trial.id] = trial

    def _ask(self) -> bool:
        """Ask the strategy for one arch and start (or reject) it; False when it proposed nothing."""
        arch = self.journal.ask()
        if arch is None:
            self.journal.record_empty_ask()
            if not self.running:
                self.stop_reason = "strategy exhausted"
            return False
        try:
            arch = self.exp.space.validate(arch)
        except InvalidArchError as exc:
            raise InvalidArchError(f"{type(self.exp.strategy).__name__} proposed an invalid arch: {exc}") from None
        trial_id, self.next_id = self.next_id, self.next_id + 1
        if self._reject(trial_id, arch):
            return True
        trial = Trial(id=trial_id, arch=arch, status=TrialStatus.RUNNING, started=time.time())
        self.total += 1
        self.store.add_trial(self.exp_id, trial, events=self.journal.ask_event(trial.id))
        self.journal.maybe_checkpoint()
        self._submit(trial)
        self.running[trial.id] = trial
        return True

    def _reject(self, trial_id: int, arch: Arch) -> bool:
        """Measure ``arch`` against the constraints; record and tell a REJECTED trial if over budget."""
        constraints, costs = self.exp.constraints, self.exp._costs
        if constraints is None or costs is None:
            return False
        try:
            measured = costs.measure(arch)
        except Exception as exc:  # noqa: BLE001 - a network that cannot be measured fails in its trial instead
            logger.warning("could not measure %s for the constraints (%r); the arch is trained unchecked", arch, exc)
            return False
        over = constraints.violations(measured)
        if not over:
            return False
        now = time.time()
        reason = "; ".join(f"{k} {v:g} > limit {lim:g}" for k, (v, lim) in over.items())
        trial = Trial(id=trial_id, arch=arch, status=TrialStatus.REJECTED, metrics=measured,
                      error=f"rejected by constraints: {reason}", started=now, finished=now)
        self.store.add_trial(self.exp_id, trial, events=self.journal.ask_event(trial.id))
        self._tell_and_record(trial)
        logger.info("trial %d rejected before training: %s", trial_id, reason)
        self.n_rejected += 1
        self.counts[TrialStatus.REJECTED.value] += 1
        if self.n_rejected >= constraints.max_rejected:
            self.stop_reason = "max_rejected"
        return True

    # -- 2. collect completions -----------------------------------------------------------------------
    def collect(self) -> None:
        wait = 0.25 if self.bar is not None else 1.0
        if self.exp.max_time is not None and not self.stop_reason:
            wait = max(0.0, min(wait, self.exp.max_time - (time.monotonic() - self.start)))
        for completion in self.executor.poll(wait, self.on_report):
            trial = self.running.pop(completion.task_id, None)
            if trial is None:  # pragma: no cover
                continue
            self.finish(trial, completion)
        if self.bar is not None:
            c, best = self.counts, self.best
            done = c["SUCCEEDED"] + c["FAILED"] + c["STOPPED"]
            self.bar.update(done, len(self.running), c["FAILED"], best.metrics.get(self.exp.metric) if best else None,
                            best.id if best else None, self.total)

    def on_report(self, task_id: int, step: int, metrics: dict[str, float]) -> bool:
        trial = self.running.get(task_id)
        if trial is None:  # pragma: no cover - a late report of a killed trial
            return True
        trial.reports.append((step, metrics))
        stop = False
        events: list = []
        score = self.exp._score(metrics)
        if score is not None:
            stop, events = self.journal.on_report(trial, step, score, metrics)
        self.store.add_report(self.exp_id, task_id, step, metrics, events=events)
        self.journal.maybe_checkpoint()
        return stop

    # -- 3. record --------------------------------------------------------------------------------------
    def finish(self, trial: Trial, c: Completion) -> None:
        exp = self.exp
        trial.started = c.started if c.started is not None else trial.started
        trial.finished = c.finished
        trial.worker = c.worker
        if c.status == "ok":
            trial.status = TrialStatus.SUCCEEDED
            trial.metrics = dict(c.value)
            if exp._costs is not None:  # measured costs complete what the evaluator returned
                try:
                    trial.metrics = {**exp._costs.measure(trial.arch), **trial.metrics}
                except Exception as exc:  # noqa: BLE001
                    logger.warning("could not measure the costs of trial %d: %r", trial.id, exc)
            trial.score = exp._score(trial.metrics)
            exp._with_objectives(trial)
            if getattr(c.value, "weights", None) is not None:
                exp._keep_weights(trial, c.value.weights)
        elif c.status == "stopped":
            trial.status = TrialStatus.STOPPED
            last = c.value if c.value is not None else (trial.reports[-1][1] if trial.reports else {})
            trial.metrics = dict(last)
            trial.score = exp._score(trial.metrics)
        else:
            trial.status = TrialStatus.FAILED
            trial.metrics = {}
            trial.score = None
            trial.error = c.error or "unknown error"
            logger.warning("trial %d failed: %s", trial.id, trial.error.splitlines()[0] if trial.error else "")
        self._tell_and_record(trial)
        self.counts[trial.status.value] += 1
        if trial.status is TrialStatus.SUCCEEDED and trial.score is not None and (
            self.best is None or self.best.score is None or trial.score > self.best.score
        ):
            self.best = trial

    def _tell_and_record(self, trial: Trial) -> None:
        events = self.journal.tell_event(trial)
        try:
            self.journal.tell(trial)
        finally:  # the result is recorded even if the strategy fails on it
            self.store.finish_trial(self.exp_id, trial, events=events)
        self.journal.maybe_checkpoint()
