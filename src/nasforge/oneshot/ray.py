"""Data-parallel one-shot search on a Ray cluster through Ray Train's ``TorchTrainer`` (the ``ray`` extra).

Ray Train starts ``num_workers`` processes (on any nodes of the cluster), initialises the
``torch.distributed`` process group among them (gloo on CPU, NCCL with GPUs) and runs a loop in
each; here that loop builds the one-shot trainer with ``build()`` **inside** the worker (so the
trainer sees the process group and trains data-parallel, see :mod:`nasforge.oneshot.parallel`),
fits it and reports rank 0's export. Every worker returns the same arch, so any report is it::

    from nasforge.oneshot.ray import fit_on_ray

    def build():
        model = MySpace()
        opt = torch.optim.SGD(model.parameters(), 0.025, momentum=0.9)
        return DartsTrainer(model, nn.CrossEntropyLoss(), None, opt, 10, make_dataset(), seed=0)

    result = fit_on_ray(build, num_workers=4, use_gpu=True)
    result.arch, result.history

``build`` must be picklable (a module-level function, or cloudpickle-able closure).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nasforge.space import Arch

__all__ = ["RayFitResult", "fit_on_ray"]

RESULT_FILE = "nasforge_oneshot_result.json"


@dataclass
class RayFitResult:
    """What :func:`fit_on_ray` returns: the arch, the per-epoch history and the α (rank 0's, identical on all)."""

    arch: Arch
    history: list[dict[str, float]] = field(default_factory=list)
    arch_probabilities: dict[str, Any] = field(default_factory=dict)
    world_size: int = 1


def _loop(config: dict[str, Any]) -> None:
    import ray.train

    trainer = config["build"]()
    if not getattr(trainer, "dist", None) or not trainer.dist.enabled:
        world = ray.train.get_context().get_world_size()
        if world > 1:
            raise RuntimeError("the trainer built inside the Ray Train worker is not data-parallel; "
                               "build it inside build() and leave distributed=None (or True)")
    trainer.fit()
    try:
        probs = trainer.arch_probabilities()
    except Exception:  # noqa: BLE001 - a trainer without a distribution to show
        probs = {}
    payload = {
        "arch": trainer.export(),
        "history": trainer.history,
        "arch_probabilities": {k: {str(c): p for c, p in v.items()} for k, v in probs.items()},
        "world_size": ray.train.get_context().get_world_size(),
    }
    # the result travels as a checkpoint (persisted to the run's storage), written by rank 0 only
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if ray.train.get_context().get_world_rank() == 0:
            with open(os.path.join(tmp, RESULT_FILE), "w") as f:
                json.dump(payload, f)
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report({"world_size": payload["world_size"]}, checkpoint=checkpoint)


def fit_on_ray(
    build: Callable[[], Any],
    num_workers: int = 2,
    *,
    use_gpu: bool = False,
    resources_per_worker: dict[str, float] | None = None,
    backend: str | None = None,
    storage_path: str | None = None,
    name: str | None = None,
) -> RayFitResult:
    """Run ``build().fit()`` data-parallel on ``num_workers`` Ray Train workers; returns rank 0's export.

    ``backend``: the ``torch.distributed`` backend (default: gloo on CPU, nccl with GPUs).
    ``storage_path``/``name``: where Ray Train keeps its run directory (default: Ray's). Connects to
    the running Ray cluster, or starts a local one (``ray.init()``) if none is connected.
    """
    if not callable(build):
        raise TypeError(f"build must be a callable returning a one-shot trainer, got {type(build).__name__}")
    if not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be an int >= 1, got {num_workers!r}")
    try:
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer
    except ImportError as exc:  # pragma: no cover - the ray extra is missing
        raise ImportError("fit_on_ray needs Ray Train: pip install 'nasforge[ray]'") from exc
    run_kwargs: dict[str, Any] = {"storage_path": storage_path, "name": name}
    trainer = TorchTrainer(
        _loop,
        train_loop_config={"build": build},
        torch_config=TorchConfig(backend=backend) if backend else None,
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu, resources_per_worker=resources_per_worker),
        run_config=RunConfig(**{k: v for k, v in run_kwargs.items() if v is not None}),
    )
    result = trainer.fit()
    if result.error is not None:  # pragma: no cover - Ray raises TrainingFailedError before this in practice
        raise result.error
    if result.checkpoint is None:
        raise RuntimeError("Ray Train finished without the result checkpoint of rank 0")
    with result.checkpoint.as_directory() as folder:
        with open(os.path.join(folder, RESULT_FILE)) as f:
            m = json.load(f)
    return RayFitResult(m["arch"], m["history"], m["arch_probabilities"], int(m["world_size"]))
