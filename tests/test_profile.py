import pytest
import torch

from nasforge.benchmarks.seed_model import Net
from nasforge.profile import count_flops, count_params, measure_latency


def test_params_and_flops_of_a_known_network():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 30 * 30, 10))
    assert count_params(model) == 3 * 8 * 9 + 8 + 8 * 30 * 30 * 10 + 10
    # 2 FLOPs per multiply-add: conv 3*9 MACs per output (8*30*30 outputs), linear 7200*10 MACs.
    assert count_flops(model, (1, 3, 32, 32)) == 2 * (3 * 9 * 8 * 30 * 30 + 7200 * 10)
    assert count_flops(model, (2, 3, 32, 32)) == 2 * count_flops(model, (1, 3, 32, 32))


def test_measures_on_frozen_archs_differ_where_choices_differ():
    model = Net()
    small = model.freeze({"conv1": 0, "conv2": 0, "skipconnect": 0})
    large = model.freeze({"conv1": 1, "conv2": 1, "skipconnect": 0})
    assert count_params(large) > count_params(small)
    assert count_flops(large, (1, 3, 32, 32)) > count_flops(small, (1, 3, 32, 32))
    latency = measure_latency(small, (1, 3, 32, 32), repeats=5, warmup=1)
    assert 0 < latency < 10
    assert small.training  # restored after measuring


def test_bad_shape_is_named():
    with pytest.raises(ValueError, match="input_shape.*\\(1, -3\\)"):
        count_flops(torch.nn.Linear(2, 2), (1, -3))
