"""GPU assignment without a GPU: which CUDA_VISIBLE_DEVICES each worker gets (real worker processes).

Nothing here runs on a GPU; the parent's visible devices are set in the environment, the way a
scheduler or a user would restrict them, and the workers report what they see.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from nasforge.execution import LocalExecutor
from nasforge.execution.gpus import cuda_visible_devices_for


def _collect(ex, n, patience=120.0):
    done = {}
    end = time.monotonic() + patience
    while len(done) < n:
        assert time.monotonic() < end
        for c in ex.poll(1.0, lambda *a: False):
            done[c.task_id] = c
    return done


def sees(args, channel):
    from nasforge.evaluate.classification import _resolve_device

    if args == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    return {"visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "auto": str(_resolve_device("auto")), "pid": os.getpid()}


@pytest.mark.parametrize(
    "gpus, parent, expected",
    [
        ([0, 1], None, ["0", "1"]),  # no restriction: indices are the physical devices
        ([1, 0], None, ["1", "0"]),
        ([0, 1], "2,3", ["2", "3"]),  # restricted parent: cuda:0 here is physical 2
        ([1], "2,3", ["3"]),
        ([0, 0, 1, 1], "4,5", ["4", "4", "5", "5"]),  # two workers per GPU
        (["GPU-aaaa", 1], "GPU-aaaa,GPU-bbbb", ["GPU-aaaa", "GPU-bbbb"]),
        ([0], " 6 , 7 ", ["6"]),
    ],
)
def test_cuda_visible_devices_for_maps_this_process_indices(gpus, parent, expected):
    env = {} if parent is None else {"CUDA_VISIBLE_DEVICES": parent}
    assert cuda_visible_devices_for(gpus, env) == expected


@pytest.mark.parametrize(
    "gpus, parent, message",
    [
        ([], None, "non-empty list"),
        ("0,1", None, "non-empty list"),
        (3, None, "non-empty list"),
        ([-1], None, "entry -1 is not a GPU index"),
        ([True], None, "entry True is not a GPU index"),
        ([0.5], None, "entry 0.5 is not a GPU index"),
        (["cuda:1"], None, "entry 'cuda:1' is not a GPU index"),
        ([2], "0,1", r"entry 2 is out of range: this process sees 2 GPU\(s\) \(CUDA_VISIBLE_DEVICES='0,1'\); valid indices: 0..1"),
        ([0], "", "CUDA_VISIBLE_DEVICES is empty here"),
        (["GPU-cccc"], "GPU-aaaa", "'GPU-cccc' is not among"),
    ],
)
def test_bad_gpus_are_refused_with_what_is_valid(gpus, parent, message):
    env = {} if parent is None else {"CUDA_VISIBLE_DEVICES": parent}
    with pytest.raises(ValueError, match=message):
        cuda_visible_devices_for(gpus, env)


def test_local_executor_gives_each_worker_its_gpu_and_keeps_it_for_replacements(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")  # as if the driver saw two GPUs, 5 and 7
    with LocalExecutor(gpus=[0, 1]) as ex:
        assert ex.capacity == 2
        ex.register("sees", sees)
        ex.submit(0, "sees", None)
        ex.submit(1, "sees", None)
        first = _collect(ex, 2)
        by_worker = {c.worker: c.value["visible"] for c in first.values()}
        assert by_worker == {"local-0": "5", "local-1": "7"}
        assert {c.value["auto"] for c in first.values()} == {"cpu"}  # no real GPU here
        for i in (2, 3):  # both workers die; their replacements must see the same GPUs
            ex.submit(i, "sees", "die")
        died = _collect(ex, 2)
        assert all("SIGKILL" in c.error for c in died.values())
        for i in (4, 5):
            ex.submit(i, "sees", None)
        again = _collect(ex, 2)
    assert sorted(c.value["visible"] for c in again.values()) == ["5", "7"]
    assert {c.worker for c in again.values()} == {"local-2", "local-3"}  # replacements
    assert {c.value["pid"] for c in again.values()}.isdisjoint(c.value["pid"] for c in first.values())


def test_local_executor_gpus_and_n_workers_must_agree():
    with pytest.raises(ValueError, match="n_workers=4 but gpus has 2 entries"):
        LocalExecutor(4, gpus=[0, 1])
    assert LocalExecutor(2, gpus=[0, 1]).capacity == 2
    assert LocalExecutor().capacity == 2


def test_device_auto_is_the_first_visible_gpu_or_the_cpu(monkeypatch):
    import torch

    from nasforge.evaluate.classification import _resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as in a worker given one GPU
    assert _resolve_device("auto") == torch.device("cuda:0")  # cuda:0 is the GPU it was given
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # CUDA_VISIBLE_DEVICES=""
    assert _resolve_device("auto") == torch.device("cpu")
