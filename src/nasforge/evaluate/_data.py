"""The data forms a supervised evaluator accepts, behind one small interface.

* ``(inputs, targets)`` tuples of tensors / numpy arrays and 2-tensor ``TensorDataset``\\s: kept
  in memory and batched by indexing (the fast path);
* any map-style dataset (``__getitem__`` + ``__len__``): batched with a ``DataLoader``;
* a ``DataLoader``: iterated as it is (its own batch size, sampler, collate function, workers);
* a function of no arguments returning one of the above: called where the evaluator runs (in
  the worker process), once, so large data never travels with the evaluator.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import ConcatDataset, DataLoader, IterableDataset, TensorDataset

__all__ = ["Data", "as_data", "describe_data", "resolve_device"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The one device resolver: ``None`` / ``"auto"`` is the GPU torch currently uses (``cuda:0`` unless a
    process chose another with ``torch.cuda.set_device``; executors assign a worker's GPUs through
    ``CUDA_VISIBLE_DEVICES``, so that is the worker's own), else the CPU. CUDA is not initialised here."""
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", torch.cuda.current_device() if torch.cuda.is_initialized() else 0)
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; valid: 'auto', 'cpu', 'cuda', 'cuda:0', …") from None


def _array_like(value: Any) -> bool:
    return isinstance(value, torch.Tensor) or hasattr(value, "__array__")


class Data:
    """A data split: ``batches(batch_size, shuffle, generator)`` yields raw batches."""

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def batches(self, batch_size: int, shuffle: bool, generator: torch.Generator | None) -> Iterator[Any]:  # pragma: no cover
        raise NotImplementedError

    def num_batches(self, batch_size: int) -> int | None:
        try:
            return -(-len(self) // batch_size)
        except TypeError:
            return None


class Tensors(Data):
    """An in-memory ``(X, y)`` pair batched by indexing (no DataLoader overhead)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x = x
        self.y = y

    def __len__(self) -> int:
        return len(self.y)

    def batches(self, batch_size: int, shuffle: bool, generator: torch.Generator | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if shuffle:
            yield from self.ordered_batches(torch.randperm(len(self.y), generator=generator), batch_size, generator)
        else:
            for i in range(0, len(self.y), batch_size):
                yield self.x[i : i + batch_size], self.y[i : i + batch_size]

    def ordered_batches(self, order: Sequence[int] | torch.Tensor, batch_size: int,
                        generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of the samples at the positions ``order``, in that order (a shard, a fixed subset, ...)."""
        order = torch.as_tensor(order, dtype=torch.long)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            yield self.x[idx], self.y[idx]


class MapDataset(Data):
    """Any map-style dataset, batched with a DataLoader of the evaluator's batch size."""

    def __init__(self, dataset: Any, num_workers: int = 0):
        self.dataset = dataset
        self.num_workers = num_workers

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self, batch_size: int, shuffle: bool, generator: torch.Generator | None) -> Iterator[Any]:
        yield from DataLoader(self.dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=self.num_workers)

    def ordered_batches(self, order: Sequence[int] | torch.Tensor, batch_size: int,
                        generator: torch.Generator | None = None) -> Iterator[Any]:
        """Batches of the samples at the positions ``order``; ``generator`` seeds the loader (workers' base
        seed), which would otherwise draw from the global RNG."""
        loader_gen = None if generator is None else torch.Generator().manual_seed(int(torch.randint(0, 2**62, (), generator=generator)))
        sampler = [int(i) for i in order]
        return iter(DataLoader(self.dataset, batch_size=batch_size, sampler=sampler, num_workers=self.num_workers, generator=loader_gen))


class Loader(Data):
    """A user's DataLoader, iterated as it is (its batch size and shuffling win)."""

    def __init__(self, loader: Any):
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader.dataset)

    def num_batches(self, batch_size: int) -> int | None:
        try:
            return len(self.loader)
        except TypeError:
            return None

    def batches(self, batch_size: int, shuffle: bool, generator: torch.Generator | None) -> Iterator[Any]:
        yield from self.loader


class Chain(Data):
    """Two splits one after the other (train+val when one of them cannot be merged into one dataset)."""

    def __init__(self, first: Data, second: Data):
        self.first = first
        self.second = second

    def __len__(self) -> int:
        return len(self.first) + len(self.second)

    def num_batches(self, batch_size: int) -> int | None:
        a, b = self.first.num_batches(batch_size), self.second.num_batches(batch_size)
        return None if a is None or b is None else a + b

    def batches(self, batch_size: int, shuffle: bool, generator: torch.Generator | None) -> Iterator[Any]:
        yield from itertools.chain(self.first.batches(batch_size, shuffle, generator), self.second.batches(batch_size, shuffle, generator))


def _as_dataset(data: Data) -> Any:
    if isinstance(data, Tensors):
        return TensorDataset(data.x, data.y)
    if isinstance(data, MapDataset):
        return data.dataset
    if isinstance(data, Loader) and not isinstance(data.loader.dataset, IterableDataset):
        return data.loader.dataset
    return None


def concat(first: Data, second: Data) -> Data:
    """``first`` followed by ``second`` as one split (used to retrain on train+val)."""
    if isinstance(first, Tensors) and isinstance(second, Tensors):
        return Tensors(torch.cat([first.x, second.x]), torch.cat([first.y, second.y]))
    a, b = _as_dataset(first), _as_dataset(second)
    if a is None or b is None:
        return Chain(first, second)
    merged: Any = ConcatDataset([a, b])
    loader = next((d.loader for d in (first, second) if isinstance(d, Loader)), None)
    if loader is None:
        workers = max(getattr(first, "num_workers", 0), getattr(second, "num_workers", 0))
        return MapDataset(merged, workers)
    return Loader(
        DataLoader(
            merged,
            batch_size=loader.batch_size or 1,
            shuffle=True,
            collate_fn=loader.collate_fn,
            num_workers=loader.num_workers,
            drop_last=loader.drop_last,
            pin_memory=loader.pin_memory,
        )
    )


def as_data(data: Any, name: str, num_workers: int, prepare_targets: Callable[[torch.Tensor, str], torch.Tensor]) -> Data:
    """Wrap one split given in any accepted form (see the module docstring); clear errors otherwise."""
    if isinstance(data, DataLoader):
        if not isinstance(data.dataset, IterableDataset) and len(data.dataset) == 0:  # type: ignore[arg-type]
            raise ValueError(f"{name} is empty (its DataLoader's dataset has no samples)")
        return Loader(data)
    if isinstance(data, TensorDataset):
        if len(data.tensors) < 2:
            raise ValueError(f"{name}: a TensorDataset must hold (inputs, targets) or (input_1, …, input_n, targets), it holds {len(data.tensors)} tensor")
        if len(data.tensors) == 2:
            data = tuple(data.tensors)
    if isinstance(data, (tuple, list)) and len(data) == 2 and _array_like(data[0]) and _array_like(data[1]):
        x, y = (torch.as_tensor(v) for v in data)
        if x.dim() == 0 or y.dim() == 0:
            raise ValueError(f"{name}: inputs and targets must have a sample dimension, got shapes {tuple(x.shape)} and {tuple(y.shape)}")
        if len(x) != len(y):
            raise ValueError(f"{name}: inputs and targets differ in length ({len(x)} vs {len(y)})")
        if len(y) == 0:
            raise ValueError(f"{name} is empty")
        if x.dtype == torch.float64:
            x = x.float()
        return Tensors(x.contiguous(), prepare_targets(y, name))
    if isinstance(data, IterableDataset):
        raise TypeError(f"{name}: an IterableDataset has no length or indexing; wrap it in a DataLoader (its batches are used as they are)")
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (str, bytes, dict)):
        if len(data) == 0:
            raise ValueError(f"{name} is empty")
        return MapDataset(data, num_workers)
    raise TypeError(
        f"{name} must be a tuple (inputs, targets) of tensors / arrays, a TensorDataset, a map-style dataset "
        f"(with __getitem__ and __len__), a DataLoader, or a function returning one of these; got {type(data).__name__}"
    )


def describe_data(data: Any) -> Any:
    """A short JSON description of a split for the experiment's identity (form and size, not content)."""
    if data is None:
        return None
    if isinstance(data, Tensors):
        return {"form": "tensors", "n": len(data), "x": list(data.x.shape[1:]), "y": list(data.y.shape[1:])}
    if isinstance(data, MapDataset):
        return {"form": "dataset", "type": type(data.dataset).__qualname__, "n": len(data)}
    if isinstance(data, Loader):
        loader = data.loader
        out: dict[str, Any] = {"form": "dataloader", "type": type(loader.dataset).__qualname__, "batch_size": loader.batch_size}
        with contextlib.suppress(TypeError):  # an IterableDataset has no length
            out["n"] = len(loader.dataset)
        return out
    if callable(data):
        return {"form": "function", "name": getattr(data, "__qualname__", type(data).__qualname__)}
    return {"form": type(data).__name__}
