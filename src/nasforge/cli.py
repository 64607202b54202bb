"""The ``nasforge`` command: look at stores, export archs, run search scripts.

::

    nasforge show runs/mnist1d.db               # leaderboard and status counts
    nasforge export runs/mnist1d.db --top 3 -o best.json
    nasforge run examples/main_job.py -- --trials 20
    nasforge dashboard runs/mnist1d.db          # live web view on http://127.0.0.1:8080/
    nasforge report runs/mnist1d.db -o report/  # PNG plots and one HTML file
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
from collections.abc import Sequence
from typing import Any

from nasforge.store import ExperimentRecord, Store, StoreError
from nasforge.trial import Trial, TrialStatus

__all__ = ["main"]


def _safe(value: Any) -> str:
    """``str(value)`` with every non-printable character escaped (``\\x1b``, ``\\n``…): a store
    received from someone else must not send escape sequences to the terminal."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _fmt_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    return _safe(value)


def _fmt_params(value: Any) -> str:
    if value is None:
        return "-"
    value = float(value)
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        out = []
        for i, (cell, w) in enumerate(zip(cells, widths)):
            out.append(cell.rjust(w) if i in right else cell.ljust(w))
        return "  ".join(out).rstrip()

    return [line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]


def _ranked(trials: list[Trial]) -> list[Trial]:
    ok = [t for t in trials if t.status is TrialStatus.SUCCEEDED and t.score is not None]
    return sorted(ok, key=lambda t: (-t.score, t.id))


def _pick_experiments(store: Store, name: str | None) -> list[ExperimentRecord]:
    records = store.experiments()
    if name is None:
        if not records:
            raise StoreError(f"{store.path!r} holds no experiment yet")
        return records
    for rec in records:
        if rec.name == name:
            return [rec]
    names = ", ".join(repr(r.name) for r in records) or "none"
    raise StoreError(f"no experiment named {name!r} in {store.path!r}; it holds: {names}")


def _open(path: str) -> Store:
    if not os.path.exists(path):
        raise StoreError(f"store file {path!r} does not exist")
    return Store(path, readonly=True)


def cmd_show(args: argparse.Namespace) -> int:
    store = _open(args.store)
    for rec in _pick_experiments(store, args.name):
        trials = store.trials(rec.id, with_reports=False)
        metric = rec.config.get("metric", "score")
        metric = metric if isinstance(metric, str) else str(metric)
        counts: dict[str, int] = {}
        for t in trials:
            counts[t.status.value] = counts.get(t.status.value, 0) + 1
        status = store.live_status(rec.name)  # "running" only while a live process owns it
        owner = store.owner(rec.name)
        if status == "running" and owner is not None:
            status += f" in pid {owner['pid']} on {_safe(owner['host'])}"
        print(f"experiment {rec.name!r}  ({status}; metric {_safe(metric)}, {_safe(rec.config.get('mode', 'max'))}imised; "
              f"strategy {_safe(rec.config.get('strategy'))}; space of {_safe(rec.config.get('space_size', '?'))} archs)")
        print("trials: " + (", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items())) or "none") + f"  (total {len(trials)})")
        ranked = _ranked(trials)[: args.top]
        if ranked:
            rows = []
            for rank, t in enumerate(ranked, 1):
                arch = json.dumps(t.arch, separators=(",", ":"))
                if args.width and len(arch) > args.width:
                    arch = arch[: args.width - 1] + "…"
                rows.append([str(rank), str(t.id), _fmt_value(t.metrics.get(metric)), _fmt_params(t.metrics.get("params")),
                             f"{t.duration:.1f}s" if t.duration is not None else "-", arch])
            print()
            for line in _table(["rank", "trial", _safe(metric), "params", "duration", "arch"], rows, {0, 1, 2, 3, 4}):
                print(line)
        failed = [t for t in trials if t.status is TrialStatus.FAILED]
        if failed and args.failures:
            print("\nfailures:")
            for t in failed:
                print(f"  trial {t.id}: {_safe((t.error or '').splitlines()[0]) if t.error else '?'}")
        tests = store.tests(rec.id)
        if tests:
            rank_of = {t.id: i for i, t in enumerate(_ranked(trials), 1)}
            tests.sort(key=lambda r: (rank_of.get(r.trial_id, len(rank_of) + 1), r.id))
            print("\ntest-set evaluations (by search rank):")
            for r in tests:
                metrics = ", ".join(f"{_safe(k)} {_fmt_value(v)}" for k, v in sorted(r.metrics.items()) if k.startswith("test_"))
                how = "retrained on train+val" if r.retrain else "trained on train"
                rank = f"rank {rank_of[r.trial_id]}, " if r.trial_id in rank_of else ""
                error = _safe((r.error or "").splitlines()[0]) if r.error else ""
                print(f"  {rank}trial {_safe(r.trial_id)}: {_safe(r.status.lower())}, {how}: {metrics or error}")
        print()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    store = _open(args.store)
    records = _pick_experiments(store, args.name)
    if len(records) > 1:
        names = ", ".join(repr(r.name) for r in records)
        raise StoreError(f"{args.store!r} holds several experiments ({names}); choose one with --name")
    ranked = _ranked(store.trials(records[0].id, with_reports=False))
    if not ranked:
        raise StoreError(f"experiment {records[0].name!r} has no successful trial to export")
    top = ranked[: args.top]
    if getattr(args, "onnx", None) or getattr(args, "torchscript", None):
        return _export_network(args, store, records[0], top[0])
    payload: Any = top[0].arch if args.top == 1 else [t.arch for t in top]
    text = json.dumps(payload, indent=2) + "\n"
    if args.output:
        folder = os.path.dirname(os.path.abspath(args.output))
        os.makedirs(folder, exist_ok=True)
        with open(args.output, "w") as f:
            f.write(text)
        print(f"wrote {len(top)} arch{'s' if len(top) > 1 else ''} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _export_network(args: argparse.Namespace, store: Store, record: ExperimentRecord, best: Trial) -> int:
    """``export --onnx/--torchscript``: the best arch's network with its saved weights (see nasforge.export)."""
    from nasforge import export as ex

    try:
        if not args.model or not args.input_shape:
            raise ex.ExportError("--onnx / --torchscript need --model FILE.py:ClassName (the model space) and "
                                 "--input-shape 1,C,H,W (an example input's shape, batch first)")
        shape = ex.parse_shape(args.input_shape)
        weights = None
        for r in reversed(store.tests(record.id)):
            if r.weights and r.arch == best.arch and r.status == "SUCCEEDED":
                options = [r.weights, os.path.join(os.path.dirname(os.path.abspath(args.store)), r.weights)]
                weights = next((p for p in options if os.path.isfile(p)), None)
                if weights is None:
                    raise ex.ExportError(f"the saved weights of trial {best.id} ({r.weights!r}) are missing")
                break
        if weights is None and not args.init_weights:
            raise ex.ExportError(
                f"experiment {record.name!r} has no saved weights for its best arch (trial {best.id}); save them with "
                f"exp.test(..., weights_dir=...), or pass --init-weights to export freshly initialised weights")
        net = ex.build_network(ex.load_model_space(args.model), best.arch, weights)
        example = _example_input(shape)
        if args.onnx:
            ex.to_onnx(net, example, args.onnx)
            print(f"wrote {args.onnx} (trial {best.id}, {'saved weights ' + weights if weights else 'fresh weights'}; "
                  f"onnxruntime matches PyTorch within 1e-4)", file=sys.stderr)
        if args.torchscript:
            ex.to_torchscript(net, example, args.torchscript)
            print(f"wrote {args.torchscript} (TorchScript, trial {best.id})", file=sys.stderr)
    except (ex.ExportError, ex.ExportCheckError) as exc:
        print(f"nasforge export: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _example_input(shape: tuple[int, ...]) -> Any:
    import torch

    return torch.randn(shape, generator=torch.Generator().manual_seed(0))


def cmd_run(args: argparse.Namespace) -> int:
    script = args.script
    if not os.path.isfile(script):
        raise FileNotFoundError(f"script {script!r} not found")
    if args.progress:
        os.environ["NASFORGE_PROGRESS"] = "1"
    script_args = list(args.args)
    if script_args[:1] == ["--"]:
        script_args = script_args[1:]
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [script, *script_args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv, sys.path[:] = old_argv, old_path
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nasforge", description="Neural Architecture Search on PyTorch: inspect and run experiments.")
    from nasforge import __version__

    parser.add_argument("--version", action="version", version=f"nasforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    show = sub.add_parser("show", help="print the leaderboard and status counts of a store")
    show.add_argument("store", help="the experiment's SQLite file")
    show.add_argument("--name", help="only this experiment (default: every experiment in the store)")
    show.add_argument("--top", type=int, default=10, help="rows of the leaderboard (default: 10)")
    show.add_argument("--width", type=int, default=100, help="cut arch JSON at this width (0: never; default: 100)")
    show.add_argument("--failures", action="store_true", help="also list failed trials and their reasons")
    show.set_defaults(func=cmd_show)

    export = sub.add_parser("export", help="write the best arch(s) as JSON (loadable with nasforge.fixed_arch)")
    export.add_argument("store", help="the experiment's SQLite file")
    export.add_argument("--name", help="the experiment (needed when the store holds several)")
    export.add_argument("--top", type=int, default=1, help="how many archs (default: 1, a single JSON object; more: a list)")
    export.add_argument("-o", "--output", help="output file (default: standard output)")
    export.add_argument("--onnx", metavar="FILE", help="write the best arch's network (saved weights) as ONNX, checked with onnxruntime")
    export.add_argument("--torchscript", metavar="FILE", help="write the best arch's network as TorchScript")
    export.add_argument("--model", metavar="FILE.py:NAME", help="the model space (with --onnx/--torchscript), e.g. examples/mnist1d_space.py:Mnist1dSpace")
    export.add_argument("--input-shape", metavar="N,C,...", help="example input shape, batch first (with --onnx/--torchscript)")
    export.add_argument("--init-weights", action="store_true", help="export freshly initialised weights when none were saved")
    export.set_defaults(func=cmd_export)

    run = sub.add_parser("run", help="run a search script (as `python SCRIPT.py ARGS…` would)")
    run.add_argument("script", help="the Python script")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    run.add_argument("--progress", action="store_true", help="force the progress bar even without a terminal")
    run.set_defaults(func=cmd_run)

    from nasforge.dashboard.cli import add_commands  # `dashboard` and `report`

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "top", 1) is not None and getattr(args, "top", 1) < 1:
        parser.error(f"--top must be a positive number, got {args.top}")
    try:
        return int(args.func(args) or 0)
    except (StoreError, FileNotFoundError) as exc:
        print(f"nasforge {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
