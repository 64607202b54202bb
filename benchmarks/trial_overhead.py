"""Per-trial framework overhead and parallel throughput of the experiment loop.

    .venv/bin/python benchmarks/trial_overhead.py [--quick]
    .venv/bin/python benchmarks/trial_overhead.py --ray-only [--quick]   # only the Ray table (4)
    .venv/bin/python benchmarks/trial_overhead.py --history [--trials 2000]   # only measure 3

1. Overhead: an evaluator that returns immediately, run through the whole loop (strategy ask/tell,
   SQLite writes of the trial and the strategy state, executor round trip). For ``local`` the
   workers are warmed up first (an executor kept up across experiments); best of 3 runs.
2. Throughput: CPU-bound trials (a pure-Python loop, ~0.5 s each) on 1 vs 2 warm local
   workers, and the same for a small torch training loop (each worker gets its share of the
   threads, so 1 worker uses every core); plus the machine's own ceiling (two plain processes).
3. History growth: per-trial cost over 2,000 instant trials on one warm local worker with an
   SQLite file store, by quarter of the run, for ``Random(dedup=True)``, ``RegularizedEvolution``
   and ``TPE``; split into the strategy's own ask/tell time and the rest (the loop, the store,
   the executor round trip). The framework part must not grow with the number of trials.

4. The Ray executor (when Ray is installed), in its own table: a private local Ray instance with
   one CPU per core; per-trial overhead through the whole loop on warm actors (1 and 2), and the
   CPU-bound throughput of 2 warm actors vs 1, next to the local pool's and to two bare
   processes measured in the same run (the machine is shared: only same-run ratios compare).

Prints tables; no assertion (tests never time anything).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from nasforge import Categorical, Experiment, Space
from nasforge.evaluate import FunctionEvaluator
from nasforge.execution import LocalExecutor, available_cores
from nasforge.strategy import TPE, Random, RegularizedEvolution
from nasforge.strategy.base import Strategy

SPACE = Space([Categorical(list(range(1000)), label="x"), Categorical(list(range(1000)), label="y")])


def instant(arch, ctx):
    return 0.0


def busy(arch, ctx):
    total = 0
    for i in range(6_000_000):
        total += i * i % 7
    return float(total % 3)


def torch_train(arch, ctx):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(512, 256)
    y = torch.randint(0, 10, (512,))
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return 0.0


def run(n: int, fn, executor, concurrency: int = 1, store: str | None = None) -> float:
    exp = Experiment(SPACE, Random(dedup=False), FunctionEvaluator(fn, uses_model=False), max_trials=n,
                     concurrency=concurrency, executor=executor, store=store, name=f"b{time.time_ns()}",
                     seed=0, progress=False)
    t0 = time.perf_counter()
    exp.run()
    return time.perf_counter() - t0


def best_of(repeats: int, fn, *args) -> float:
    """The machine is shared: the least disturbed of a few runs is the honest cost."""
    return min(fn(*args) for _ in range(repeats))


def warm_throughput(n: int, fn, workers: int, store: str) -> float:
    with LocalExecutor(workers) as ex:
        run(workers, fn, ex, workers, store)  # warm-up
        return run(n, fn, ex, workers, store)


def machine_ceiling() -> tuple[float, float]:
    """How much two processes gain on this machine at all (shared vCPUs rarely give 2x)."""
    import subprocess
    import sys

    code = "t=0\nfor i in range(6_000_000): t += i*i%7"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    for p in procs:
        p.wait()
    return seq, time.perf_counter() - t0


def local_overhead(n: int, workers: int, store: str) -> float:
    """Seconds per trial once the workers are warm (an executor kept up across experiments)."""
    with LocalExecutor(workers) as ex:
        run(20, instant, ex, workers, store)  # warm-up: workers started, imports done
        return best_of(3, run, n, instant, ex, workers, store) / n


def ray_table(quick: bool) -> list[tuple[str, str, str]]:
    """Section 4: the Ray executor next to the local pool, measured in the same run."""
    from nasforge.execution.ray import RayExecutor, ray_available, start_local_ray

    if not ray_available():
        return [("ray", "skipped", "Ray is not installed (pip install 'nasforge[ray]')")]
    import ray

    cores = available_cores()
    n = 100 if quick else 300
    rows = []
    t = time.perf_counter()
    start_local_ray(num_cpus=cores, object_store_memory=200 * 2**20)
    rows.append(("ray: start a local instance", f"{time.perf_counter() - t:.2f} s", f"ray.init, {cores} CPUs, loopback only"))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = os.path.join(tmp, "bench.db")
            t = time.perf_counter()
            with RayExecutor(max_concurrency=2) as ex:
                run(2, instant, ex, 2, db)
            rows.append(("ray: 2 actors, cold start + 2 trials", f"{time.perf_counter() - t:.2f} s",
                         "actors and their worker processes started, used, stopped"))
            for workers in (1, 2):
                with RayExecutor(max_concurrency=workers) as ex:
                    run(20, instant, ex, workers, db)  # warm-up: actors and their workers up
                    per = best_of(3, run, n, instant, ex, workers, db) / n
                with LocalExecutor(workers) as ex:
                    run(20, instant, ex, workers, db)
                    local_per = best_of(3, run, n, instant, ex, workers, db) / n
                rows.append((f"ray: overhead, {workers} warm actor(s)", f"{1000 * per:.2f} ms/trial",
                             f"{n} instant trials, best of 3; local pool in the same run: {1000 * local_per:.2f} ms"))
            n_busy = 8 if quick else 12
            results: dict[tuple[str, int], float] = {}
            ceilings = []
            factories = (("ray", lambda w: RayExecutor(max_concurrency=w)), ("local", LocalExecutor))
            for _ in range(2 if quick else 3):  # interleaved rounds, best of each: load comes and goes
                for label, factory in factories:
                    for workers in (1, 2):
                        with factory(workers) as ex:
                            run(workers, busy, ex, workers, db)  # warm-up
                            took = run(n_busy, busy, ex, workers, db)
                        results[label, workers] = min(took, results.get((label, workers), took))
                ceilings.append(machine_ceiling())
            seq, par = min(c[0] for c in ceilings), min(c[1] for c in ceilings)
            for label in ("ray", "local"):
                one, two = results[label, 1], results[label, 2]
                rows.append((f"{label}: throughput, CPU-bound trials", f"{one / two:.2f}x with 2 workers",
                             f"{n_busy} trials: 1 worker {one:.2f} s, 2 workers {two:.2f} s"))
            rows.append(("same run: 2 bare processes vs 1", f"{2 * seq / par:.2f}x",
                         f"the same Python loop alone {seq:.2f} s, two at once {par:.2f} s"))
    finally:
        ray.shutdown()
    return rows


def print_table(title: str, rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(title)
    print(f"{'case':<{width}}  {'result':<22}  detail")
    print("-" * (width + 2 + 22 + 2 + 40))
    for case, result, detail in rows:
        print(f"{case:<{width}}  {result:<22}  {detail}")
class Timed(Strategy):
    """Wraps a strategy and adds up the time spent in its ask / tell / on_report (per call)."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[str, float]] = []

    def _time(self, kind, fn, *args):
        t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.calls.append((kind, time.perf_counter() - t))

    def setup(self, space, seed=None):
        self.inner.setup(space, seed)

    def ask(self):
        return self._time("ask", self.inner.ask)

    def tell(self, trial):
        return self._time("tell", self.inner.tell, trial)

    def on_report(self, trial, step, score):
        return self._time("report", self.inner.on_report, trial, step, score)

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, state):
        self.inner.load_state_dict(state)


def history_growth(n: int, store_dir: str) -> list[tuple[str, list[float], list[float]]]:
    """Per-quarter ms/trial (wall clock, and the strategy's own share) for ``n`` instant trials."""
    out = []
    factories = (("Random(dedup=True)", lambda: Random(dedup=True)),
                 ("RegularizedEvolution", lambda: RegularizedEvolution()),
                 ("TPE", lambda: TPE()))
    with LocalExecutor(1) as ex:
        run(20, instant, ex, 1, os.path.join(store_dir, "warm.db"))  # worker started, imports done
        for label, factory in factories:
            timed = Timed(factory())
            name = f"h{time.time_ns()}"
            db = os.path.join(store_dir, f"{name}.db")
            exp = Experiment(SPACE, timed, FunctionEvaluator(instant, uses_model=False), max_trials=n,
                             executor=ex, store=db, name=name, seed=0, progress=False)
            t0 = time.time()
            exp.run()
            ends = [t.finished for t in exp.trials()]
            asks = [d for k, d in timed.calls if k == "ask"]
            tells = [d for k, d in timed.calls if k == "tell"]
            q = n // 4
            wall, strat = [], []
            for i in range(4):
                lo, hi = i * q, (i + 1) * q
                start = t0 if i == 0 else ends[lo - 1]
                wall.append(1000 * (ends[hi - 1] - start) / q)
                strat.append(1000 * (sum(asks[lo:hi]) + sum(tells[lo:hi])) / q)
            out.append((label, wall, strat))
    return out


def print_history(rows: list[tuple[str, list[float], list[float]]], n: int) -> None:
    print(f"\nper-trial cost by quarter of a {n}-trial run (ms/trial; 1 warm local worker, SQLite file store)")
    print(f"{'strategy':<22}  {'part':<14}  {'Q1':>7}  {'Q2':>7}  {'Q3':>7}  {'Q4':>7}  {'Q4/Q1':>6}")
    for label, wall, strat in rows:
        other = [w - s for w, s in zip(wall, strat)]
        for part, vals in (("total", wall), ("strategy", strat), ("framework", other)):
            ratio = vals[3] / vals[0] if vals[0] > 0 else float("nan")
            print(f"{label:<22}  {part:<14}  " + "  ".join(f"{v:7.2f}" for v in vals) + f"  {ratio:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials")
    parser.add_argument("--history", action="store_true", help="only the history-growth measure (3)")
    parser.add_argument("--trials", type=int, default=2000, help="trials of the history-growth measure (default 2000)")
    parser.add_argument("--ray-only", action="store_true", help="only the Ray executor's table (4)")
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray executor's table (4)")
    args = parser.parse_args()
    if args.ray_only:
        print_table(f"Ray executor vs local pool on {available_cores()} CPU cores", ray_table(args.quick))
        return
    if args.history:
        with tempfile.TemporaryDirectory() as tmp:
            print_history(history_growth(args.trials, tmp), args.trials)
        return
    n_inline = 500 if args.quick else 2000
    n_local = 200 if args.quick else 500
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "bench.db")
        run(50, instant, "inline", 1, db)  # warm-up (imports, SQLite)
        t = best_of(3, run, n_inline, instant, "inline", 1, db)
        rows.append(("inline, SQLite file store", f"{1000 * t / n_inline:.3f} ms/trial", f"{n_inline} trials, best of 3"))
        t = best_of(3, run, n_inline, instant, "inline")
        rows.append(("inline, in-memory store", f"{1000 * t / n_inline:.3f} ms/trial", f"{n_inline} trials, best of 3"))
        for workers in (1, 2):
            per = local_overhead(n_local, workers, db)
            rows.append((f"local, {workers} worker(s), SQLite file", f"{1000 * per:.3f} ms/trial",
                         f"{n_local} trials on warm workers, best of 3"))
        t = time.perf_counter()
        run(2, instant, "local", 2, db)
        rows.append(("local, 2 workers, cold start", f"{time.perf_counter() - t:.2f} s", "2 trials incl. starting the workers"))
        n_busy = 12
        for label, fn in (("CPU-bound Python trials", busy), ("torch training trials", torch_train)):
            base = best_of(2, warm_throughput, n_busy, fn, 1, db)
            par = best_of(2, warm_throughput, n_busy, fn, 2, db)
            threads = f" (1 worker: {available_cores()} threads, 2 workers: {max(1, available_cores() // 2)} each)" if fn is torch_train else ""
            rows.append((f"throughput, {label}", f"{base / par:.2f}x with 2 workers",
                         f"{n_busy} trials on warm workers: 1 worker {base:.2f} s, 2 workers {par:.2f} s{threads}"))
        seq, par = machine_ceiling()
        rows.append(("machine: 2 plain processes vs 1", f"{2 * seq / par:.2f}x", f"the same Python loop alone {seq:.2f} s, two at once {par:.2f} s"))
    width = max(len(r[0]) for r in rows)
    print(f"nasforge trial overhead on {available_cores()} CPU cores")
    print(f"{'case':<{width}}  {'result':<22}  detail")
    print("-" * (width + 2 + 22 + 2 + 40))
    for case, result, detail in rows:
        print(f"{case:<{width}}  {result:<22}  {detail}")
    if not args.no_ray:
        print()
        print_table(f"Ray executor vs local pool on {available_cores()} CPU cores", ray_table(args.quick))
    n_hist = 500 if args.quick else args.trials
    with tempfile.TemporaryDirectory() as tmp:
        print_history(history_growth(n_hist, tmp), n_hist)


if __name__ == "__main__":
    main()
