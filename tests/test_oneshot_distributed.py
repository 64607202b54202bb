"""Data-parallel one-shot training with the gloo backend: two processes on this machine.

One spawn of two ranks runs every trainer (module-scoped fixture); each test checks one property.
Exclude with ``-m 'not gloo'`` where the platform has no gloo.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from tests.oneshot_dist_worker import (
    EXACT,
    SEED_MODEL,
    TRAINERS,
    free_port,
    half_batch_run,
    seed_model_run,
    worker,
)

pytestmark = [
    pytest.mark.gloo,
    pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="torch.distributed gloo backend not available"),
]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("gloo")
    torch.multiprocessing.start_processes(worker, args=(2, free_port(), str(out)), nprocs=2, join=True,
                                          start_method="spawn")
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.mark.parametrize("name", TRAINERS)
def test_two_ranks_export_the_same_arch_and_alpha(ranks, name):
    r0, r1 = ranks[0][name], ranks[1][name]
    assert r0["arch"] == r1["arch"]
    assert r0["alpha"] == r1["alpha"]  # bit-identical: same init (broadcast), averaged gradients, same steps
    if name in ("darts", "gdas", "drnas", "proxyless"):
        assert r0["alpha"] and any(abs(v) > 1e-6 for a in r0["alpha"].values() for v in a)  # α did move


@pytest.mark.parametrize("name", TRAINERS)
def test_two_ranks_end_with_the_same_weights(ranks, name):
    # each rank built its model from a different seed: rank 0's initial weights were broadcast
    w0, w1 = ranks[0][name]["weights"], ranks[1][name]["weights"]
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.allclose(w0[k], w1[k], atol=1e-6), k
    if name == "enas":
        for p0, p1 in zip(ranks[0][name]["controller"], ranks[1][name]["controller"]):
            assert torch.equal(p0, p1)


def test_history_is_averaged_over_ranks(ranks):
    for name in TRAINERS:
        h0, h1 = ranks[0][name]["history"], ranks[1][name]["history"]
        assert len(h0) == 2 and h0 == h1
        assert all("loss" in h and "acc" in h for h in h0)


@pytest.mark.parametrize("name", EXACT)
def test_two_ranks_on_half_the_data_match_one_rank(ranks, name):
    # no batch norm: 2 ranks x batch 8 see the same global batches as 1 rank x batch 16, so α agree to rounding
    one_arch, one_alpha = half_batch_run(name, batch_size=16)
    two_arch, two_alpha = ranks[0]["half"][name]
    assert two_arch == one_arch
    for label in one_alpha:
        assert torch.allclose(torch.tensor(one_alpha[label]), torch.tensor(two_alpha[label]), atol=1e-4), label


def test_two_ranks_on_half_the_data_match_one_rank_on_the_seed_model(ranks):
    one_arch, one_alpha = seed_model_run(batch_size=32, **SEED_MODEL)
    two_arch, two_alpha = ranks[0]["seed_model"]
    assert ranks[1]["seed_model"][0] == two_arch
    # batch norm normalises per rank (16 samples, not 32), so α differ a little; the arch is the same
    assert two_arch == one_arch
