"""The dashboard's JSON API (every endpoint, errors, read-only, escaping), its data functions, the static
report and the two commands, on real SQLite stores."""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nasforge.cli import main
from nasforge.dashboard import data
from nasforge.dashboard.server import bind, is_loopback
from nasforge.store import Store, StoreError
from nasforge.trial import Trial, TrialStatus

from .dashboard_store import EVIL, EVIL_LABEL, add_finished_trial, make_store, shown_status

starlette = pytest.importorskip("starlette", reason="the dashboard extra is not installed (pip install -e '.[dashboard]')")
pytest.importorskip("httpx", reason="starlette's test client needs httpx (pip install -e '.[dev]')")
from starlette.testclient import TestClient  # noqa: E402

from nasforge.dashboard import create_app, write_report  # noqa: E402


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("api") / "search.db", trials=12)


@pytest.fixture(scope="module")
def client(store_path):
    with TestClient(create_app(store_path), base_url="http://127.0.0.1") as c:
        yield c


def stored(store_path):
    with Store(store_path, readonly=True) as s:
        rec = s.experiments()[0]
        return rec, s.trials(rec.id), s.tests(rec.id)


def strict_json(response):
    def refuse(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    return json.loads(response.text, parse_constant=refuse)


# -- the API --------------------------------------------------------------------------------------------------
def test_page_and_static_files_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "default-src 'none'" in policy
    for name, kind in (("app.js", "javascript"), ("plot.js", "javascript"), ("style.css", "css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"] and len(r.content) > 1000
    code = (client.get("/static/app.js").text + client.get("/static/plot.js").text)
    assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(", code)
    for bad in ("/static/nope.js", "/static/..%2Fapp.py", "/static/../app.py", "/static/%2e%2e/store.py", "/etc/passwd"):
        r = client.get(bad)
        assert r.status_code == 404, bad
        assert "error" in r.json()


def test_experiments_endpoint_summarises_every_experiment(client, store_path):
    rec, trials, _ = stored(store_path)
    body = strict_json(client.get("/api/experiments"))
    assert body["store"] == "search.db" and len(body["experiments"]) == 1
    e = body["experiments"][0]
    counts = {s.value: sum(t.status is s for t in trials) for s in TrialStatus}
    assert e["name"] == "demo" and e["id"] == rec.id and e["counts"] == counts and e["n_trials"] == len(trials)
    assert e["status"] == shown_status(store_path) and e["strategy"] == "Random" and e["space_size"] == 3 * 4**3 * 2
    assert e["budget"]["max_trials"] == 12 and e["budget"]["trials_used"] == len(trials)
    best = max((t for t in trials if t.status is TrialStatus.SUCCEEDED), key=lambda t: (t.metrics["val_acc"], -t.id))
    assert e["best"]["trial"] == best.id and e["best"]["value"] == best.metrics["val_acc"]


def test_experiment_endpoint_by_name_and_by_id(client, store_path):
    rec, trials, tests = stored(store_path)
    by_name = strict_json(client.get("/api/experiments/demo"))
    by_id = strict_json(client.get(f"/api/experiments/{rec.id}"))
    for d in (by_name, by_id):
        d.pop("budget"), d.pop("revision")  # elapsed time of a running experiment moves on
    assert by_name == by_id
    d = by_name
    ok = sorted((t for t in trials if t.status is TrialStatus.SUCCEEDED), key=lambda t: t.id)
    assert [p["trial"] for p in d["best_over_trials"]] == [t.id for t in ok]
    running_best = list(itertools.accumulate((t.metrics["val_acc"] for t in ok), max))
    assert [p["best"] for p in d["best_over_trials"]] == running_best
    assert sorted(p["trial"] for p in d["best_over_time"]) == [t.id for t in ok]
    assert all(b["time"] >= a["time"] for a, b in itertools.pairwise(d["best_over_time"]))
    assert d["failed_trials"] == [t.id for t in trials if t.status is TrialStatus.FAILED]
    assert d["cost_metrics"] == ["params"] and d["report_metrics"] == ["loss", "val_acc"]
    front = d["metric_vs_cost"]["params"]["front"]
    assert front and all(p["trial"] in {t.id for t in ok} for p in front)
    assert d["chosen"]["trial"] == d["best"]["trial"] and d["chosen"]["arch"] == d["best"]["arch"]
    assert [c["name"] for c in d["chosen"]["cells"]] == ["cell"]
    assert len(d["chosen"]["cells"][0]["edges"]) == 3
    assert [t["trial_id"] for t in d["tests"]] == [t.trial_id for t in tests] and d["tests"][0]["metrics"]["test_acc"]
    assert d["config"]["metric"] == "val_acc" and d["arch_weights"] is None


def test_trials_endpoint_and_status_filter(client, store_path):
    _, trials, _ = stored(store_path)
    rows = strict_json(client.get("/api/experiments/demo/trials"))["trials"]
    assert [r["id"] for r in rows] == [t.id for t in trials]
    for row, t in zip(rows, trials):
        assert row["status"] == t.status.value and row["arch"] == t.arch and row["error"] == t.error
        assert row["params"] == t.metrics.get("params") and row["duration"] == t.duration
        assert row["n_reports"] == len(t.reports)
    failed = strict_json(client.get("/api/experiments/demo/trials?status=FAILED"))["trials"]
    assert failed and all(r["status"] == "FAILED" for r in failed) and EVIL in failed[0]["error"]
    both = strict_json(client.get("/api/experiments/demo/trials?status=failed,running"))["trials"]
    assert {r["status"] for r in both} == {"FAILED", "RUNNING"}
    bad = client.get("/api/experiments/demo/trials?status=DONE")
    assert bad.status_code == 400 and "DONE" in bad.json()["error"] and "SUCCEEDED" in bad.json()["error"]


def test_reports_endpoint(client, store_path):
    _, trials, _ = stored(store_path)
    ids = [t.id for t in trials[:3]]
    body = strict_json(client.get(f"/api/experiments/demo/reports?ids={','.join(map(str, ids))}"))["trials"]
    assert sorted(body) == sorted(map(str, ids))
    for t in trials[:3]:
        assert [(r["step"], r["metrics"]) for r in body[str(t.id)]["reports"]] == [(s, m) for s, m in t.reports]
    assert client.get("/api/experiments/demo/reports?ids=9999").status_code == 404
    assert "9999" in client.get("/api/experiments/demo/reports?ids=9999").json()["error"]
    assert client.get("/api/experiments/demo/reports?ids=a,b").status_code == 400
    assert strict_json(client.get("/api/experiments/demo/reports"))["trials"] == {}


def test_arch_download(client, store_path):
    r = client.get("/api/experiments/demo/arch.json")
    best = strict_json(client.get("/api/experiments/demo"))["best"]
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.headers["content-disposition"] == f'attachment; filename="best_arch_trial_{best["trial"]}.json"'
    assert json.loads(r.text) == best["arch"]


@pytest.mark.parametrize("suffix", ["", "/trials", "/reports?ids=0", "/arch.json"])
@pytest.mark.parametrize("name", ["missing", "99", "demo2", "%3Cscript%3E"])
def test_a_missing_experiment_is_a_404_naming_it(client, name, suffix):
    r = client.get(f"/api/experiments/{name}{suffix}")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
    assert "no experiment" in r.json()["error"] and "'demo'" in r.json()["error"]


def test_no_successful_trial_yet(tmp_path):
    path = tmp_path / "empty.db"
    with Store(path) as s:
        exp_id = s.create_experiment("fresh", {"metric": "acc", "mode": "max", "space_size": 4})
        s.add_trial(exp_id, Trial(id=0, arch={"x": 1}, status=TrialStatus.RUNNING, started=time.time()))
        s.create_experiment("empty", {})
    with TestClient(create_app(path), base_url="http://127.0.0.1") as c:
        assert c.get("/api/experiments/fresh/arch.json").status_code == 404
        d = strict_json(c.get("/api/experiments/fresh"))
        assert d["status"] == shown_status(path, "fresh") and d["best"] is None and d["chosen"] is None and d["best_over_trials"] == []
        e = strict_json(c.get("/api/experiments/empty"))
        assert e["n_trials"] == 0 and e["metric"] == "score" and e["budget"]["elapsed"] is None


def test_non_finite_metrics_are_null_in_valid_json(tmp_path):
    path = tmp_path / "nan.db"
    with Store(path) as s:
        exp_id = s.create_experiment("nan", {"metric": "acc", "mode": "max"})
        for i, value in enumerate([0.5, float("nan"), float("inf")]):
            t = Trial(id=i, arch={"x": i}, status=TrialStatus.RUNNING, started=1.0)
            s.add_trial(exp_id, t)
            t.status, t.finished, t.metrics, t.score = TrialStatus.SUCCEEDED, 2.0, {"acc": value, "params": value}, None
            s.finish_trial(exp_id, t)
            s.add_report(exp_id, i, 0, {"acc": value})
    with TestClient(create_app(path), base_url="http://127.0.0.1") as c:
        d = strict_json(c.get("/api/experiments/nan"))
        assert d["best"]["trial"] == 0 and [p["trial"] for p in d["best_over_trials"]] == [0]
        rows = strict_json(c.get("/api/experiments/nan/trials"))["trials"]
        assert [r["metrics"]["acc"] for r in rows] == [0.5, None, None]
        rep = strict_json(c.get("/api/experiments/nan/reports?ids=1"))
        assert rep["trials"]["1"]["reports"][0]["metrics"]["acc"] is None


def test_read_only_get_only_and_loopback_hosts(tmp_path):
    path = make_store(tmp_path / "ro.db", trials=4)

    def content():
        with Store(path, readonly=True) as s:
            return hashlib.sha256("\n".join(s._db.iterdump()).encode()).hexdigest()

    digest = content()
    before = sorted(f for f in os.listdir(tmp_path) if not f.endswith(("-wal", "-shm")))
    with TestClient(create_app(path), base_url="http://127.0.0.1") as c:
        for url in ("/", "/api/experiments", "/api/experiments/demo", "/api/experiments/demo/trials",
                    "/api/experiments/demo/reports?ids=0,1", "/api/experiments/demo/arch.json"):
            assert c.get(url).status_code == 200, url
        for method in ("post", "put", "delete", "patch"):
            r = getattr(c, method)("/api/experiments/demo/trials")
            assert r.status_code == 405 and "read-only" in r.json()["error"]
    assert content() == digest  # nothing written
    assert sorted(f for f in os.listdir(tmp_path) if not f.endswith(("-wal", "-shm"))) == before
    # a page of another site (DNS rebinding) cannot read the API: only loopback Host headers pass
    with TestClient(create_app(path), base_url="http://evil.example") as c:
        assert c.get("/api/experiments").status_code == 400
    with TestClient(create_app(path), base_url="http://localhost:8080") as c:
        assert c.get("/api/experiments").status_code == 200


def test_create_app_refuses_what_is_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        create_app(tmp_path / "nope.db")
    import sqlite3

    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.close()
    with pytest.raises(StoreError, match="not a nasforge store"):
        create_app(other)


def test_status_comes_from_the_owner_information_when_the_store_has_it(store_path):
    class OwnedStore(Store):  # the interface of stores that record their owner (pid, host, heartbeat)
        def owner(self, name):
            return {"pid": 4242, "host": "box", "started_at": 1.0, "heartbeat_at": 2.0, "alive": False}

        def live_status(self, name):
            return "interrupted"

    with OwnedStore(store_path, readonly=True) as s:
        summary = data.experiment_summary(s, s.experiments()[0])
    assert summary["status"] == "interrupted" and summary["owner"]["pid"] == 4242 and summary["status_source"] == "owner"
    with Store(store_path, readonly=True) as s:  # a store without owner records: the recorded status
        expected = "owner" if callable(getattr(s, "live_status", None)) else "recorded"
        assert data.experiment_summary(s, s.experiments()[0])["status_source"] == expected


# -- the data functions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["max", "min"])
def test_pareto_front_matches_brute_force(mode):
    rng = np.random.default_rng(0)
    for n in range(1, 40):
        costs = rng.integers(1, 8, n).astype(float)  # ties in cost and value on purpose
        values = rng.integers(0, 6, n).astype(float)
        pts = [(c, v, i) for i, (c, v) in enumerate(zip(costs, values))]
        better = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)

        def dominated(p, pts=pts, better=better):
            return any((q[0] <= p[0] and (better(q[1], p[1]) or (q[1] == p[1] and (q[0] < p[0] or q[2] < p[2])))) for q in pts if q is not p)

        assert sorted(data.pareto_front(pts, mode)) == sorted(p[2] for p in pts if not dominated(p))


def test_cells_of_every_cell_form():
    nb201 = {f"op_{n}_{i}": "conv_3x3" if (n + i) % 2 else "none" for n in (1, 2, 3) for i in range(n)}
    (cell,) = data.cells_of(nb201)
    assert cell["inputs"] == [0] and cell["nodes"] == [1, 2, 3]
    assert sorted((e["from"], e["to"]) for e in cell["edges"]) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    darts = {"width": 16}
    for prefix in ("normal", "reduce"):
        for node in (2, 3):
            for k in (0, 1):
                darts[f"{prefix}.op_{node}_{k}"] = "sep_conv_3x3"
                darts[f"{prefix}.input_{node}_{k}"] = (node + k) % node
    cells = data.cells_of(darts)
    assert [c["name"] for c in cells] == ["normal", "reduce"]
    assert all(c["inputs"] == [0, 1] and c["nodes"] == [2, 3] for c in cells)
    assert sorted((e["from"], e["to"]) for e in cells[0]["edges"]) == [(0, 2), (0, 3), (1, 2), (1, 3)]
    # an input index out of range, or a canonical arch that dropped an inactive slot, never breaks the drawing
    assert len(data.cells_of({**darts, "normal.input_3_1": 7})[0]["edges"]) == 3
    assert data.cells_of({"op": "conv", "width": 3, "op_1_0": "x"}) == []
    assert data.cells_of({"a.op_1_0": 1, "b.op_1_0": 2}) == []


def test_arch_weights_of_a_real_one_shot_run_and_per_epoch_records(tmp_path):
    torch = pytest.importorskip("torch")
    from nasforge.benchmarks.seed_model import Net
    from nasforge.evaluate.function import FunctionEvaluator
    from nasforge.experiment import Experiment
    from nasforge.oneshot import DartsTrainer, OneShotStrategy

    torch.manual_seed(0)
    model = Net()
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (16,), generator=g)
    ds = torch.utils.data.TensorDataset(torch.randn(16, 3, 16, 16, generator=g) + y.view(-1, 1, 1, 1) * 0.3, y)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    trainer = DartsTrainer(model, torch.nn.CrossEntropyLoss(), None, opt, 2, ds, batch_size=8, seed=0)
    path = tmp_path / "oneshot.db"
    Experiment(model, OneShotStrategy(trainer), FunctionEvaluator(lambda net, ctx: {"score": 1.0}), executor="inline",
               store=path, name="darts").run()
    with Store(path, readonly=True) as s:
        rec = s.experiment("darts")
        w = data.arch_weights(rec)
        assert data.experiment_summary(s, rec)["oneshot"] is True
    assert w["trainer"] == "DartsTrainer" and [e["epoch"] for e in w["epochs"]] == [1, 2]
    assert set(w["final"]) == set(model.space)
    for label, probs in w["final"].items():
        assert len(probs) == len(model.space[label].values) and math.isclose(sum(probs), 1.0, rel_tol=1e-5)
    # weights recorded per epoch (history entries with arch_probabilities) are read per epoch
    history = [{"epoch": e, "loss": 1.0 / e, "arch_probabilities": {"conv1": [0.5 - 0.1 * e, 0.5 + 0.1 * e]}} for e in (1, 2, 3)]
    with Store(tmp_path / "epochs.db") as s:
        exp_id = s.create_experiment("x", {"strategy": "OneShotStrategy", "space": [{"label": "conv1", "values": ["a", "b"]}]})
        s.add_trial(exp_id, Trial(id=0, arch={"conv1": "b"}, status=TrialStatus.RUNNING),
                    strategy_state={"history": history, "arch_probabilities": {"conv1": [0.2, 0.8]}})
        w = data.arch_weights(s.experiment("x"))
    assert [e["weights"]["conv1"] for e in w["epochs"]] == [pytest.approx([0.4, 0.6]), pytest.approx([0.3, 0.7]), pytest.approx([0.2, 0.8])]
    assert w["candidates"] == {"conv1": ["a", "b"]} and w["epochs"][0]["metrics"] == {"loss": 1.0}
    # weights keyed by candidate ({label: {candidate: weight}}) name their candidates
    with Store(tmp_path / "epochs.db") as s:
        exp_id = s.create_experiment("y", {"strategy": "OneShotStrategy"})
        s.add_trial(exp_id, Trial(id=0, arch={"op": "conv"}, status=TrialStatus.RUNNING),
                    strategy_state={"history": [{"epoch": 1, "arch_probabilities": {"op": {"conv": 0.7, "skip": 0.3}}}],
                                    "arch_probabilities": {"op": {"conv": 0.9, "skip": 0.1}}})
        w = data.arch_weights(s.experiment("y"))
    assert w["final"] == {"op": [0.9, 0.1]} and w["epochs"][0]["weights"] == {"op": [0.7, 0.3]}
    assert w["candidates"] == {"op": ["conv", "skip"]}
    files = [Path(f).name for f in write_report(tmp_path / "epochs.db", tmp_path / "report", name="x")]
    assert files == ["x-arch_weights.png", "report.html"]  # nothing succeeded yet: no other plot
    assert "0.200" in (tmp_path / "report" / "report.html").read_text()  # the final weights, as text


# -- the report and the commands ------------------------------------------------------------------------------
def test_report_command_writes_plots_and_one_escaped_html(store_path, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(store_path), "-o", str(out)]) == 0
    names = sorted(os.listdir(out))
    assert names == sorted(["report.html", "demo-best_so_far.png", "demo-best_over_time.png", "demo-metric_vs_params.png",
                            "demo-curves.png", "demo-cell.png"])
    for name in names:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / name).stat().st_size > 5000
    page = (out / "report.html").read_text()
    assert EVIL not in page and EVIL_LABEL not in page  # never raw
    assert html.escape(EVIL) in page and html.escape(EVIL_LABEL) in page  # shown as text
    assert len(re.findall(r"<script", page)) == 0 and page.count("data:image/png;base64,") == 5
    assert "src=\"http" not in page and "href=\"http" not in page  # self-contained
    assert "wrote 6 files" in capsys.readouterr().err


def test_report_file_names_are_safe_for_any_experiment_name(tmp_path):
    path = tmp_path / "s.db"
    with Store(path) as s:
        exp_id = s.create_experiment("../../etc/evil name", {"metric": "val_acc"})
        add_finished_trial(s, exp_id, 0, 0.5)
    files = write_report(path, tmp_path / "out")
    assert len(files) > 1 and all(Path(f).parent == tmp_path / "out" for f in files)
    assert any(Path(f).name.startswith("etc_evil_name-") for f in files)


def test_report_and_dashboard_errors_are_clear(tmp_path, store_path, capsys):
    assert main(["report", str(tmp_path / "nope.db"), "-o", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", str(store_path), "-o", str(tmp_path / "r"), "--name", "other"]) == 2
    err = capsys.readouterr().err
    assert "no experiment named 'other'" in err and "it holds: 'demo'" in err
    assert main(["dashboard", str(tmp_path / "nope.db")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with Store(tmp_path / "empty.db"):
        pass
    assert main(["report", str(tmp_path / "empty.db"), "-o", str(tmp_path / "r")]) == 2
    assert "holds no experiment" in capsys.readouterr().err


def test_loopback_by_default_and_a_warning_for_other_interfaces(store_path):
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.2", "example.com", ""))
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1" and sock.getsockname()[1] > 0
    finally:
        sock.close()
    with pytest.raises(ValueError, match="port must be"):
        bind("127.0.0.1", 70000)
    from nasforge.cli import build_parser

    args = build_parser().parse_args(["dashboard", "x.db"])
    assert (args.host, args.port) == ("127.0.0.1", 8080)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "nasforge.cli", "dashboard", str(store_path), "--host", "0.0.0.0", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        warning = proc.stderr.readline()
        url = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(30)
    assert warning.startswith("WARNING: serving on 0.0.0.0") and "--host 127.0.0.1" in warning
    assert re.search(r"http://0\.0\.0\.0:\d+/", url)


def test_experiments_are_found_by_name_first_then_by_id(tmp_path):
    path = tmp_path / "names.db"
    with Store(path) as s:
        ids = {name: s.create_experiment(name, {"metric": "val_acc"}) for name in ("a/b", "2", "<img src=x>")}
    assert ids == {"a/b": 1, "2": 2, "<img src=x>": 3}
    with TestClient(create_app(path), base_url="http://127.0.0.1") as c:
        assert strict_json(c.get("/api/experiments/1"))["name"] == "a/b"  # a name with "/" is reached by its id
        assert strict_json(c.get("/api/experiments/2"))["name"] == "2"
        assert strict_json(c.get("/api/experiments/%3Cimg%20src%3Dx%3E"))["name"] == "<img src=x>"
        assert strict_json(c.get("/api/experiments/3"))["name"] == "<img src=x>"
        r = c.get("/api/experiments/4")
        assert r.status_code == 404 and "'a/b', '2', '<img src=x>'" in r.json()["error"]
