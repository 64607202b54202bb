"""The Ray executor against a real local Ray instance (started once for this module, loopback only).

Runs the shipped executor conformance suite, an experiment whose stored results are compared with
the local executor's, failures of trials and of Ray actors, a SIGKILLed driver resumed, the GPU
assignment (Ray is told the node has 2 GPUs; nothing runs on a GPU here), and checks that the
local instance listens on loopback only with its dashboard off.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ray = pytest.importorskip(
    "ray", reason="Ray is not installed: pip install -e '.[ray]' (scripts/setup.sh installs it)"
)

from nasforge import Categorical, Experiment, Space  # noqa: E402
from nasforge.evaluate import FunctionEvaluator  # noqa: E402
from nasforge.execution import Executor, ExecutorError, RayExecutor, make_executor  # noqa: E402
from nasforge.execution.testing import ExecutorContract, _alive, _assert_dead, _wait_dead  # noqa: E402
from nasforge.strategy import GridSearch  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    """One private Ray instance for the whole module: 2 CPUs, and 2 GPUs that exist only for Ray's scheduler.

    It is started the way ``RayExecutor(address=None)`` starts one (asking for its capacity connects
    without creating actors); the executors of the tests then share this process's connection, and
    this owner closes the instance at the end.
    """
    if ray.is_initialized():  # pragma: no cover - another module left one
        ray.shutdown()
    owner = RayExecutor(num_cpus=2, num_gpus=2, init_kwargs={"object_store_memory": 100 * 2**20})
    assert owner.capacity == 2 and ray.is_initialized()
    info = dict(ray._private.worker.global_worker.node.address_info)
    try:
        yield info
    finally:
        owner.shutdown()
        assert not ray.is_initialized(), "the executor that started the instance did not close it"


def _collect(ex, n, on_report=None, patience=120.0):
    on_report = on_report or (lambda *a: False)
    done = {}
    end = time.monotonic() + patience
    while len(done) < n:
        assert time.monotonic() < end, f"only {len(done)} of {n} tasks finished"
        for c in ex.poll(1.0, on_report):
            assert c.task_id not in done
            done[c.task_id] = c
    return done


# -- the conformance suite -------------------------------------------------------------------------------
class TestRayExecutorContract(ExecutorContract):
    def make_executor(self, concurrency: int) -> Executor:
        # half a CPU each: the suite's own executor and a fresh one for the shutdown checks fit together
        return RayExecutor(num_cpus_per_trial=0.5, max_concurrency=concurrency)


# -- loopback, no dashboard --------------------------------------------------------------------------------
def _process_tree(root: int) -> dict[int, str]:
    """``{pid: command line}`` of ``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                tree[pid] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        todo += children.get(pid, [])
    return tree


def _listening_sockets(pids) -> list[tuple[int, str, int]]:
    """``(pid, address, port)`` of every listening TCP socket owned by ``pids`` (from /proc/net/tcp*)."""
    listening: dict[str, tuple[str, int]] = {}
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            hex_addr, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_addr)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # per-word little endian
            listening[fields[9]] = (socket.inet_ntop(family, raw), int(hex_port, 16))
    out = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in listening:
                out.append((pid, *listening[target[8:-1]]))
    return out


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_local_instance_listens_on_loopback_only_with_the_dashboard_off(ray_instance):
    assert ray_instance["node_ip_address"] == "127.0.0.1"
    ex = RayExecutor(num_cpus_per_trial=0.5, max_concurrency=2)  # its actors and workers too
    ex.register("pid", lambda args, channel: os.getpid())
    with ex:
        ex.submit(0, "pid", None)
        _collect(ex, 1)
        tree = _process_tree(os.getpid())
        sockets = _listening_sockets(tree)
    gcs_port = int(ray_instance["gcs_address"].rsplit(":", 1)[1])
    ports = {port for _, _, port in sockets}
    assert gcs_port in ports, f"the GCS port {gcs_port} is not among the listening sockets found: {sockets}"
    assert len({pid for pid, _, _ in sockets}) >= 3  # GCS, raylet, workers, agents: the check saw them
    exposed = [(pid, tree[pid][:80], addr, port) for pid, addr, port in sockets if not _is_loopback(addr)]
    assert not exposed, f"Ray processes listening beyond loopback: {exposed}"
    # the dashboard is off: no web UI (Ray keeps an API-server process with its frontend disabled,
    # which exposes only a metrics port, on loopback like everything else)
    assert not ray_instance.get("webui_url")
    heads = [pid for pid, cmd in tree.items() if "dashboard/dashboard.py" in cmd]
    assert all("--disable-frontend" in tree[pid] for pid in heads), "the dashboard web UI was started"
    assert 8265 not in ports


# -- an experiment: same stored results as the local executor ---------------------------------------------------
GRID = Space([Categorical(list(range(12)), label="x")])


def graded(arch, ctx):
    """Trial x: 3 raises, 5 returns NaN, 7 hangs (timed out); the others report and score x / 10."""
    x = arch["x"]
    if x == 3:
        raise ValueError(f"candidate {x} is broken")
    if x == 5:
        return math.nan
    if x == 7:
        time.sleep(120)
    ctx.report(0, {"score": x / 20})
    return {"score": x / 10, "x": x, "pid": os.getpid()}


def _stored(db, name):
    con = sqlite3.connect(db)
    try:
        (exp_id,) = con.execute("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()
        trials = con.execute(
            "SELECT id, arch, status, metrics, score, error, worker FROM trials WHERE experiment_id = ? ORDER BY id",
            (exp_id,),
        ).fetchall()
        reports = con.execute(
            "SELECT trial_id, step, metrics FROM reports WHERE experiment_id = ? ORDER BY trial_id, step", (exp_id,)
        ).fetchall()
    finally:
        con.close()
    return trials, reports


def test_experiment_stores_the_same_results_as_the_local_executor(tmp_path):
    db = tmp_path / "runs.db"
    summaries = {}
    for name, executor in (("local", "local"), ("ray", "ray")):
        exp = Experiment(GRID, GridSearch(), FunctionEvaluator(graded, uses_model=False), max_trials=12,
                         concurrency=2, store=db, name=name, seed=0, executor=executor, trial_timeout=5,
                         progress=False)
        summaries[name] = exp.run()
    local, ray_run = _stored(db, "local"), _stored(db, "ray")
    assert summaries["ray"].n_trials == 12 and summaries["ray"].counts == summaries["local"].counts
    assert summaries["ray"].counts == {"SUCCEEDED": 9, "FAILED": 3}
    assert ray.is_initialized()  # executor="ray" used this process's connection and left it open

    def shape(rows):
        out = []
        for tid, arch, status, metrics, score, error, _worker in rows:
            metrics = {k: v for k, v in json.loads(metrics or "{}").items() if k != "pid"}
            out.append((tid, arch, status, metrics, score, (error or "").splitlines()[0] if error else None))
        return out

    assert shape(ray_run[0]) == shape(local[0])
    assert ray_run[1] == local[1]  # the same reports
    by_x = {json.loads(arch)["x"]: (status, error, worker) for _, arch, status, _, _, error, worker in ray_run[0]}
    assert by_x[3][0] == "FAILED" and by_x[3][1].startswith("ValueError: candidate 3 is broken")
    assert by_x[5][0] == "FAILED" and "non-finite metric(s): score=nan" in by_x[5][1]
    assert by_x[7][0] == "FAILED" and by_x[7][1] == "timeout after 5 s"
    assert all(worker.startswith("ray-") for _, _, worker in by_x.values())
    assert {w for _, _, w in by_x.values()} != {by_x[0][2]}  # two actors shared the work


# -- a killed driver resumes with exactly max_trials trials ---------------------------------------------------------
DRIVER = textwrap.dedent(
    """
    import os, sys, time
    from nasforge import Categorical, Experiment, Space
    from nasforge.evaluate import FunctionEvaluator
    from nasforge.strategy import Random

    space = Space([Categorical(list(range(1000)), label="x")])
    MARKS = sys.argv[2]

    def evaluate(arch, ctx):   # defined in __main__: travels to the Ray actors with cloudpickle
        with open(os.path.join(MARKS, f"pids-{arch['x']}-{os.getpid()}"), "w") as f:
            f.write(f"{os.getpid()} {os.getppid()}")
        time.sleep(0.3)
        ctx.report(0, {"score": 0.0})
        return {"score": arch["x"] / 1000, "x": arch["x"]}

    if __name__ == "__main__":
        exp = Experiment(space, Random(dedup=True), FunctionEvaluator(evaluate, uses_model=False),
                         max_trials=12, concurrency=2, store=sys.argv[1], name="kill", seed=5,
                         executor="ray")
        exp.run()
    """
)


def _succeeded(db):
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute("SELECT id, arch, status, metrics FROM trials WHERE status = 'SUCCEEDED'").fetchall()
    except sqlite3.OperationalError:
        rows = []
    finally:
        con.close()
    return {r[0]: r for r in rows}


def test_driver_killed_midway_then_rerun_gives_exactly_max_trials(tmp_path, ray_instance):
    script = tmp_path / "job.py"
    script.write_text(DRIVER)
    db = tmp_path / "kill.db"
    marks = tmp_path / "marks"
    marks.mkdir()
    import nasforge

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(nasforge.__file__)))  # this nasforge
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "RAY_ADDRESS": ray_instance["gcs_address"], "PYTHONPATH": path}  # join this instance
    proc = subprocess.Popen([sys.executable, str(script), str(db), str(marks)], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 180
        while len(_succeeded(db)) < 4:
            assert proc.poll() is None, "the experiment ended before it could be killed"
            assert time.monotonic() < deadline, "the experiment made no progress"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = _succeeded(db)
    assert 4 <= len(before) < 12
    # the killed driver's actors and their trial workers go with it (Ray ends a dead driver's actors)
    pids = {int(p) for f in marks.iterdir() for p in f.read_text().split()}
    _assert_dead(sorted(pids), "processes of the killed driver's trials still run", patience=60)

    rerun = subprocess.run([sys.executable, str(script), str(db), str(marks)], cwd=tmp_path, env=env, timeout=300)
    assert rerun.returncode == 0
    con = sqlite3.connect(db)
    rows = con.execute("SELECT id, arch, status, metrics FROM trials").fetchall()
    con.close()
    assert sorted(r[0] for r in rows) == list(range(12))
    assert all(r[2] == "SUCCEEDED" for r in rows)
    assert len({r[1] for r in rows}) == 12  # no arch evaluated twice: the strategy state was restored
    after = {r[0]: r for r in rows}
    for tid, row in before.items():
        assert after[tid] == row  # finished before the kill: untouched


# -- Ray actors dying ------------------------------------------------------------------------------------------------
def sleeper(args, channel):
    folder, seconds = args
    Path(folder, f"run-{os.getpid()}-{time.monotonic_ns()}").touch()
    time.sleep(seconds)
    return {"pid": os.getpid(), "actor": os.getppid()}


def test_an_actor_killed_mid_trial_fails_that_trial_and_is_replaced(tmp_path):
    with RayExecutor(num_cpus_per_trial=0.5, max_concurrency=2) as ex:
        ex.register("s", sleeper)
        ex.submit(0, "s", (str(tmp_path), 0.0))
        _collect(ex, 1)
        ex.submit(1, "s", (str(tmp_path), 120.0))
        while len(list(tmp_path.glob("run-*"))) < 2:  # trial 1 is running
            time.sleep(0.02)
        running = next(s for s in ex._slots if s.task == 1)
        while not running.info:  # its actor's ready() answer has been seen
            _collect(ex, 0)
        os.kill(running.info["pid"], signal.SIGKILL)
        c = _collect(ex, 1)[1]
        assert c.status == "error" and c.error.startswith("the Ray actor running the trial died: ActorDiedError")
        assert ex.idle_slots() == ex.capacity == 2
        for i in (2, 3):
            ex.submit(i, "s", (str(tmp_path), 0.0))
        done = _collect(ex, 2)
        assert all(d.status == "ok" for d in done.values())
        assert running.info["pid"] not in {d.value["actor"] for d in done.values()}
    assert len(list(tmp_path.glob("run-*"))) == 4  # nothing ran twice


def test_a_trial_sent_to_an_actor_that_already_died_is_resent_not_failed(tmp_path):
    with RayExecutor(num_cpus_per_trial=0.5, max_concurrency=1) as ex:
        ex.register("s", sleeper)
        ex.submit(0, "s", (str(tmp_path), 0.0))
        _collect(ex, 1)
        (slot,) = ex._slots
        os.kill(slot.info["pid"], signal.SIGKILL)  # dies while idle
        assert _wait_dead([slot.info["pid"]], 30) == []
        ex.submit(1, "s", (str(tmp_path), 0.0))
        c = _collect(ex, 1)[1]
        assert c.status == "ok" and c.value["actor"] != slot.info["pid"]
    assert len(list(tmp_path.glob("run-*"))) == 2  # trial 1 ran once, on the replacement


def test_shutdown_ends_the_actors(tmp_path):
    ex = RayExecutor(num_cpus_per_trial=0.5, max_concurrency=2)
    ex.register("s", sleeper)
    with ex:
        ex.submit(0, "s", (str(tmp_path), 0.0))
        ex.submit(1, "s", (str(tmp_path), 120.0))
        _collect(ex, 1)
        actors = [s.info["pid"] for s in ex._slots if s.info]
        while len(actors) < 2:
            _collect(ex, 0)
            actors = [s.info["pid"] for s in ex._slots if s.info]
    _assert_dead(actors, "Ray actor processes outlived shutdown()", patience=30)


def test_a_worker_that_cannot_start_stops_the_executor_with_the_reason():
    with RayExecutor(num_cpus_per_trial=0.5, max_concurrency=1, preload=("nasforge_no_such_module",)) as ex:
        ex.register("s", sleeper)
        ex.submit(0, "s", ("/tmp", 0.0))
        with pytest.raises(ExecutorError, match="keep dying during start-up"):
            _collect(ex, 1)


# -- GPUs: what Ray assigns reaches the trial's worker ---------------------------------------------------------------
def visible_devices(args, channel):
    from nasforge.evaluate.classification import _resolve_device

    folder, me, partner = args
    Path(folder, f"started-{me}").touch()
    end = time.monotonic() + 60
    while not Path(folder, f"started-{partner}").exists() and time.monotonic() < end:
        time.sleep(0.01)
    return {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "auto": str(_resolve_device("auto"))}


@pytest.mark.parametrize("per_trial, expected", [(1, [{"0"}, {"1"}]), (0, [{""}, {""}])])
def test_num_gpus_per_trial_reaches_the_scheduler_and_the_worker(tmp_path, per_trial, expected):
    with RayExecutor(num_cpus_per_trial=0.5, num_gpus_per_trial=per_trial, max_concurrency=2) as ex:
        ex.register("gpu", visible_devices)
        ex.submit(0, "gpu", (str(tmp_path), 0, 1))
        ex.submit(1, "gpu", (str(tmp_path), 1, 0))
        done = _collect(ex, 2)
    seen = sorted(d.value["cuda_visible_devices"] for d in done.values())
    assert [{v} for v in seen] == expected  # two concurrent trials, two different (fake) GPUs
    assert all(d.value["auto"] == "cpu" for d in done.values())  # no real GPU here: auto falls back


def _capacity(**kwargs):
    ex = RayExecutor(**kwargs)
    try:
        return ex.capacity
    finally:
        ex.shutdown()


def test_capacity_follows_the_cluster_resources():
    assert _capacity(num_cpus_per_trial=1) == 2
    assert _capacity(num_cpus_per_trial=0.5, num_gpus_per_trial=1) == 2
    assert _capacity(num_cpus_per_trial=0.5, num_gpus_per_trial=0.5) == 4
    with pytest.raises(ExecutorError, match="no trial fits: num_cpus_per_trial=1, num_gpus_per_trial=3.*2 GPU"):
        _capacity(num_gpus_per_trial=3)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="num_cpus_per_trial must be a positive number, got 0"):
        RayExecutor(num_cpus_per_trial=0)
    with pytest.raises(ValueError, match="num_gpus_per_trial must be a non-negative number, got -1"):
        RayExecutor(num_gpus_per_trial=-1)
    with pytest.raises(ValueError, match="max_concurrency must be a positive int or None, got 0"):
        RayExecutor(max_concurrency=0)
    with pytest.raises(TypeError, match="runtime_env must be a dict"):
        RayExecutor(runtime_env="pip install torch")
    with pytest.raises(ValueError, match="address must be None"):
        RayExecutor(address="")
    with pytest.raises(ValueError, match="size a local instance"):
        RayExecutor(address="auto", num_cpus=4)
    ex = make_executor("ray", 3)
    assert isinstance(ex, RayExecutor) and ex.capacity == 3
    assert "RayExecutor(address=None" in repr(ex)


def test_unregistered_runner_names_what_is_registered():
    ex = RayExecutor(num_cpus_per_trial=0.5, max_concurrency=1)
    ex.register("a", sleeper)
    with pytest.raises(KeyError, match=r"no runner registered under 'b'; registered: \['a'\]"):
        ex.submit(0, "b", None)
    ex.shutdown()
    assert _alive(os.getpid())
