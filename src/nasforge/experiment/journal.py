"""The strategy's durable state: a checkpoint now and then, and a journal of what happened since.

Writing the whole ``state_dict()`` after every ask, tell and report costs time proportional to
the history (it grows with every trial). Instead the experiment records each strategy call as a
small *event* row, in the same transaction as the trial change it belongs to:

* ``ask``    — ``strategy.ask()`` was called; ``trial_id`` is the trial it created (None when
  the strategy had nothing to propose);
* ``tell``   — ``strategy.tell(trial)``; the trial itself is in the trials table;
* ``report`` — ``strategy.on_report(trial, step, score)``; the payload holds step and score.

Strategies are told read-only copies of the trials (:meth:`~nasforge.trial.Trial.frozen`): a
strategy cannot change what the store holds.

Every so often (when the events since the last checkpoint reach a quarter of all events, or
took a second of strategy time) the full state is written once and the older events are
dropped, so the cost per trial stays flat and a resume replays a bounded number of events.

On resume the strategy is set up with the experiment's seed, loads the checkpoint and replays
the events in order: asks are asked again (a strategy is deterministic given its seed and
history, so it proposes the recorded arch again — checked), tells and reports are told again.
The strategy then is exactly where it was, and proposes the same future archs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from nasforge.space import Arch, Space
from nasforge.store import Store
from nasforge.trial import Trial, TrialStatus

__all__ = ["StrategyJournal"]

logger = logging.getLogger("nasforge.experiment")

#: at least this many events between two checkpoints
MIN_EVENTS = 32
#: ... and at least this fraction of all events so far (amortised cost per trial stays flat)
GROWTH = 0.25
#: ... unless the strategy itself spent this long since the checkpoint (bounds replay time)
REPLAY_SECONDS = 1.0

Event = tuple[int, str, "int | None", Any]


class StrategyJournal:
    """Runs a strategy's ask/tell/on_report for the experiment and keeps it resumable.

    Each call returns the event(s) to store with the matching trial change; the caller then
    calls :meth:`maybe_checkpoint` once those are committed.
    """

    def __init__(self, strategy: Any, store: Store, exp_id: int, space: Space):
        self.strategy = strategy
        self.store = store
        self.exp_id = exp_id
        self.space = space
        self.seq = 0  # the last event's sequence number
        self.checkpoint_seq = 0
        self._since = 0  # events since the checkpoint
        self._busy = 0.0  # strategy seconds since the checkpoint
        self._cost = 0.0  # seconds the last checkpoint took
        self._state_ok = True

    # -- resume ---------------------------------------------------------------------------------
    def restore(self, state: dict[str, Any] | None, state_seq: int | None, seed: int, trials: dict[int, Trial],
                finished: list[Trial]) -> int:
        """Set the strategy up and bring it to its last recorded state; returns the number of
        events replayed."""
        name = type(self.strategy).__name__
        self.strategy.setup(self.space, seed)
        events = self.store.strategy_events(self.exp_id, after=None)
        if state is not None:
            try:
                self.strategy.load_state_dict(state)
            except Exception as exc:  # noqa: BLE001
                logger.warning("could not restore the %s state (%r); replaying %d finished trials", name, exc, len(finished))
                self.strategy.setup(self.space, seed)
                for trial in finished:
                    self.strategy.tell(trial.frozen())
                self.seq = self.checkpoint_seq = max([state_seq or 0] + [e[0] for e in events])
                return 0
            base = state_seq if state_seq is not None else max((e[0] for e in events), default=0)
            events = [e for e in events if e[0] > base]
            self.seq = self.checkpoint_seq = base
        mismatch = False
        reports: dict[int, list[tuple[int, dict[str, float]]]] = {}
        for seq, kind, tid, payload in events:
            self.seq = seq
            try:
                if kind == "ask":
                    arch = self.strategy.ask()
                    expected = trials[tid].arch if tid is not None and tid in trials else None
                    if self._canonical(arch) != expected and not mismatch:
                        mismatch = True
                        logger.warning(
                            "%s did not propose its recorded archs again while its state was rebuilt (is it "
                            "deterministic given its seed?); it continues from where the replay left it", name
                        )
                elif kind == "tell" and tid in trials:
                    self.strategy.tell(trials[tid].frozen())
                elif kind == "report" and tid in trials:
                    base_trial = trials[tid]
                    metrics = payload.get("metrics", {})
                    reports.setdefault(tid, []).append((payload["step"], metrics))
                    running = Trial(id=tid, arch=base_trial.arch, status=TrialStatus.RUNNING, reports=list(reports[tid]),
                                    started=base_trial.started)
                    self.strategy.on_report(running.frozen(), payload["step"], payload["score"])
            except Exception as exc:  # noqa: BLE001 - the same failure happened in the original run
                logger.warning("replaying %s event %d of %s raised %r; continuing", kind, seq, name, exc)
        self._since = len(events)
        if events:
            logger.info("rebuilt the %s state: checkpoint plus %d recorded events", name, len(events))
        return len(events)

    def _canonical(self, arch: Arch | None) -> dict[str, Any] | None:
        if arch is None:
            return None
        try:
            return self.space.validate(arch)
        except Exception:  # noqa: BLE001
            return dict(arch)

    # -- calls --------------------------------------------------------------------------------------
    def _timed(self, fn: Callable[..., Any], *args: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self._busy += time.perf_counter() - t

    def _event(self, kind: str, trial_id: int | None, payload: Any = None) -> list[Event]:
        self.seq += 1
        self._since += 1
        return [(self.seq, kind, trial_id, payload)]

    def ask(self) -> Arch | None:
        """``strategy.ask()``. The caller records :meth:`ask_event` with the new trial (or
        :meth:`record_empty_ask` when it returned None)."""
        return self._timed(self.strategy.ask)

    def ask_event(self, trial_id: int) -> list[Event]:
        return self._event("ask", trial_id)

    def record_empty_ask(self) -> None:
        """An ask that proposed nothing may still have changed the strategy: record it."""
        self.store.record_strategy(self.exp_id, self._event("ask", None))
        self.maybe_checkpoint()

    def tell(self, trial: Trial) -> None:
        """``strategy.tell`` of a read-only copy of ``trial``; the caller stores :meth:`tell_event`
        with the finished trial (in a ``finally``: the result is kept even if the strategy fails on it)."""
        self._timed(self.strategy.tell, trial.frozen())

    def tell_event(self, trial: Trial) -> list[Event]:
        return self._event("tell", trial.id)

    def on_report(self, trial: Trial, step: int, score: float, metrics: dict[str, float]) -> tuple[bool, list[Event]]:
        stop = bool(self._timed(self.strategy.on_report, trial.frozen(), step, score))
        return stop, self._event("report", trial.id, {"step": step, "score": score, "metrics": metrics})

    # -- checkpoints ----------------------------------------------------------------------------------
    def maybe_checkpoint(self) -> None:
        if not self._state_ok or self._since == 0:
            return
        due = self._since >= max(MIN_EVENTS, int(GROWTH * self.checkpoint_seq))
        if due or self._busy >= max(REPLAY_SECONDS, 10 * self._cost):
            self.checkpoint()

    def checkpoint(self) -> None:
        """Write the full strategy state (it includes every event so far) and drop the events."""
        if not self._state_ok or (self._since == 0 and self.checkpoint_seq == self.seq):
            return
        t = time.perf_counter()
        try:
            # Keys keep their order: a strategy may rely on the insertion order of its dicts.
            text = json.dumps(self.strategy.state_dict())
        except Exception as exc:  # noqa: BLE001 - resume then replays every recorded event instead
            self._state_ok = False
            logger.warning(
                "%s.state_dict() failed (%r); its state is not saved and a resume will replay its recorded events",
                type(self.strategy).__name__, exc,
            )
            return
        self.store.record_strategy(self.exp_id, state=text, state_seq=self.seq)
        self.checkpoint_seq = self.seq
        self._since = 0
        self._busy = 0.0
        self._cost = time.perf_counter() - t
