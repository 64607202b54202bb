"""Stopping an experiment cleanly: Ctrl-C, SIGTERM and SIGHUP all end ``run()`` the same way.

While :meth:`Experiment.run` runs in the main thread, SIGTERM and SIGHUP raise
:class:`ExperimentInterrupted` (a ``KeyboardInterrupt``) like Ctrl-C does (unless the program
set its own handler or ignores the signal, e.g. SIGHUP under ``nohup``). The loop then stops
its workers, re-queues the running trials in the store, prints one line — ``interrupted; 2
running trials re-queued; re-run to resume`` — and re-raises. Left uncaught, the exception
ends the script without a traceback (the line says it all); the process exits as killed by
the signal it received (exit status 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["ExperimentInterrupted", "interrupt_signals", "shielded"]

_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


class ExperimentInterrupted(KeyboardInterrupt):
    """``run()`` was stopped by Ctrl-C, SIGTERM or SIGHUP; the running trials were re-queued
    and a re-run resumes. ``signum`` is the signal, ``requeued`` the number of re-queued trials."""

    def __init__(self, message: str = "interrupted", signum: int = signal.SIGINT, requeued: int = 0):
        super().__init__(message)
        self.signum = signum
        self.requeued = requeued


def _raise(signum: int, frame: Any) -> None:
    raise ExperimentInterrupted(f"interrupted by {signal.Signals(signum).name}", signum)


@contextlib.contextmanager
def _handling(signals: tuple[int, ...], handler: Any,
              replaceable: tuple[Any, ...]) -> Iterator[None]:
    """Within this block (main thread only), ``handler`` handles those of ``signals`` whose
    current handler is one of ``replaceable``; the previous handlers come back after."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in signals:
            if signal.getsignal(sig) not in replaceable:
                continue
            try:
                previous[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):  # pragma: no cover
                pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def interrupt_signals() -> contextlib.AbstractContextManager[None]:
    """Within this block (main thread only), SIGTERM and SIGHUP raise ExperimentInterrupted."""
    # Only where the signal would kill the process anyway: a handler of the user's and an
    # ignored signal (e.g. SIGHUP under nohup) are left as they are.
    return _handling(_SIGNALS, _raise, (signal.SIG_DFL,))


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Defer Ctrl-C / SIGTERM / SIGHUP while the experiment cleans up (a second Ctrl-C must not
    leave workers or a half-written store behind); a signal that arrived is re-raised after."""
    caught: list[int] = []
    # not an ignored signal, nor the program's own handler
    with _handling((signal.SIGINT, *_SIGNALS), lambda s, f: caught.append(s),
                   (signal.SIG_DFL, signal.default_int_handler, _raise)):
        yield
    if caught:
        raise ExperimentInterrupted("interrupted", caught[0])


def _excepthook(previous: Any) -> Any:
    def hook(kind: type, value: BaseException, tb: Any) -> None:
        if not isinstance(value, ExperimentInterrupted):
            previous(kind, value, tb)
            return
        # The one-line message was printed already; exit as killed by the signal received
        # (as Python does for a plain KeyboardInterrupt), so shells and supervisors see it.
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        signal.signal(value.signum, signal.SIG_DFL)
        os.kill(os.getpid(), value.signum)

    hook._nasforge = True  # type: ignore[attr-defined]
    return hook


def report(exc: ExperimentInterrupted, requeued: int) -> ExperimentInterrupted:
    """Print the one line, make an uncaught interrupt end the script quietly, return the exception."""
    exc.requeued = requeued
    plural = "trial" if requeued == 1 else "trials"
    print(f"interrupted; {requeued} running {plural} re-queued; re-run to resume", file=sys.stderr, flush=True)
    if not getattr(sys.excepthook, "_nasforge", False):
        sys.excepthook = _excepthook(sys.excepthook)
    return exc
