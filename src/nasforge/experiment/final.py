"""Final test evaluation of chosen archs: several seeds, mean ± std, reuse of stored runs, progress.

``Experiment.test`` calls :func:`run_final_tests`; it is a module of its own so the experiment's
loop stays readable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from nasforge.evaluate.base import config_hash, evaluator_test_config
from nasforge.experiment.loop import running_executor
from nasforge.experiment.progress import TestProgress, progress_wanted
from nasforge.experiment.results import TestResult, _record_to_result, aggregate_runs
from nasforge.experiment.runners import FinalTestRunner, test_seed
from nasforge.trial import TrialStatus, rank_trials

if TYPE_CHECKING:  # pragma: no cover
    from nasforge.experiment.core import Experiment

__all__ = ["run_final_tests"]

logger = logging.getLogger("nasforge.experiment")


def run_final_tests(
    exp: Experiment,
    chosen: list[tuple[int | None, dict[str, Any]]],
    retrain: bool,
    seeds: int,
    redo: bool,
    weights_dir: str | os.PathLike | None,
    progress: bool | None,
) -> list[TestResult]:
    """Run (or reuse) ``seeds`` test runs of every chosen ``(trial_id, arch)``; one aggregate per arch."""
    record = exp._require_record()
    store = exp._open_store()
    seed = int(record.config["seed"])
    test_cfg = config_hash(evaluator_test_config(exp.evaluator))
    stored = [r for r in store.tests(record.id) if r.status == TrialStatus.SUCCEEDED and r.config == test_cfg and r.retrain == bool(retrain)]
    runs: dict[tuple[int, int], TestResult] = {}
    jobs: list[tuple[int, int, int]] = []  # (candidate index, seed index, seed value)
    for i, (trial_id, arch) in enumerate(chosen):
        # an arch given without a trial: its seeds derive from a stable number of the arch
        key = trial_id if trial_id is not None else int(config_hash(arch)[:7], 16)
        for k in range(seeds):
            value = test_seed(seed, key, k)
            match = None if redo else next(
                (r for r in reversed(stored) if r.seed == value and r.trial_id == trial_id and r.arch == arch), None
            )
            if match is not None:  # the same trial, arch, seed, protocol and test configuration
                runs[(i, k)] = replace(_record_to_result(match), reused=True)
            else:
                jobs.append((i, k, value))
    if runs:
        logger.info("reusing %d stored test run(s) (pass redo=True to run them again)", len(runs))
    if not jobs:
        return [aggregate_runs([runs[(i, k)] for k in range(seeds)]) for i in range(len(chosen))]

    runner = FinalTestRunner(exp.model_space, exp.evaluator, exp.metric, seed)
    ranks = {t.id: r for r, t in enumerate(rank_trials(store.trials(record.id, with_reports=False)), 1)}
    total_epochs = getattr(exp.evaluator, "test_epochs", None)
    bar = TestProgress(total_epochs if isinstance(total_epochs, int) else None) if progress_wanted(
        exp.progress if progress is None else progress) else None

    def label(job: int) -> str:
        i, k, _ = jobs[job]
        trial_id = chosen[i][0]
        who = f"trial {trial_id}" + (f" (rank {ranks[trial_id]})" if trial_id in ranks else "") if trial_id is not None else f"arch {i}"
        return who + (f" seed {k + 1}/{seeds}" if seeds > 1 else "")

    started: dict[int, float] = {}

    def on_report(task_id: int, step: int, metrics: dict[str, float]) -> bool:
        logger.debug("test of %s, step %d: %s", label(task_id), step, metrics)
        if bar is not None:
            bar.update(task_id, int(metrics.get("epoch", step)))
        return False

    queue = deque(range(len(jobs)))
    done = 0
    pool = running_executor(exp, "test", runner, min(exp.concurrency, len(jobs)))  # starts on entry
    with bar or contextlib.nullcontext(), pool as executor:
        while done < len(jobs):
            while queue and executor.idle_slots() > 0:
                job = queue.popleft()
                i, k, value = jobs[job]
                trial_id, arch = chosen[i]
                ctx_id = trial_id if trial_id is not None else -1 - i
                executor.submit(job, "test", (ctx_id, arch, retrain, value))
                started[job] = time.monotonic()
                logger.info("testing %s", label(job))
                if bar is not None:
                    bar.add(job, label(job))
            for c in executor.poll(0.25 if bar is not None else 1.0, on_report):
                i, k, value = jobs[c.task_id]
                trial_id, arch = chosen[i]
                if c.status == "ok":
                    path = _save_weights(weights_dir, c.value.get("weights"), trial_id, i, k, seeds)
                    result = TestResult(trial_id, arch, bool(retrain), TrialStatus.SUCCEEDED.value, c.value["metrics"], None, path, value)
                else:
                    reason = c.error or "stopped"
                    logger.warning("test of %s failed: %s", label(c.task_id), reason.splitlines()[0])
                    result = TestResult(trial_id, arch, bool(retrain), TrialStatus.FAILED.value, {}, reason, None, value)
                store.add_test(record.id, trial_id, arch, retrain, result.status, result.metrics, result.error, result.weights,
                               seed=value, config=test_cfg)
                runs[(i, k)] = result
                done += 1
                elapsed = time.monotonic() - started.get(c.task_id, time.monotonic())
                logger.info("tested %s in %.1f s: %s", label(c.task_id), elapsed, result.format() or result.status.lower())
                if bar is not None:
                    ok = result.status == TrialStatus.SUCCEEDED
                    bar.finish(c.task_id, result.format() if ok else "failed: " + (result.error or "").splitlines()[0], ok)
    return [aggregate_runs([runs[(i, k)] for k in range(seeds)]) for i in range(len(chosen))]


def _save_weights(folder: str | os.PathLike | None, blob: bytes | None, trial_id: int | None, index: int, k: int, seeds: int) -> str | None:
    if folder is None or blob is None:
        return None
    os.makedirs(folder, exist_ok=True)
    stem = f"trial_{trial_id}" if trial_id is not None else f"arch_{index}"
    if seeds > 1:
        stem += f"_seed{k}"
    path = os.path.join(os.fspath(folder), f"{stem}.pt")
    with open(path, "wb") as f:
        f.write(blob)
    return path
