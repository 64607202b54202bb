"""Trials on a Ray cluster: :class:`RayExecutor` (``Experiment(..., executor="ray")``).

nasforge does not manage clusters; Ray does. The driver (the process that runs the
experiment) keeps the strategy, the loop and the SQLite store — it is the only writer — and
ships each trial to a *trial actor*: one Ray actor per concurrent trial, created once with the
trial's resource request (``num_cpus_per_trial``, ``num_gpus_per_trial``) and kept warm across
trials. Each actor owns one warm nasforge worker process (the same worker as the ``local``
executor, a one-worker :class:`~nasforge.execution.local.LocalExecutor`), so a trial on Ray is
isolated exactly like a local one: a time limit kills the trial's process, a segfault or an
``os._exit`` fails only that trial with the precise reason (``worker died with signal 11
(SIGSEGV)``) and the actor replaces its worker. Reports travel worker → actor → a small hub actor
→ the driver, and the stop decision travels back, so ``ctx.report`` answers like in a local trial.

Ray never re-runs a trial on its own: actors are created with ``max_restarts=0`` and their calls
with ``max_task_retries=0``. When an actor dies (its node is lost, its process is killed), the
trial it was running fails with Ray's reason; a trial that had not started on it yet (checked
with the hub) is re-sent to a replacement actor, as the local executor does for a dead worker.

``address=None`` starts a private Ray instance on this machine (dashboard off, every socket on
loopback; see :func:`start_local_ray`); ``"auto"`` or ``"ray://head:10001"`` / ``"head:6379"``
joins an existing cluster; when this process is already connected (``ray.init`` was called),
that connection is used and left open.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import logging
import math
import numbers
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from nasforge.execution.base import Completion, Executor, ExecutorError, ReportCallback

__all__ = ["RayExecutor", "connect_ray", "ray_available", "start_local_ray"]

logger = logging.getLogger("nasforge.execution.ray")

_MAX_START_FAILURES = 3
#: How long past a trial's own time limit the driver waits for its actor before killing it (the
#: actor enforces the limit itself; this only catches an actor that stopped answering).
_BACKSTOP_GRACE = 60.0
#: Ray reads this at import time to decide whether a local node may use a non-loopback address.
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: Ray never re-runs a trial on its own (a re-run is the driver's decision: see the module docs).
_NO_RETRIES = {"max_restarts": 0, "max_task_retries": 0}
_NO_RAY = (
    "executor='ray' needs Ray, which is not installed here: pip install 'nasforge[ray]' "
    "(or pip install 'ray[default]')"
)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ExecutorError(_NO_RAY) from exc
    return ray


def ray_available() -> bool:
    """True when Ray can be imported here."""
    return importlib.util.find_spec("ray") is not None


# -- a private local instance ------------------------------------------------------------------------
@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """While Ray starts or joins a node on this machine: use (and bind) the loopback address only."""
    _import_ray()
    ray_constants: Any
    try:
        ray_constants = importlib.import_module("ray._private.ray_constants")
    except ImportError:  # pragma: no cover - a Ray without this module
        ray_constants = None
    saved_env = os.environ.get(_LOOPBACK_ENV)
    saved_flag = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[_LOOPBACK_ENV] = "0"
    if saved_flag is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop(_LOOPBACK_ENV, None)
        else:
            os.environ[_LOOPBACK_ENV] = saved_env
        if saved_flag is not None:
            ray_constants.ENABLE_RAY_CLUSTER = saved_flag


def _is_loopback_address(address: str) -> bool:
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def connect_ray(address: str, **init_kwargs: Any) -> None:
    """Join the Ray cluster at ``address`` (``"auto"``, ``"ray://head:10001"``, ``"head:6379"``)."""
    ray = _import_ray()
    # a loopback-only instance on this machine: join it on loopback
    with _loopback_only() if _is_loopback_address(address) else contextlib.nullcontext():
        ray.init(address=address, **init_kwargs)


def start_local_ray(num_cpus: int | None = None, num_gpus: int | None = None, **init_kwargs: Any) -> dict[str, Any]:
    """Start a Ray instance on this machine that only this machine can reach; returns its address info.

    The dashboard is off and every Ray process listens on loopback only. Ray 2.x resolves a
    ``node_ip_address`` of ``127.0.0.1`` back to the host's routable address and then binds its
    gRPC servers (GCS, raylet, core workers, agents) to all interfaces; it keeps the loopback
    address only when its "cluster mode" is off, which on Linux is the setting
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (read by Ray at import time into
    ``ray._private.ray_constants.ENABLE_RAY_CLUSTER``). Both are set while the instance starts
    (its processes inherit the variable) and restored afterwards.

    >>> info = start_local_ray(num_cpus=2)        # doctest: +SKIP
    >>> info["node_ip_address"]                     # doctest: +SKIP
    '127.0.0.1'
    """
    ray = _import_ray()
    sizes = {k: v for k, v in (("num_cpus", num_cpus), ("num_gpus", num_gpus)) if v is not None}
    kwargs = {"include_dashboard": False, "_node_ip_address": "127.0.0.1", **sizes, **init_kwargs}
    with _loopback_only():
        context = ray.init(address="local", **kwargs)
    info = dict(getattr(context, "address_info", {}) or {})
    ip = info.get("node_ip_address")
    if ip not in (None, "127.0.0.1", "::1", "localhost"):
        logger.warning(
            "the local Ray instance uses address %s, not loopback: this Ray version ignores %s=0; its "
            "ports may be reachable from the network", ip, _LOOPBACK_ENV,
        )
    return info


# -- the actors ---------------------------------------------------------------------------------------
class _Pickled:
    """A runner already pickled by the driver: the actor forwards it to its worker unopened.

    The actor never imports the user's code (torch, the model space): pickling this object
    produces a call to ``cloudpickle.loads(blob)``, which runs in the worker process.
    """

    def __init__(self, blob: bytes):
        self.blob = blob

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return cloudpickle.loads, (self.blob,)

    def __call__(self, args: Any, channel: Any) -> Any:  # pragma: no cover - never called: unpickled as the runner itself
        raise TypeError("a _Pickled runner runs only after it was sent to a worker")


class _Hub:
    """An asyncio actor beside the driver through which trial reports reach it.

    A trial actor calls :meth:`report` and waits for its answer; the driver keeps one
    :meth:`take` call outstanding, handles what it returns and sends the stop decisions back
    with :meth:`answer`. :meth:`started` records the last task each slot began, so that after
    an actor's death the driver knows whether its trial had started.
    """

    def __init__(self) -> None:
        self._queue: list[tuple[int, int, int, dict[str, float]]] = []
        self._futures: dict[int, Any] = {}
        self._event = asyncio.Event()  # bound to the actor's event loop by its first wait (3.10+)
        self._seq = 0
        self._started: dict[int, int] = {}

    async def report(self, task_id: int, step: int, payload: Any) -> bool:
        future = asyncio.get_running_loop().create_future()
        self._seq += 1
        self._futures[self._seq] = future
        self._queue.append((self._seq, task_id, step, payload))
        self._event.set()
        return bool(await future)

    async def take(self, wait: float) -> list[tuple[int, int, int, dict[str, float]]]:
        if not self._queue:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._event.wait(), wait)
        out, self._queue = self._queue, []
        self._event.clear()
        return out

    async def answer(self, decisions: list[tuple[int, bool]]) -> None:
        for seq, stop in decisions:
            future = self._futures.pop(seq, None)
            if future is not None and not future.done():
                future.set_result(stop)

    async def started(self, slot: int, token: int) -> None:
        self._started[slot] = token

    async def was_started(self, slot: int, token: int) -> bool:
        return self._started.get(slot, -1) >= token


class _TrialActor:
    """One concurrent trial slot: a warm nasforge worker process owned by a Ray actor."""

    def __init__(
        self,
        slot: int,
        hub: Any,
        threads: int,
        preload: tuple[str, ...],
        runners: list[tuple[str, Any]],
    ) -> None:
        import ray

        from nasforge.execution.local import LocalExecutor

        self._slot = slot
        self._hub = hub
        gpu_ids = [str(g) for g in ray.get_gpu_ids()]
        # The worker sees exactly the GPUs Ray assigned (none: CUDA hidden, device="auto" is the CPU).
        env = {"CUDA_VISIBLE_DEVICES": ",".join(gpu_ids)}
        self._ex = LocalExecutor(1, threads_per_worker=threads, preload=preload, env=env)
        for key, blob in runners:
            self._ex.register(key, _Pickled(ray.get(blob) if isinstance(blob, ray.ObjectRef) else blob))
        self._ex.start()  # from the actor's main thread, which lives as long as the actor
        self._interrupted: set[int] = set()
        self._lock = threading.Lock()
        self._info = {
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "ip": ray.util.get_node_ip_address(),
            "gpus": gpu_ids,
        }

    def ready(self) -> dict[str, Any]:
        return self._info

    def register(self, key: str, blob: bytes) -> None:
        self._ex.register(key, _Pickled(blob))

    def _report(self, task_id: int, step: int, payload: Any) -> bool:
        import ray

        return bool(ray.get(self._hub.report.remote(task_id, step, payload)))

    def run(self, token: int, task_id: int, key: str, args: Any, timeout: float | None) -> tuple[Any, ...]:
        self._hub.started.remote(self._slot, token)
        with self._lock:
            if task_id in self._interrupted:
                self._interrupted.discard(task_id)
                return "cancelled", None, "cancelled", 0.0
        self._ex.submit(task_id, key, args, timeout)
        cancelled = False
        while True:
            done = self._ex.poll(0.1, self._report)
            if done:
                c = done[0]
                with self._lock:
                    self._interrupted.discard(task_id)
                duration = max(0.0, (c.finished or 0.0) - (c.started or 0.0))  # always both set
                return c.status, c.value, c.error, duration
            if not cancelled:
                with self._lock:
                    cancelled = task_id in self._interrupted
                if cancelled:
                    self._ex.cancel(task_id)  # kills the worker; the next poll returns the completion

    def interrupt(self, task_id: int) -> None:
        """Cancel ``task_id`` (runs in the control group, beside a running :meth:`run`)."""
        with self._lock:
            self._interrupted.add(task_id)

    def close(self) -> None:
        self._ex.shutdown()


_REMOTE: dict[str, Any] = {}


def _remote_classes() -> tuple[Any, Any]:
    if not _REMOTE:
        ray = _import_ray()
        _REMOTE["hub"] = ray.remote(_Hub)
        _REMOTE["trial"] = ray.remote(concurrency_groups={"control": 1})(_TrialActor)
    return _REMOTE["hub"], _REMOTE["trial"]


# -- the executor -----------------------------------------------------------------------------------
@dataclass(eq=False, slots=True)
class _Slot:
    index: int
    name: str
    actor: Any
    ready_ref: Any
    ready: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    task: int | None = None
    token: int = -1
    ref: Any = None
    key: str = ""
    args: Any = None
    timeout: float | None = None
    submitted: float = 0.0
    deadline: float | None = None

    @property
    def worker(self) -> str:
        ip = self.info.get("ip")
        return f"{self.name}@{ip}" if ip else self.name


def _positive_number(name: str, value: Any, allow_zero: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        what = "a non-negative number" if allow_zero else "a positive number"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)


def _death_reason(exc: BaseException) -> str:
    """The informative part of Ray's actor-death message, on one line."""
    text = str(exc)
    for marker in ("The actor is dead because", "The actor died because", "The actor died"):
        at = text.find(marker)
        if at >= 0:
            text = text[at:]
            break
    text = " ".join(text.split())
    cut = text.find(" Some common causes")
    if cut > 0:
        text = text[:cut]
    return f"{type(exc).__name__}: {text[:500]}"


class RayExecutor(Executor):
    """Runs each trial in a warm Ray actor with its own resource request; the driver stays the only writer.

    * ``address``: ``None`` starts a private local Ray instance (dashboard off, loopback only;
      ``num_cpus`` / ``num_gpus`` size it, ``init_kwargs`` go to ``ray.init``) — unless this
      process is already connected to Ray, whose connection is then used, or ``RAY_ADDRESS`` is
      set (as in a Ray job), whose cluster is then joined; ``"auto"`` joins the
      cluster started on this machine with ``ray start``; ``"ray://head:10001"`` (Ray Client) or
      ``"head:6379"`` joins a remote one.
    * ``num_cpus_per_trial`` / ``num_gpus_per_trial``: each trial actor's resource request (Ray
      schedules on it; fractions share a GPU). The trial's worker uses that many torch threads and
      sees exactly the GPUs Ray assigned (``CUDA_VISIBLE_DEVICES``), so ``device="auto"`` trains
      on them, and on the CPU when none was requested.
    * ``runtime_env``: Ray's runtime environment of the trial actors (``{"pip": [...]}``,
      ``{"py_modules": [...]}``, ``{"env_vars": {...}}``); nasforge itself must be importable on
      the nodes (installed there, or shipped with ``py_modules``).
    * ``max_concurrency``: trials in flight (the experiment's ``concurrency``); None: as many as
      the cluster's resources hold when the executor starts.

    Example::

        from nasforge.execution import RayExecutor

        exp = Experiment(space, strategy, evaluator, max_trials=200, store="runs/search.db",
                         executor=RayExecutor(address="auto", num_gpus_per_trial=1))
        exp.run()
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        num_cpus_per_trial: float = 1,
        num_gpus_per_trial: float = 0,
        runtime_env: dict[str, Any] | None = None,
        max_concurrency: int | None = None,
        *,
        preload: Iterable[str] = (),
        num_cpus: int | None = None,
        num_gpus: int | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ):
        if address is not None and (not isinstance(address, str) or not address):
            raise ValueError(
                f"address must be None (start a local Ray instance), 'auto', 'ray://host:port' or "
                f"'host:port', got {address!r}"
            )
        self.address = address
        self.num_cpus_per_trial = _positive_number("num_cpus_per_trial", num_cpus_per_trial)
        self.num_gpus_per_trial = _positive_number("num_gpus_per_trial", num_gpus_per_trial, allow_zero=True)
        if runtime_env is not None and not isinstance(runtime_env, dict):
            raise TypeError(f"runtime_env must be a dict (Ray's runtime environment) or None, got {type(runtime_env).__name__}")
        self.runtime_env = runtime_env
        for name, value, least in (("max_concurrency", max_concurrency, 1),
                                   ("num_cpus", num_cpus, 0), ("num_gpus", num_gpus, 0)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                what = "a positive" if least else "a non-negative"
                raise ValueError(f"{name} must be {what} int or None, got {value!r}")
        self.max_concurrency = max_concurrency
        self.preload = tuple(preload)
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.init_kwargs = dict(init_kwargs or {})
        if address is not None and (num_cpus is not None or num_gpus is not None):
            raise ValueError("num_cpus / num_gpus size a local instance (address=None); a cluster has its own")
        if not ray_available():
            raise ExecutorError(_NO_RAY)
        self.threads = max(1, int(self.num_cpus_per_trial))
        self._runners: dict[str, bytes] = {}
        self._runner_refs: dict[str, Any] = {}
        self._slots: list[_Slot] = []
        self._capacity: int | None = max_concurrency
        self._started = False
        self._owns_ray = False
        self._hub: Any = None
        self._take_ref: Any = None
        self._tokens = itertools.count()
        self._names = itertools.count()
        self._start_failures = 0
        self._pending: list[Completion] = []

    # -- lifecycle ---------------------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        """``max_concurrency``, or how many trials the cluster's resources hold (connects to Ray to see)."""
        if self._capacity is None:
            self._check_resources(self._connect())
        if self._capacity is None:  # pragma: no cover - _check_resources sets it or raises
            raise ExecutorError("could not find the Ray cluster's capacity")
        return self._capacity

    def _connect(self) -> Any:
        ray = _import_ray()
        if not ray.is_initialized():
            address = self.address or os.environ.get("RAY_ADDRESS") or None
            if address is None:
                start_local_ray(self.num_cpus, self.num_gpus, **self.init_kwargs)
            else:  # given, or set by the cluster (a Ray job sets RAY_ADDRESS)
                connect_ray(address, **self.init_kwargs)
            self._owns_ray = True
        elif self.address is not None and not self._owns_ray:
            logger.info("this process is already connected to Ray; using that connection, not %r", self.address)
        return ray

    def start(self) -> None:
        if self._started:
            return
        ray = self._connect()
        self._started = True
        try:
            self._check_resources(ray)
            hub_cls, _ = _remote_classes()
            options: dict[str, Any] = {"num_cpus": 0, **_NO_RETRIES}
            strategy = self._driver_node_strategy(ray)
            if strategy is not None:
                options["scheduling_strategy"] = strategy
            self._hub = hub_cls.options(**options).remote()
            self._slots = [self._new_slot(i) for i in range(self.capacity)]
        except BaseException:
            self.shutdown()
            raise

    @staticmethod
    def _driver_node_strategy(ray: Any) -> Any:
        try:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            return NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=True)
        except Exception:  # noqa: BLE001 - Ray Client: the driver is not on a node
            return None

    def _check_resources(self, ray: Any) -> None:
        total = ray.cluster_resources()
        cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
        fits = math.floor(cpus / self.num_cpus_per_trial + 1e-9)
        if self.num_gpus_per_trial > 0:
            fits = min(fits, math.floor(gpus / self.num_gpus_per_trial + 1e-9))
        ask = f"num_cpus_per_trial={self.num_cpus_per_trial:g}, num_gpus_per_trial={self.num_gpus_per_trial:g}"
        have = f"the Ray cluster has {cpus:g} CPU(s) and {gpus:g} GPU(s) now"
        if self._capacity is None:
            if fits < 1:
                raise ExecutorError(f"no trial fits: {ask}, but {have}; lower the request or add nodes")
            self._capacity = fits
        elif fits < self._capacity:
            logger.warning(
                "max_concurrency=%d but only %d trial(s) fit (%s; %s): the others wait for resources",
                self._capacity, max(fits, 0), ask, have,
            )

    def _new_slot(self, index: int) -> _Slot:
        ray = _import_ray()
        _, trial_cls = _remote_classes()
        cpus, gpus = self.num_cpus_per_trial, self.num_gpus_per_trial
        options: dict[str, Any] = {"num_cpus": cpus, "num_gpus": gpus, **_NO_RETRIES}
        if self.runtime_env is not None:
            options["runtime_env"] = self.runtime_env
        for key, blob in self._runners.items():
            if key not in self._runner_refs:
                self._runner_refs[key] = ray.put(blob)
        runners = list(self._runner_refs.items())
        actor = trial_cls.options(**options).remote(index, self._hub, self.threads, self.preload, runners)
        name = f"ray-{next(self._names)}"
        return _Slot(index, name, actor, actor.ready.remote())

    def shutdown(self) -> None:
        if not self._started:
            self._release()  # capacity may have connected
            return
        ray = _import_ray()
        slots, self._slots = self._slots, []
        try:
            for s in slots:
                if s.task is not None:  # a running trial ends at once (its worker is killed)
                    s.actor.interrupt.options(concurrency_group="control").remote(s.task)
            if self._hub is not None:  # a trial waiting for a report's answer gets an error instead
                self._kill(self._hub)
            closing = [s.actor.close.remote() for s in slots]
            if closing:  # each actor stops its worker process (and what it started)
                ray.wait(closing, num_returns=len(closing), timeout=15)
            for s in slots:
                self._kill(s.actor)
            self._wait_gone([s.actor for s in slots], 15.0)
        finally:
            self._hub = None
            self._take_ref = None
            self._runner_refs = {}
            self._pending = []
            self._started = False
            self._release()

    def _release(self) -> None:
        """Forget the cluster's size and close the Ray connection this executor opened."""
        if self.max_concurrency is None:
            self._capacity = None
        if self._owns_ray:
            self._owns_ray = False
            _import_ray().shutdown()

    @staticmethod
    def _wait_gone(actors: list[Any], patience: float) -> None:
        """Wait until Ray reports these (killed) actors dead, so no process outlives shutdown()."""
        ray = _import_ray()
        end = time.monotonic() + patience
        pings = {actor.ready.remote(): actor for actor in actors}
        while pings and time.monotonic() < end:
            ready, _ = ray.wait(list(pings), num_returns=1, timeout=max(0.0, end - time.monotonic()))
            for ref in ready:
                actor = pings.pop(ref)
                try:
                    ray.get(ref)
                except Exception:  # noqa: BLE001 - dead, as wanted
                    continue
                time.sleep(0.05)  # still answering: the kill has not landed yet
                pings[actor.ready.remote()] = actor

    @staticmethod
    def _kill(actor: Any) -> None:
        ray = _import_ray()
        with contextlib.suppress(Exception):  # already gone
            ray.kill(actor, no_restart=True)

    # -- tasks ----------------------------------------------------------------------------------------------
    def register(self, key: str, runner: Callable[[Any, Any], Any]) -> None:
        try:
            blob = cloudpickle.dumps(runner)
        except Exception as exc:
            raise TypeError(
                f"the {key!r} runner (evaluator / model space) cannot be pickled for the Ray actors: "
                f"{exc!r}; make it picklable or use executor='inline'"
            ) from exc
        self._runners[key] = blob
        self._runner_refs.pop(key, None)
        for s in self._slots:
            s.actor.register.remote(key, blob)

    def idle_slots(self) -> int:
        return sum(1 for s in self._slots if s.task is None)

    def running(self) -> int:
        return sum(1 for s in self._slots if s.task is not None) + len(self._pending)

    def submit(self, task_id: int, key: str, args: Any, timeout: float | None = None) -> float:
        if key not in self._runners:
            raise KeyError(f"no runner registered under {key!r}; registered: {sorted(self._runners)}")
        self.start()
        slot = next((s for s in self._slots if s.task is None), None)
        if slot is None:
            raise ExecutorError("submit() called with no idle slot; check idle_slots() first")
        return self._send(slot, task_id, key, args, timeout)

    def _send(self, slot: _Slot, task_id: int, key: str, args: Any, timeout: float | None) -> float:
        slot.token = next(self._tokens)
        slot.task, slot.key, slot.args, slot.timeout = task_id, key, args, timeout
        slot.submitted = time.time()
        slot.deadline = None
        slot.ref = slot.actor.run.remote(slot.token, task_id, key, args, timeout)
        self._arm_backstop(slot)
        return slot.submitted

    def _arm_backstop(self, slot: _Slot) -> None:
        if slot.timeout and slot.ready and slot.task is not None:
            slot.deadline = time.monotonic() + slot.timeout + _BACKSTOP_GRACE

    def cancel(self, task_id: int) -> bool:
        slot = next((s for s in self._slots if s.task == task_id), None)
        if slot is None:
            return False
        logger.info("cancelling trial %s on %s", task_id, slot.worker)
        slot.actor.interrupt.options(concurrency_group="control").remote(task_id)
        return True

    def poll(self, timeout: float | None, on_report: ReportCallback) -> list[Completion]:
        ray = _import_ray()
        done: list[Completion] = self._pending
        self._pending = []
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            if done:
                return done
            waiting: dict[Any, tuple[str, _Slot | None]] = {}
            for s in self._slots:
                if not s.ready and s.ready_ref is not None:
                    waiting[s.ready_ref] = ("ready", s)
                if s.ref is not None:
                    waiting[s.ref] = ("run", s)
            if any(s.task is not None for s in self._slots):
                if self._take_ref is None:
                    self._take_ref = self._hub.take.remote(30.0)
                waiting[self._take_ref] = ("take", None)
            deadlines = [s.deadline for s in self._slots if s.deadline is not None]
            limits = deadlines if end is None else [*deadlines, end]  # wait until the first one
            wait_for = max(0.0, min(limits) - time.monotonic()) if limits else None
            if not waiting:
                if wait_for:
                    time.sleep(wait_for)
                return done
            ready, _ = ray.wait(list(waiting), num_returns=1, timeout=wait_for)
            if ready:
                ready, _ = ray.wait(list(waiting), num_returns=len(waiting), timeout=0)
            order = {"ready": 0, "take": 1, "run": 2}
            for ref in sorted(ready, key=lambda r: order[waiting[r][0]]):
                kind, slot = waiting[ref]
                if kind == "take":
                    self._take_ref = None
                    self._answer_reports(ray.get(ref), on_report)
                elif kind == "ready":
                    if slot is not None and slot.ready_ref is ref:  # not replaced meanwhile
                        self._on_ready(slot, done)
                elif slot is not None and slot.ref is ref:  # not already handled (e.g. as a death seen by _on_ready)
                    self._on_result(slot, done)
            self._check_backstops(done)
            if done or (end is not None and time.monotonic() >= end):
                return done

    def _answer_reports(self, reports: list[tuple[int, int, int, Any]], on_report: ReportCallback) -> None:
        if not reports:
            return
        decisions = [(seq, bool(on_report(task_id, step, payload))) for seq, task_id, step, payload in reports]
        self._hub.answer.remote(decisions)

    @staticmethod
    def _task_of(slot: _Slot) -> int:
        if slot.task is None:  # pragma: no cover - a result comes only from a slot running a task
            raise ExecutorError(f"Ray trial actor {slot.worker} returned a result without a task")
        return slot.task

    def _on_ready(self, slot: _Slot, done: list[Completion]) -> None:
        ray = _import_ray()
        try:
            slot.info = ray.get(slot.ready_ref)
        except Exception as exc:  # noqa: BLE001 - the actor could not start
            self._on_death(slot, exc, done, ready=False)
            return
        slot.ready = True
        self._start_failures = 0
        self._arm_backstop(slot)
        logger.debug("Ray trial actor %s ready (%s)", slot.worker, slot.info)

    def _on_result(self, slot: _Slot, done: list[Completion]) -> None:
        ray = _import_ray()
        from ray.exceptions import RayActorError

        try:
            status, value, error, duration = ray.get(slot.ref)
        except RayActorError as exc:
            self._on_death(slot, exc, done, ready=None)
            return
        except Exception as exc:  # noqa: BLE001 - our actor code failed: fail the trial, replace the actor
            cause = getattr(exc, "cause", None)
            if isinstance(cause, ExecutorError):  # its worker cannot start: as fatal as for the local executor
                raise ExecutorError(f"on Ray actor {slot.worker}: {cause}") from None
            task = self._task_of(slot)
            logger.warning("Ray trial actor %s failed running trial %s: %s", slot.worker, task, exc)
            done.append(Completion(task, "error", None, f"the Ray trial actor failed: {exc}", slot.worker, slot.submitted, time.time()))
            self._replace(slot)
            return
        finished = time.time()
        task = self._task_of(slot)
        done.append(Completion(task, status, value, error, slot.worker, finished - float(duration), finished))
        slot.task, slot.ref, slot.args, slot.deadline = None, None, None, None

    def _was_started(self, slot: _Slot) -> bool:
        ray = _import_ray()
        try:
            return bool(ray.get(self._hub.was_started.remote(slot.index, slot.token), timeout=30))
        except Exception:  # noqa: BLE001 - cannot tell: assume it ran (never run a trial twice silently)
            return True

    def _on_death(self, slot: _Slot, exc: BaseException, done: list[Completion], ready: bool | None) -> None:
        ray = _import_ray()
        if ready is None:  # did it ever start? (its ready() result is kept even after the death)
            ready = slot.ready
            if not ready:
                try:
                    ray.get(slot.ready_ref, timeout=0)
                    ready = True
                except Exception:  # noqa: BLE001
                    ready = False
        reason = _death_reason(exc)
        task, key, args, timeout = slot.task, slot.key, slot.args, slot.timeout
        started = task is not None and ready and self._was_started(slot)
        worker = slot.worker
        self._kill(slot.actor)
        if not ready:
            self._start_failures += 1
            if self._start_failures >= _MAX_START_FAILURES:
                self._slots.remove(slot)
                raise ExecutorError(
                    f"Ray trial actors keep dying during start-up ({reason}); is nasforge importable on the "
                    f"nodes (install it there or pass runtime_env={{'py_modules': [...]}})?"
                )
        new = self._replace(slot)
        if task is None:
            logger.warning("Ray trial actor %s died while idle (%s); replaced", worker, reason)
            return
        if not started:
            logger.warning("trial %s had not started when its Ray actor %s died (%s); re-sent to %s", task, worker, reason, new.name)
            self._send(new, task, key, args, timeout)
            return
        logger.warning("trial %s failed: its Ray actor %s died (%s)", task, worker, reason)
        done.append(Completion(task, "error", None, f"the Ray actor running the trial died: {reason}", worker, slot.submitted, time.time()))

    def _replace(self, slot: _Slot) -> _Slot:
        index = self._slots.index(slot)
        self._kill(slot.actor)
        slot.ref = slot.ready_ref = None  # results still in flight from it are ignored
        slot.task = None
        self._slots[index] = new = self._new_slot(slot.index)
        return new

    def _check_backstops(self, done: list[Completion]) -> None:
        t = time.monotonic()
        for s in list(self._slots):
            if s.deadline is not None and s.task is not None and t >= s.deadline:
                logger.warning("trial %s on %s: its Ray actor did not answer %g s past the time limit; killing it", s.task, s.worker, _BACKSTOP_GRACE)
                done.append(Completion(
                    s.task, "error", None,
                    f"timeout after {s.timeout:g} s (its Ray actor stopped answering and was killed)",
                    s.worker, s.submitted, time.time(),
                ))
                self._replace(s)

    def __repr__(self) -> str:
        return (
            f"RayExecutor(address={self.address!r}, num_cpus_per_trial={self.num_cpus_per_trial:g}, "
            f"num_gpus_per_trial={self.num_gpus_per_trial:g}, max_concurrency={self.max_concurrency!r})"
        )
