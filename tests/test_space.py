import json
import sys

import numpy as np
import pytest

from nasforge.errors import InvalidArchError, InvalidSpaceError
from nasforge.space import Categorical, Space


def make_space():
    return Space(
        [
            Categorical([16, 32, 64], label="width"),
            Categorical(["relu", "gelu"], label="act"),
            Categorical([object(), object()], label="op"),
            Categorical([[0, 1], [0, 2], [1, 2]], label="inputs"),
        ]
    )


def test_space_is_torch_free():
    import subprocess

    code = "import nasforge, nasforge.space, nasforge.strategy, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_keys_are_values_or_indices():
    space = make_space()
    assert space["width"].values == [16, 32, 64]
    assert space["op"].values == [0, 1]  # non-JSON candidates are stored by index
    assert space["inputs"].values == [[0, 1], [0, 2], [1, 2]]
    assert space.size == 3 * 2 * 2 * 3
    assert len(space) == 4 and space.labels == ["width", "act", "op", "inputs"]


def test_same_seed_same_samples_and_json_round_trip():
    space = make_space()
    a = [space.sample(s) for s in range(20)]
    b = [space.sample(s) for s in range(20)]
    assert a == b
    assert len({json.dumps(x, sort_keys=True) for x in a}) > 5
    for arch in a:
        assert json.loads(json.dumps(arch)) == arch
        assert space.validate(json.loads(json.dumps(arch))) == arch
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    assert [space.sample(rng1) for _ in range(5)] == [space.sample(rng2) for _ in range(5)]


def test_grid_covers_space_without_duplicates():
    space = make_space()
    archs = list(space.grid())
    assert len(archs) == space.size
    assert len({json.dumps(a, sort_keys=True) for a in archs}) == space.size
    assert archs == list(space.grid())  # stable order
    assert all(space.contains(a) for a in archs)


def test_validate_errors_name_the_label():
    space = make_space()
    good = space.sample(0)
    with pytest.raises(InvalidArchError, match="missing.*'act'"):
        space.validate({k: v for k, v in good.items() if k != "act"})
    with pytest.raises(InvalidArchError, match="unknown.*'depth'"):
        space.validate({**good, "depth": 3})
    with pytest.raises(InvalidArchError, match="'width'.*valid values: \\[16, 32, 64\\]"):
        space.validate({**good, "width": 48})
    with pytest.raises(InvalidArchError, match="dict"):
        space.validate([1, 2])


def test_bool_and_int_are_distinct_candidates():
    c = Categorical([1, True, 1.0], label="x")
    assert c.values == [1, True, 1.0]
    assert c.index(True) == 1 and c.index(1.0) == 2


def test_empty_and_conflicting_choices():
    with pytest.raises(InvalidSpaceError, match="'w'.*empty"):
        Categorical([], label="w")
    space = Space([Categorical([1, 2], label="w")])
    assert space.add(Categorical([1, 2], label="w")) is space["w"]  # tied
    with pytest.raises(InvalidSpaceError, match="'w'.*different candidates"):
        space.add(Categorical([1, 3], label="w"))


def test_encodings_round_trip():
    space = make_space()
    for seed in range(10):
        arch = space.sample(seed)
        onehot = space.encode(arch)
        assert onehot.shape == (space.encoding_size("onehot"),) and onehot.sum() == len(space)
        assert space.decode(onehot) == arch
        ordinal = space.encode(arch, "ordinal")
        assert ordinal.shape == (4,) and ((0 <= ordinal) & (ordinal <= 1)).all()
        assert space.decode(ordinal, "ordinal") == arch
    with pytest.raises(ValueError, match="'binary'"):
        space.encode(space.sample(0), "binary")


def test_mutate_and_neighbors():
    space = make_space()
    arch = space.sample(1)
    for n in (1, 2):
        child = space.mutate(arch, 0, n=n)
        assert sum(child[k] != arch[k] for k in arch) == n
        assert space.contains(child)
    nbs = space.neighbors(arch)
    assert len(nbs) == sum(len(c) - 1 for c in space.values())
    assert all(sum(nb[k] != arch[k] for k in arch) == 1 for nb in nbs)


def test_fingerprint_identifies_space():
    assert make_space().fingerprint() == make_space().fingerprint()
    other = Space([Categorical([16, 32], label="width")])
    assert other.fingerprint() != make_space().fingerprint()
