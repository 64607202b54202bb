"""ONNX / TorchScript exports of frozen networks, re-loaded and compared; the CLI's export --onnx."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.benchmarks import seed_model
from nasforge.benchmarks.nasbench201 import NasBench201Space
from nasforge.benchmarks.seed_model import Net
from nasforge.export import ExportCheckError, check_frozen, to_onnx, to_torchscript

ort = pytest.importorskip("onnxruntime", reason="the export extra (onnx, onnxruntime) is not installed")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
from mnist1d_space import Mnist1dSpace  # noqa: E402

torch.set_num_threads(1)


def ort_run(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def mnist1d_archs(n_per_family: int = 2) -> list[dict]:
    space = Mnist1dSpace().space
    rng = np.random.default_rng(0)
    found: dict[str, list[dict]] = {"cnn": [], "rnn": [], "mlp": []}
    while any(len(v) < n_per_family for v in found.values()):
        arch = space.sample(rng)
        if len(found[arch["family"]]) < n_per_family:
            found[arch["family"]].append(arch)
    return [a for v in found.values() for a in v]


def networks():
    """(id, frozen net, example input): the seed model's 8 archs, the main job's families, NAS-Bench-201 and DARTS cells."""
    out = []
    seed = Net()
    for arch in seed.space.grid():
        out.append((f"seed-{arch['conv1']}{arch['conv2']}{arch['skipconnect']}", seed.freeze(arch), torch.randn(2, 3, 32, 32)))
    space = Mnist1dSpace()
    for i, arch in enumerate(mnist1d_archs()):
        out.append((f"mnist1d-{arch['family']}-{i}", space.freeze(arch), torch.randn(3, 1, 40)))
    nb = NasBench201Space(C=4, N=1, num_classes=10)
    rng = np.random.default_rng(1)
    for i in range(2):
        out.append((f"nb201-{i}", nb.freeze(nb.space.sample(rng)), torch.randn(2, 3, 8, 8)))
    try:
        from nasforge.hub.darts import DartsSpace
    except ImportError:  # the hub is another part of the project; without it these cases are skipped
        return out
    darts = DartsSpace(C=4, layers=3, num_classes=10)
    for i in range(2):
        out.append((f"darts-{i}", darts.freeze(darts.space.sample(rng)), torch.randn(2, 3, 16, 16)))
    return out


NETS = networks()


@pytest.mark.parametrize(("net", "x"), [(n, x) for _, n, x in NETS], ids=[i for i, _, _ in NETS])
def test_onnx_and_torchscript_round_trip(tmp_path, net, x):
    net.train()  # export uses eval mode and restores the mode
    onnx_path = to_onnx(net, x, tmp_path / "net.onnx")
    assert net.training
    net.eval()
    other = torch.randn(5, *x.shape[1:])  # another batch size: the batch dimension is dynamic
    with torch.no_grad():
        for inp in (x, other):
            np.testing.assert_allclose(ort_run(onnx_path, inp), net(inp).numpy(), atol=1e-4, rtol=1e-4)
    to_torchscript(net, x, tmp_path / "net.pt")
    loaded = torch.jit.load(str(tmp_path / "net.pt"))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x), atol=1e-4, rtol=1e-4)


def test_exported_files_run_without_nasforge(tmp_path):
    net = Mnist1dSpace().freeze(mnist1d_archs(1)[0])
    x = torch.randn(4, 1, 40)
    to_onnx(net, x, tmp_path / "net.onnx")
    to_torchscript(net, x, tmp_path / "net.pt")
    net.eval()
    with torch.no_grad():
        np.save(tmp_path / "x.npy", x.numpy())
        np.save(tmp_path / "y.npy", net(x).numpy())
    script = f"""
import sys
sys.modules["nasforge"] = None  # any import of nasforge now fails
import numpy as np, onnxruntime as ort, torch
x = np.load({str(tmp_path / 'x.npy')!r}); y = np.load({str(tmp_path / 'y.npy')!r})
s = ort.InferenceSession({str(tmp_path / 'net.onnx')!r}, providers=["CPUExecutionProvider"])
np.testing.assert_allclose(s.run(None, {{s.get_inputs()[0].name: x}})[0], y, atol=1e-4, rtol=1e-4)
m = torch.jit.load({str(tmp_path / 'net.pt')!r})
np.testing.assert_allclose(m(torch.from_numpy(x)).detach().numpy(), y, atol=1e-4, rtol=1e-4)
assert not any(k.startswith("nasforge.") for k in sys.modules)
print("ok")
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_a_network_with_choices_left_is_refused(tmp_path):
    with pytest.raises(ValueError, match="conv1") as info:
        to_onnx(Net(), torch.randn(1, 3, 32, 32), tmp_path / "x.onnx")
    assert "freeze" in str(info.value)
    with pytest.raises(ValueError, match="freeze"):
        to_torchscript(Net(), torch.randn(1, 3, 32, 32))
    check_frozen(Net().freeze({"conv1": 0, "conv2": 1, "skipconnect": 0}))
    with pytest.raises(TypeError, match="example_input"):
        to_onnx(Net().freeze({"conv1": 0, "conv2": 1, "skipconnect": 0}), [1, 2], tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="example_input"):
        to_torchscript(Net().freeze({"conv1": 0, "conv2": 1, "skipconnect": 0}))


class BatchBaked(torch.nn.Module):
    """Its output depends on the batch size through a Python number: a trace bakes it in."""

    def forward(self, x):
        return x * float(x.shape[0])


def test_the_check_catches_an_export_that_does_not_reproduce_pytorch(tmp_path):
    with pytest.raises(ExportCheckError, match="differs"):
        to_onnx(BatchBaked(), torch.randn(2, 3), tmp_path / "b.onnx")
    to_onnx(BatchBaked(), torch.randn(2, 3), tmp_path / "b.onnx", dynamic_batch=False)  # fixed batch: faithful


def test_dynamo_exporter(tmp_path):
    net = Mnist1dSpace().freeze(next(a for a in mnist1d_archs(1) if a["family"] == "mlp"))
    x = torch.randn(2, 1, 40)
    path = to_onnx(net, x, tmp_path / "d.onnx", dynamo=True)
    net.eval()
    other = torch.randn(3, 1, 40)
    with torch.no_grad():
        np.testing.assert_allclose(ort_run(path, other), net(other).numpy(), atol=1e-4, rtol=1e-4)


# -- the CLI ---------------------------------------------------------------------------------------

@pytest.fixture
def seed_store(tmp_path):
    """A real experiment over the seed model's space (scored without training), best arch known."""
    from nasforge import Experiment
    from nasforge.evaluate import FunctionEvaluator
    from nasforge.strategy import GridSearch

    def score(arch, ctx):
        return {"score": float(arch["conv1"] * 2 + arch["conv2"] + 0.5 * arch["skipconnect"])}

    db = tmp_path / "seed.db"
    exp = Experiment(Net(), GridSearch(), FunctionEvaluator(score, uses_model=False), max_trials=8, executor="inline",
                     store=db, name="seed", seed=0)
    exp.run()
    return db


BEST = {"conv1": 1, "conv2": 1, "skipconnect": 1}
SPEC = f"{seed_model.__file__}:Net"


def test_cli_export_onnx_uses_the_saved_weights(seed_store, tmp_path, capsys):
    from nasforge.cli import main
    from nasforge.store import Store

    trained = Net().freeze(BEST)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.1)  # weights that fresh initialisation would not give
    weights = tmp_path / "w" / "best.pt"
    weights.parent.mkdir()
    torch.save(trained.state_dict(), weights)
    with Store(seed_store) as store:
        rec = store.experiment("seed")
        best_id = next(t.id for t in store.trials(rec.id) if t.arch == BEST)
        store.add_test(rec.id, best_id, BEST, True, "SUCCEEDED", {"test_acc": 0.9}, weights=str(weights))
    out = tmp_path / "best.onnx"
    assert main(["export", str(seed_store), "--onnx", str(out), "--model", SPEC, "--input-shape", "1,3,32,32"]) == 0
    assert "saved weights" in capsys.readouterr().err
    x = torch.randn(3, 3, 32, 32)
    trained.eval()
    with torch.no_grad():
        np.testing.assert_allclose(ort_run(out, x), trained(x).numpy(), atol=1e-4, rtol=1e-4)
    ts = tmp_path / "best.pt"
    assert main(["export", str(seed_store), "--torchscript", str(ts), "--model", SPEC, "--input-shape", "1,3,32,32"]) == 0
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(ts))(x), trained(x), atol=1e-4, rtol=1e-4)


def test_cli_export_without_weights_needs_the_flag(seed_store, tmp_path, capsys):
    from nasforge.cli import main

    out = tmp_path / "fresh.onnx"
    args = ["export", str(seed_store), "--onnx", str(out), "--model", SPEC, "--input-shape", "1,3,32,32"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no saved weights" in err and "--init-weights" in err and not out.exists()
    assert main(args + ["--init-weights"]) == 0
    assert "fresh weights" in capsys.readouterr().err
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.run(None, {session.get_inputs()[0].name: np.zeros((2, 3, 32, 32), np.float32)})[0].shape == (2, 10)
    # the plain JSON export is unchanged
    assert main(["export", str(seed_store)]) == 0
    assert json.loads(capsys.readouterr().out) == BEST


@pytest.mark.parametrize(("extra", "message"), [
    (["--input-shape", "1,3,32,32"], "--model"),
    (["--model", "tests/nope.py:Net", "--input-shape", "1,3,32,32"], "does not exist"),
    (["--model", f"{seed_model.__file__}:Nope", "--input-shape", "1,3,32,32"], "no callable 'Nope'"),
    (["--model", "nasforge_no_such_module:Net", "--input-shape", "1,3,32,32"], "cannot be imported"),
    (["--model", SPEC, "--input-shape", "1,x,32"], "--input-shape"),
    (["--model", "seed_model.py", "--input-shape", "1,3,32,32"], "ClassName"),
])
def test_cli_export_errors_name_the_problem(seed_store, tmp_path, capsys, extra, message):
    from nasforge.cli import main

    assert main(["export", str(seed_store), "--onnx", str(tmp_path / "x.onnx"), "--init-weights", *extra]) == 2
    assert message in capsys.readouterr().err


def test_cli_export_onnx_uses_the_weights_kept_during_the_search(tmp_path, capsys):
    """Weights kept by ``Experiment(save_weights="best")`` are found when no test run saved any."""
    from nasforge import Experiment
    from nasforge.cli import main
    from nasforge.evaluate import FunctionEvaluator
    from nasforge.strategy import GridSearch

    def score(model, ctx):
        return {"score": float(sum(p.numel() for p in model.parameters()))}

    db, kept = tmp_path / "kept.db", tmp_path / "kept"
    exp = Experiment(Net(), GridSearch(), FunctionEvaluator(score), max_trials=8, executor="inline", store=db,
                     name="kept", seed=0, save_weights="best", weights_dir=kept)
    exp.run()
    best = exp.best(1)[0]
    trained = Net().freeze(best.arch)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.1)
    kept.mkdir(exist_ok=True)
    torch.save(trained.state_dict(), kept / "best.pt")
    (kept / "best.json").write_text(json.dumps({"experiment": "kept", "trial": best.id, "arch": best.arch}))
    out = tmp_path / "kept.onnx"
    assert main(["export", str(db), "--onnx", str(out), "--model", SPEC, "--input-shape", "1,3,32,32"]) == 0
    assert f"saved weights {kept / 'best.pt'}" in capsys.readouterr().err
    x = torch.randn(2, 3, 32, 32)
    trained.eval()
    with torch.no_grad():
        np.testing.assert_allclose(ort_run(out, x), trained(x).numpy(), atol=1e-4, rtol=1e-4)
    # weights kept for another trial are not used for this one
    (kept / "best.json").write_text(json.dumps({"experiment": "kept", "trial": best.id + 100, "arch": {}}))
    assert main(["export", str(db), "--onnx", str(out), "--model", SPEC, "--input-shape", "1,3,32,32"]) == 2
    assert "no saved weights" in capsys.readouterr().err
