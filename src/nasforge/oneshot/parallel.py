"""Data-parallel one-shot training and thread counts: what the trainers need from ``torch.distributed``.

A trainer is data-parallel when it is built inside an initialised default process group with more
than one rank (``torchrun``, Ray Train's ``TorchTrainer``, or ``torch.distributed.init_process_group``
by hand). Then:

* every rank uses the same seed (rank 0's is broadcast), hence the same train/validation split,
  the same per-epoch order of the data and the same sampled paths (each trainer's own
  ``torch.Generator`` advances identically on every rank);
* each rank reads its shard of that order (:class:`torch.utils.data.DistributedSampler`);
* the weights are trained through :class:`~torch.nn.parallel.DistributedDataParallel` (gradients
  averaged, rank 0's initial weights and buffers broadcast); the architecture parameters (α,
  Dirichlet concentrations, the ENAS controller) are broadcast from rank 0 at the start and their
  gradients averaged with :func:`allreduce_mean_` before every architecture step;
* scores that decide something (rewards, sub-network accuracies) are summed over ranks;
* logging happens on rank 0; rank 0's export is broadcast, so every rank returns the same arch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistContext", "allreduce_mean_", "allreduce_sum", "broadcast_", "broadcast_object", "default_threads"]


def _cgroup_cpu_limit() -> int | None:
    """The CPU quota of the process's cgroup (v2 ``cpu.max`` or v1 ``cfs_quota_us``), rounded up; None when unlimited."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(1, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota_us > 0 and period_us > 0:
            return max(1, -(-quota_us // period_us))
    except (OSError, ValueError):
        pass
    return None


def default_threads() -> int:
    """The default intra-op thread count of a one-shot trainer.

    The number of *physical* cores this process may run on (its CPU affinity, hyper-threads of one
    core counted once, capped by a cgroup CPU quota), divided among the processes of this machine
    that train together (``LOCAL_WORLD_SIZE`` set by ``torchrun`` / Ray Train), and never more than
    torch's current setting (so ``OMP_NUM_THREADS`` or an earlier ``torch.set_num_threads`` lowers
    it); at least 1. Torch's own default counts the machine's cores, not the process's share, and
    oversubscribes when several trainers or ranks share a machine.
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = list(range(os.cpu_count() or 1))
    cores = set()
    for c in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{c}/topology")
        try:
            core = (topology / "core_id").read_text().strip()
            cores.add(((topology / "physical_package_id").read_text().strip(), core))
        except OSError:
            cores.add(("cpu", str(c)))
    n = len(cores) or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        n = min(n, limit)
    try:
        local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local = 1
    return max(1, min(n // local, torch.get_num_threads()))


@dataclass
class DistContext:
    """Rank and world size of a data-parallel run (``enabled`` False: a single process)."""

    enabled: bool = False
    rank: int = 0
    world_size: int = 1

    @classmethod
    def detect(cls, distributed: bool | None) -> DistContext:
        """``distributed=None``: data-parallel when a process group with > 1 rank is initialised."""
        ready = dist.is_available() and dist.is_initialized()
        if distributed is None:
            distributed = ready and dist.get_world_size() > 1
        if not distributed:
            return cls()
        if not ready:
            raise RuntimeError(
                "distributed=True needs an initialised default process group: call "
                "torch.distributed.init_process_group(...) (torchrun sets the environment) before building the trainer"
            )
        return cls(True, dist.get_rank(), dist.get_world_size())

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def allreduce_mean_(tensors: list[torch.Tensor]) -> None:
    """Average ``tensors`` (in place) over all ranks with one flat all-reduce."""
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset:offset + n].view_as(t))
        offset += n


def allreduce_sum(values: list[float], device: torch.device | str = "cpu") -> list[float]:
    """The sums of ``values`` over all ranks (float64)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_(tensors: list[torch.Tensor], src: int = 0) -> None:
    """Overwrite ``tensors`` on every rank with rank ``src``'s values."""
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (pickled)."""
    box = [obj]
    dist.broadcast_object_list(box, src)
    return box[0]
