"""Which GPU each worker sees: ``CUDA_VISIBLE_DEVICES`` per worker process.

A worker that is given one GPU sees it as ``cuda:0``, so an evaluator's ``device="auto"``
(``cuda`` when CUDA is available) trains on the GPU its worker was assigned; a worker given
no GPU (``CUDA_VISIBLE_DEVICES=""``) sees none and trains on the CPU.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence

__all__ = ["cuda_visible_devices_for"]


def cuda_visible_devices_for(gpus: Sequence[int | str], env: Mapping[str, str] | None = None) -> list[str]:
    """The ``CUDA_VISIBLE_DEVICES`` value of each worker, one worker per entry of ``gpus``.

    Entries are this process's device indices (``0`` is what this process calls ``cuda:0``) or
    device UUIDs (``"GPU-…"``, ``"MIG-…"``). When this process itself is restricted by
    ``CUDA_VISIBLE_DEVICES`` (e.g. ``"2,3"``), index 0 means physical device 2, and so on, because
    a child process interprets ``CUDA_VISIBLE_DEVICES`` against the physical devices. An entry may
    repeat (``[0, 0, 1, 1]``: two workers share each GPU).

    >>> cuda_visible_devices_for([0, 1], {"CUDA_VISIBLE_DEVICES": "2,3"})
    ['2', '3']
    """
    env = os.environ if env is None else env
    if isinstance(gpus, (str, bytes)) or not isinstance(gpus, Sequence) or len(gpus) == 0:
        raise ValueError(
            f"gpus must be a non-empty list of GPU indices (one worker per entry, e.g. [0, 1]), got {gpus!r}"
        )
    value = env.get("CUDA_VISIBLE_DEVICES")
    visible = None if value is None else [part.strip() for part in value.split(",") if part.strip()]
    out = []
    for gpu in gpus:
        if isinstance(gpu, str) and gpu.startswith(("GPU-", "MIG-")):
            if visible and gpu not in visible:
                raise ValueError(
                    f"gpus entry {gpu!r} is not among this process's CUDA_VISIBLE_DEVICES {visible}; valid: "
                    f"indices 0..{len(visible) - 1} or one of those ids"
                )
            out.append(gpu)
            continue
        if isinstance(gpu, bool) or not isinstance(gpu, numbers.Integral) or gpu < 0:
            raise ValueError(
                f"gpus entry {gpu!r} is not a GPU index; valid: non-negative ints (this process's cuda:N) "
                f"or device UUIDs ('GPU-…')"
            )
        index = int(gpu)
        if visible is None:
            out.append(str(index))
        elif not visible:
            raise ValueError(
                f"gpus={list(gpus)!r} but CUDA_VISIBLE_DEVICES is empty here: this process sees no GPU to hand out"
            )
        elif index >= len(visible):
            raise ValueError(
                f"gpus entry {index} is out of range: this process sees {len(visible)} GPU(s) "
                f"(CUDA_VISIBLE_DEVICES={','.join(visible)!r}); valid indices: 0..{len(visible) - 1}"
            )
        else:
            out.append(visible[index])
    return out
