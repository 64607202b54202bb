"""Cost measures of a network: parameters, FLOPs and latency. Callable on any ``nn.Module``."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch

__all__ = ["count_params", "count_flops", "measure_latency"]


def _example_input(model: torch.nn.Module, input_shape: Sequence[int] | torch.Tensor, device: str | torch.device | None):
    if isinstance(input_shape, torch.Tensor):
        return input_shape if device is None else input_shape.to(device)
    if not all(isinstance(d, int) and d > 0 for d in input_shape):
        raise ValueError(f"input_shape must be a sequence of positive ints (batch first), got {tuple(input_shape)!r}")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else "cpu"
    return torch.randn(*input_shape, device=device)


def count_params(model: torch.nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; a parameter shared by several layers counts once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: torch.nn.Module, input_shape: Sequence[int] | torch.Tensor) -> int:
    """FLOPs of one forward pass on an input of ``input_shape`` (batch included).

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts as 2 FLOPs;
    matrix products and convolutions are counted, cheap element-wise ops are not).
    """
    from torch.utils.flop_counter import FlopCounterMode

    x = _example_input(model, input_shape, None)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def measure_latency(
    model: torch.nn.Module,
    input_shape: Sequence[int] | torch.Tensor,
    repeats: int = 30,
    warmup: int = 5,
    device: str | torch.device | None = None,
) -> float:
    """Median wall time in seconds of one forward pass (eval mode, no grad) after ``warmup`` runs."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    x = _example_input(model, input_shape, device)
    cuda = x.device.type == "cuda"
    was_training = model.training
    model.eval()
    times = []
    try:
        with torch.no_grad():
            for i in range(warmup + repeats):
                if cuda:
                    torch.cuda.synchronize(x.device)
                start = time.perf_counter()
                model(x)
                if cuda:
                    torch.cuda.synchronize(x.device)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return statistics.median(times)
