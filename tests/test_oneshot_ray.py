"""One-shot search data-parallel on a local Ray cluster through Ray Train's TorchTrainer (gloo, 2 workers)."""

from __future__ import annotations

import pytest
import torch

from tests.oneshot_dist_worker import half_batch_run, make_trainer, small_model, tiny_data

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pytest.importorskip("ray.train", reason="Ray Train is not installed (pip install nasforge[ray])", exc_type=ImportError)

# a local Ray cluster and Ray Train's worker group take minutes on a loaded 2-core machine (3 min measured)
pytestmark = [pytest.mark.gloo, pytest.mark.slow]


def build_darts():
    return make_trainer("darts", small_model(), tiny_data(n=128), batch_size=8, epochs=3)


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    ray.init(num_cpus=2, include_dashboard=False, address="local", log_to_driver=False,
             _temp_dir=None, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield tmp_path_factory.mktemp("ray_train")
    ray.shutdown()


def test_fit_on_ray_two_workers_match_one_process(local_ray):
    from nasforge.oneshot.ray import fit_on_ray

    result = fit_on_ray(build_darts, num_workers=2, storage_path=str(local_ray), name="darts2")
    assert result.world_size == 2
    one_arch, one_alpha = half_batch_run("darts", batch_size=16)  # 1 rank, the same global batches
    assert result.arch == one_arch
    assert len(result.history) == 3 and all("loss" in h for h in result.history)
    probs = {k: torch.softmax(torch.tensor(v), -1) for k, v in one_alpha.items()}
    for label, p in result.arch_probabilities.items():
        assert torch.allclose(torch.tensor(list(p.values())), probs[label], atol=1e-4)
