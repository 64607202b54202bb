"""The progress bar shown during ``Experiment.run()`` (rich), only on a terminal or when asked."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TypeVar

__all__ = ["Progress", "TestProgress", "progress_wanted"]


def progress_wanted(progress: bool | None) -> bool:
    """``progress`` when given; else ``NASFORGE_PROGRESS`` (``1``/``0``); else whether stderr is a terminal."""
    if progress is not None:
        return bool(progress)
    env = os.environ.get("NASFORGE_PROGRESS")
    if env is not None:
        return env.strip().lower() not in ("", "0", "false", "no", "off")
    return sys.stderr.isatty()


_L = TypeVar("_L", bound="_Live")


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _Live:
    """A rich display on stderr with the given columns, shown within a ``with`` block."""

    def __init__(self, *columns: Any):
        from rich.console import Console
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(*columns, console=Console(stderr=True), transient=False,
                                 refresh_per_second=4)

    def __enter__(self: _L) -> _L:
        self._bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bar.stop()


class Progress(_Live):
    """A one-line live display: trials done / running / failed, best so far, elapsed, budget left."""

    def __init__(self, name: str, metric: str, max_trials: int | None, max_time: float | None):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

        super().__init__(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                         TextColumn("{task.fields[info]}"))
        self.metric = metric
        self.max_trials = max_trials
        self.max_time = max_time
        self._t0 = time.monotonic()
        self._task = self._bar.add_task(name, total=max_trials, info="")

    def update(self, done: int, running: int, failed: int, best: float | None, best_id: int | None, total: int) -> None:
        elapsed = time.monotonic() - self._t0
        parts = [f"running {running}", f"failed {failed}"]
        if best is not None:
            parts.append(f"best {self.metric} {best:.4g} (#{best_id})")
        parts.append(f"elapsed {_clock(elapsed)}")
        left = []
        if self.max_trials is not None:
            left.append(f"{max(0, self.max_trials - total)} trials")
        if self.max_time is not None:
            left.append(_clock(self.max_time - elapsed))
        if left:
            parts.append("left " + ", ".join(left))
        self._bar.update(self._task, completed=done, info=" | ".join(parts))


class TestProgress(_Live):
    """Live lines during ``Experiment.test``: which candidate (and seed), its epoch, elapsed time, its result."""

    def __init__(self, total_epochs: int | None):
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

        super().__init__(TextColumn("test {task.description}"), TextColumn("{task.fields[epochs]}"),
                         TimeElapsedColumn(), BarColumn(bar_width=10),
                         TextColumn("{task.fields[info]}"))
        self.total = total_epochs
        self._tasks: dict[int, Any] = {}

    def _epochs(self, epoch: int) -> str:
        return f"epoch {epoch}/{self.total}" if self.total is not None else f"epoch {epoch}"

    def add(self, job: int, label: str) -> None:
        from rich.markup import escape

        self._tasks[job] = self._bar.add_task(escape(label), total=self.total, info="", epochs=self._epochs(0))

    def update(self, job: int, epoch: int) -> None:
        if job in self._tasks:
            self._bar.update(self._tasks[job], completed=epoch, epochs=self._epochs(epoch))

    def finish(self, job: int, info: str, ok: bool = True) -> None:
        from rich.markup import escape

        if job in self._tasks:
            task = self._tasks[job]
            if ok and self.total is not None:
                self._bar.update(task, completed=self.total, info=escape(info), epochs=self._epochs(self.total))
            else:
                self._bar.update(task, info=escape(info))
            self._bar.stop_task(task)
