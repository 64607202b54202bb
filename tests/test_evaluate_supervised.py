"""Supervised / Regression / Classification on every data form, real training, real metrics."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import nasforge.nn as nn
from nasforge import Experiment, TrialStatus
from nasforge.evaluate import Classification, Regression, Supervised
from nasforge.strategy import Random


class Reg(nn.ModelSpace):
    def __init__(self):
        super().__init__()
        hidden = nn.ValueChoice([8, 16], label="hidden")
        self.fc1 = nn.Linear(3, hidden)
        self.act = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def linear_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([1.5, -2.0, 0.5]) + 0.3 + 0.05 * torch.randn(n, generator=g)
    return x, y


TRAIN, VAL, TEST = linear_data(256, 0), linear_data(64, 1), linear_data(64, 2)


class Ctx:
    trial_id = 0
    seed = 0
    arch: dict = {}

    def __init__(self):
        self.reports = []

    def report(self, step, metrics):
        self.reports.append((step, metrics))


class MapStyle(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def val_loader():
    return DataLoader(TensorDataset(*VAL), batch_size=16)


def test_regression_metrics_are_the_textbook_ones():
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    torch.manual_seed(0)
    model = Reg().freeze({"hidden": 8, "act": 0})
    ev = Regression(TRAIN, VAL, extra_metrics=("mse", "mae", "rmse", "r2"), eval_batch_size=7)
    assert ev.metric == "val_mse" and ev.mode == "min"
    scores = ev.score(model, VAL)
    with torch.no_grad():
        pred = model(VAL[0]).squeeze(-1).double().numpy()
    truth = VAL[1].double().numpy()
    assert scores["mse"] == pytest.approx(mean_squared_error(truth, pred), rel=1e-6)  # float32 outputs of batches of 7 vs one batch
    assert scores["mae"] == pytest.approx(mean_absolute_error(truth, pred), rel=1e-6)
    assert scores["rmse"] == pytest.approx(mean_squared_error(truth, pred) ** 0.5, rel=1e-6)
    assert scores["r2"] == pytest.approx(r2_score(truth, pred), rel=1e-6)
    assert scores["loss"] == pytest.approx(scores["mse"], rel=1e-5)  # (N,1) vs (N,): no broadcasting
    # (N, 2) targets: r2 averaged over outputs like scikit-learn's default
    two = Supervised((TRAIN[0], torch.stack([TRAIN[1], -TRAIN[1]], 1)), (VAL[0], torch.stack([VAL[1], 2 * VAL[1]], 1)),
                     loss="mse", metric="r2")
    lin = torch.nn.Linear(3, 2)
    with torch.no_grad():
        p2 = lin(VAL[0]).double().numpy()
    t2 = np.stack([VAL[1].numpy(), 2 * VAL[1].numpy()], 1)
    assert two.mode == "max" and two.score(lin, two.split("val_data"))["r2"] == pytest.approx(r2_score(t2, p2), rel=1e-6)


def test_every_data_form_gives_the_same_scores():
    model = Reg().freeze({"hidden": 16, "act": 1})
    forms = [
        VAL,
        TensorDataset(*VAL),
        MapStyle(*VAL),
        (VAL[0].numpy().astype(np.float64), VAL[1].numpy().astype(np.float64)),
        DataLoader(TensorDataset(*VAL), batch_size=5),
        val_loader,
        lambda: MapStyle(*VAL),
        (VAL[0], VAL[1].unsqueeze(1)),  # (N, 1) targets
    ]
    seen = []
    for val in forms:
        ev = Regression(TRAIN, val, extra_metrics=("mae",))
        seen.append(ev.score(model, ev.split("val_data")))
    for s in seen[1:]:
        assert s["mse"] == pytest.approx(seen[0]["mse"], rel=1e-5) and s["mae"] == pytest.approx(seen[0]["mae"], rel=1e-5)


def test_regression_learns_on_dataloaders_and_retrains_on_train_plus_val():
    train = DataLoader(TensorDataset(*TRAIN), batch_size=32, shuffle=True)
    ev = Regression(train, val_loader, test_data=DataLoader(TensorDataset(*TEST), batch_size=64), epochs=40, lr=3e-2,
                    final_epochs=40)
    model = Reg().freeze({"hidden": 16, "act": 0})
    before = ev.score(model, TEST)["mse"]
    ctx = Ctx()
    out = ev.evaluate(model, ctx)
    assert [s for s, _ in ctx.reports] == list(range(1, 41))
    assert {"val_mse", "val_mae", "val_loss", "loss", "best_val_mse", "params", "train_time"} <= set(out)
    assert out["val_mse"] < 0.1 * before and out["best_val_mse"] <= out["val_mse"]
    fresh = Reg().freeze({"hidden": 16, "act": 0}, reinit=True)
    ctx = Ctx()
    test = ev.test(fresh, ctx, retrain=True)
    assert test["test_mse"] < 0.1 * before and test["epochs"] == 40.0
    assert "val_mse" not in ctx.reports[-1][1]  # retrained on train+val: nothing held out to validate on
    ctx = Ctx()
    assert "val_mse" in (ev.test(Reg().freeze({"hidden": 8, "act": 1}, reinit=True), ctx, retrain=False) | ctx.reports[-1][1])


def test_functions_build_data_in_the_worker_and_never_travel(tmp_path):
    calls = []

    def train_data():
        calls.append("train")
        return DataLoader(TensorDataset(*TRAIN), batch_size=64, shuffle=True)

    ev = Regression(train_data, val_loader, epochs=2, lr=1e-2)
    assert calls == []  # nothing is built in the constructor
    ev.evaluate(Reg().freeze({"hidden": 8, "act": 0}), Ctx())
    assert calls == ["train"]
    ev.evaluate(Reg().freeze({"hidden": 8, "act": 0}), Ctx())
    assert calls == ["train"]  # built once per process
    import cloudpickle

    shipped = pickle.loads(cloudpickle.dumps(ev))
    assert shipped._data == {"test_data": None}  # the built loaders stay behind
    exp = Experiment(Reg(), Random(dedup=True), Regression(train_data, val_loader, epochs=2, lr=1e-2), max_trials=2,
                     executor="local", concurrency=1, store=tmp_path / "r.db", name="reg")
    exp.run()
    trials = exp.trials()
    assert [t.status for t in trials] == [TrialStatus.SUCCEEDED] * 2
    assert all(t.metrics["val_mse"] > 0 and t.worker == "local-0" for t in trials)


def test_classification_takes_float_and_soft_targets_and_dataloaders():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (120,), generator=g)
    x = torch.nn.functional.one_hot(y, 3).float() * 3 + 0.3 * torch.randn(120, 3, generator=g)
    lin = torch.nn.Linear(3, 3)
    hard = Classification((x, y), (x, y)).accuracy(lin, (x, y))
    assert Classification((x, y.double()), (x, y.double())).accuracy(lin, (x, y.double())) == hard
    soft = Classification((x, torch.nn.functional.one_hot(y, 3).double()), (x, y))
    assert soft.accuracy(lin, (x, torch.nn.functional.one_hot(y, 3).float()))[0] == hard[0]
    loader = DataLoader(TensorDataset(x, y.float()), batch_size=16, shuffle=True)
    ev = Classification(loader, DataLoader(TensorDataset(x, y), batch_size=50), epochs=15, lr=5e-2)
    out = ev.evaluate(torch.nn.Linear(3, 3), Ctx())
    assert out["val_acc"] > 0.9 and ev.metric == "val_acc" and ev.mode == "max"
    bce = Supervised((x, (y == 0).float()), (x, (y == 0).float()), loss="bce", metric="acc", epochs=20, lr=5e-2)
    assert bce.evaluate(torch.nn.Linear(3, 1), Ctx())["val_acc"] > 0.9


def two_inputs(n, seed):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g)
    return a, b, (a * b).sum(1)


class Pair(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 1)

    def forward(self, a, b):
        return self.fc(torch.cat([a, b], 1))


def test_custom_metric_multi_input_batches_and_user_mistakes():
    def max_error(outputs, targets):
        return float((outputs.squeeze(-1) - targets).abs().max())

    data = TensorDataset(*two_inputs(64, 0))
    ev = Supervised(data, data, loss="mse", metric=max_error, mode="min", extra_metrics=("mae",), epochs=1)
    assert ev.metric == "val_max_error"
    scores = ev.score(Pair(), data)
    assert set(scores) == {"loss", "max_error", "mae"} and scores["max_error"] >= scores["mae"]
    with pytest.raises(ValueError, match="custom function: give mode='max' or mode='min'"):
        Supervised(data, data, loss="mse", metric=max_error)
    with pytest.raises(ValueError, match="mode must be 'max' or 'min', got 'best'"):
        Supervised(data, data, loss="mse", metric=max_error, mode="best")
    with pytest.raises(ValueError, match="not a lambda"):
        Supervised(data, data, loss="mse", metric=lambda o, t: 0.0, mode="min")
    with pytest.raises(ValueError, match="unknown loss 'hinge'; valid: 'cross_entropy', 'mse'"):
        Supervised(data, data, loss="hinge")
    with pytest.raises(ValueError, match="unknown metric 'f1'; valid: 'acc'"):
        Supervised(data, data, metric="f1")
    with pytest.raises(ValueError, match="metric 'acc' needs a classification loss"):
        Regression(data, data, metric="acc")
    with pytest.raises(ValueError, match="use Classification"):
        Regression(data, data, loss="cross_entropy")
    with pytest.raises(TypeError, match="train_data is required"):
        Regression(None, data)
    with pytest.raises(ValueError, match="final_epochs must be a positive int"):
        Regression(data, data, final_epochs=0)

    class Stream(IterableDataset):
        def __iter__(self):
            yield from zip(TRAIN[0][:8], TRAIN[1][:8])

    with pytest.raises(TypeError, match="IterableDataset has no length .* DataLoader"):
        Regression(Stream(), VAL)
    ev = Regression(DataLoader(Stream(), batch_size=4), VAL, epochs=1)
    with pytest.raises(ValueError, match="scheduler=None"):
        ev.evaluate(Reg().freeze({"hidden": 8, "act": 0}), Ctx())
    out = Regression(DataLoader(Stream(), batch_size=4), VAL, epochs=2, scheduler=None).evaluate(
        Reg().freeze({"hidden": 8, "act": 0}), Ctx())
    assert out["val_mse"] > 0

    def no_data():
        return 3

    with pytest.raises(TypeError, match=r"train_data \(returned by .*no_data\) must be a tuple"):
        Regression(no_data, VAL).evaluate(Reg().freeze({"hidden": 8, "act": 0}), Ctx())
    with pytest.raises(TypeError, match="a batch is a dict with keys \\['x', 'y'\\]"):
        Regression([{"x": TRAIN[0][i], "y": TRAIN[1][i]} for i in range(8)], VAL, epochs=1, batch_size=4).evaluate(
            Reg().freeze({"hidden": 8, "act": 0}), Ctx())
