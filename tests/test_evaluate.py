"""Evaluators: Classification on a real nasforge.nn model space, FunctionEvaluator."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

import nasforge.nn as nn
from nasforge import Experiment, TrialStatus
from nasforge.evaluate import Classification, FunctionEvaluator
from nasforge.strategy import Random


class Tiny(nn.ModelSpace):
    def __init__(self):
        super().__init__()
        hidden = nn.ValueChoice([8, 16], label="hidden")
        self.fc1 = nn.Linear(4, hidden)
        self.act = nn.LayerChoice(OrderedDict(relu=nn.ReLU(), tanh=nn.Tanh()), label="act")
        self.fc2 = nn.Linear(hidden, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centers = torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    return centers[y] + 0.5 * torch.randn(n, 4, generator=g), y


TRAIN, VAL, TEST = blobs(240, 0), blobs(60, 1), blobs(90, 2)


class Ctx:
    trial_id = 0
    seed = 0
    arch: dict = {}

    def __init__(self):
        self.reports = []

    def report(self, step, metrics):
        self.reports.append((step, metrics))


class StopAfterFirst(Random):
    def on_report(self, trial, step, score):
        return True


def test_classification_search_reports_test_and_weights(tmp_path):
    space = Tiny()
    ev = Classification(TRAIN, VAL, test_data=TEST, epochs=3, batch_size=16, lr=3e-2, final_epochs=5)
    exp = Experiment(space, Random(dedup=True), ev, max_trials=2, executor="inline",
                     store=tmp_path / "c.db", name="tiny", seed=0)
    summary = exp.run()
    assert summary.counts == {"SUCCEEDED": 2}
    for t in exp.trials():
        assert [s for s, _ in t.reports] == [1, 2, 3]  # step = epochs completed
        assert set(t.reports[0][1]) == {"val_acc", "val_loss", "loss", "epoch"}
        assert {"val_acc", "val_loss", "loss", "params", "best_val_acc", "train_time"} <= set(t.metrics)
        assert t.metrics["val_acc"] > 0.8  # the blobs are easy
    (result,) = exp.test(top_k=1, retrain=True, weights_dir=tmp_path / "w")
    assert result.status == "SUCCEEDED" and result.metrics["test_acc"] > 0.8 and result.metrics["epochs"] == 5
    net = space.freeze(result.arch)
    net.load_state_dict(torch.load(result.weights))
    acc, _ = ev.accuracy(net, TEST)
    assert acc == pytest.approx(result.metrics["test_acc"])
    (stored,) = exp.tests()
    assert stored.metrics == result.metrics


def test_classification_in_worker_processes_and_early_stop(tmp_path):
    ev = Classification(TRAIN, VAL, epochs=3, batch_size=32, lr=1e-2)
    # one worker: importing torch costs seconds per process on a 2-core CI machine
    exp = Experiment(Tiny(), StopAfterFirst(dedup=True), ev, max_trials=2, concurrency=1,
                     executor="local", store=tmp_path / "l.db", name="stop")
    exp.run()
    trials = exp.trials()
    assert [t.status for t in trials] == [TrialStatus.STOPPED] * 2
    assert all(len(t.reports) == 1 and "val_acc" in t.metrics for t in trials)
    assert all(t.worker == "local-0" for t in trials)


def test_dataset_forms_agree():
    from torch.utils.data import Dataset, TensorDataset

    class MapStyle(Dataset):
        def __init__(self, x, y):
            self.x, self.y = x, y

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return self.x[i], self.y[i]

    model = Tiny().freeze({"hidden": 8, "act": "relu"})
    forms = [
        (TRAIN, VAL),
        (TensorDataset(*TRAIN), TensorDataset(*VAL)),
        (MapStyle(*TRAIN), MapStyle(*VAL)),
        ((TRAIN[0].numpy().astype(np.float64), TRAIN[1].numpy()), (VAL[0].numpy(), VAL[1].numpy())),
    ]
    accs = []
    for train, val in forms:
        ev = Classification(train, val, epochs=1, batch_size=64)
        accs.append(ev.accuracy(model, val)[0])
    assert len(set(accs)) == 1  # same data, same untrained model, same accuracy
    ctx = Ctx()
    out = Classification(forms[2][0], forms[2][1], epochs=2, batch_size=64, optimizer="sgd", lr=0.1,
                         scheduler=None).evaluate(model, ctx)
    assert [s for s, _ in ctx.reports] == [1, 2] and 0 <= out["val_acc"] <= 1


def test_classification_user_mistakes():
    with pytest.raises(ValueError, match="unknown optimizer 'lion'.*'adamw'"):
        Classification(TRAIN, VAL, optimizer="lion")
    with pytest.raises(ValueError, match="class indices .* non-integer values .*Regression"):
        Classification((TRAIN[0], TRAIN[1].float() + 0.5), VAL)
    with pytest.raises(ValueError, match="differ in length"):
        Classification((TRAIN[0], TRAIN[1][:5]), VAL)
    with pytest.raises(TypeError, match="val_data must be a tuple .* DataLoader"):
        Classification(TRAIN, 3)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        Classification(TRAIN, VAL, epochs=0)
    with pytest.raises(ValueError, match="unknown scheduler 'step'"):
        Classification(TRAIN, VAL, scheduler="step")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        Classification(TRAIN, VAL, device="gpu0")
    model = Tiny().freeze({"hidden": 8, "act": "relu"})
    with pytest.raises(ValueError, match="no test_data"):
        Classification(TRAIN, VAL, epochs=1).test(model, Ctx())


def test_function_evaluator_with_model_and_errors():
    seen = []

    def fn(model, ctx):
        seen.append(type(model).__name__)
        assert isinstance(model, torch.nn.Module)
        return float(sum(p.numel() for p in model.parameters()))

    exp = Experiment(Tiny(), Random(dedup=True), FunctionEvaluator(fn, metric="n_params", mode="min"),
                     max_trials=4, executor="inline")
    exp.run()
    best = exp.best()[0]
    assert best.arch["hidden"] == 8 and best.metrics["params"] == best.metrics["n_params"]
    with pytest.raises(TypeError, match="needs a callable"):
        FunctionEvaluator(3)
    with pytest.raises(ValueError, match="mode must be 'max' or 'min'"):
        FunctionEvaluator(fn, mode="up")
    with pytest.raises(NotImplementedError, match="has no test-set evaluation"):
        FunctionEvaluator(fn).test(None, Ctx())
