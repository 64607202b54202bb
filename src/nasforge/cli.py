"""The ``nasforge`` command: look at stores, export archs, run search scripts.

::

    nasforge show runs/mnist1d.db [NAME]        # leaderboard, status counts, test results
    nasforge show runs/mnist1d.db --json        # the same as JSON (--full: nothing abbreviated)
    nasforge export runs/mnist1d.db [NAME] --top 3 -o best.json
    nasforge run [options] examples/main_job.py [options] -- --trials 20
    nasforge dashboard runs/mnist1d.db          # live web view on http://127.0.0.1:8080/
    nasforge report runs/mnist1d.db -o report/  # PNG plots and one HTML file
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from nasforge.space import Space
from nasforge.store import ExperimentRecord, Store, StoreError
from nasforge.trial import ExperimentStatus, Trial, TrialStatus, rank_trials

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


def _print_arch_table(headers: list[str], rows: list[list[str]], archs: list[dict[str, Any]], width: int,
                      max_lines: int | None = None, fit: bool = False) -> None:
    """Right-aligned ``rows``, each followed by its arch as compact JSON wrapped to ``width`` (0: one
    line) and cut to ``max_lines``. ``fit`` (the leaderboard): on a narrow terminal the arch goes under
    its row, and the rule under "arch" spans the column (up to 40 characters)."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    left = sum(widths) + 2 * len(widths)
    below = fit and width > 0 and width - left < 30  # a narrow terminal: the arch goes under its row
    indent = 4 if below else left
    room = max(width - indent, 20) if width > 0 else 0
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)) + "  arch")
    rule = min(room, 40) if fit and room and not below else 4
    print("  ".join("-" * w for w in widths) + "  " + "-" * rule)
    for arch, row in zip(archs, rows):
        lines = _wrap_json(arch, room)
        if max_lines is not None and len(lines) > max_lines:
            hidden = len(lines) - max_lines + 1
            lines = lines[: max_lines - 1] + [f"… ({hidden} more line{'s' * (hidden > 1)}; --full shows all)"]
        cells = "  ".join(c.rjust(w) for c, w in zip(row, widths))
        if below:
            print(cells)
        else:
            print(cells + "  " + lines[0])
            lines = lines[1:]
        for line in lines:
            print(" " * indent + line)


def _pick_experiments(store: Store, name: str | None) -> list[ExperimentRecord]:
    if name is not None:
        return [store._require(name)]  # an unknown name: its error lists the ones there
    records = store.experiments()
    if not records:
        raise StoreError(f"{store.path!r} holds no experiment yet")
    return records


def _first_line(text: str | None) -> str:
    return _safe((text or "").strip().splitlines()[0]) if text and text.strip() else ""


def _canonicalizer(config: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Arch -> the arch as the space defines it (definition order, inactive labels omitted) where the
    stored space description can say so; else the stored arch in the labels' definition order."""
    description = config.get("space")
    description = description if isinstance(description, list) else []
    order = [d.get("label") for d in description if isinstance(d, dict)]

    def by_order(arch: dict[str, Any]) -> dict[str, Any]:
        known = {label: arch[label] for label in order if label in arch}
        return {**known, **{k: v for k, v in arch.items() if k not in known}}

    try:
        space = Space.from_description(description)
    except Exception:  # noqa: BLE001 - none, or an old or foreign description: fall back to the label order
        return by_order

    def by_space(arch: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(space.canonical(arch))
        except Exception:  # noqa: BLE001 - an arch the description cannot validate: as stored
            return by_order(arch)

    return by_space


def _wrap_json(arch: dict[str, Any], width: int) -> list[str]:
    """Compact JSON of ``arch`` broken between entries into lines of at most ``width`` characters."""
    items = [json.dumps(k) + ":" + json.dumps(v, separators=(",", ":")) for k, v in arch.items()]
    if not items:
        return ["{}"]
    pieces = ["{" + items[0]] + items[1:]
    pieces = [p + "," for p in pieces[:-1]] + [pieces[-1] + "}"]
    if width <= 0:
        return ["".join(pieces)]
    lines: list[str] = []
    line = ""
    for piece in pieces:
        if line and len(line) + len(piece) > width:
            lines.append(line)
            line = ""
        while len(piece) > width:  # one entry longer than a line: cut it at the width
            room = width - len(line)
            line += piece[:room]
            lines.append(line)
            line, piece = "", piece[room:]
        line += piece
    if line:
        lines.append(line)
    return lines


def _experiment_view(store: Store, rec: ExperimentRecord, top: int, full: bool) -> dict[str, Any]:
    """Everything ``show`` prints about one experiment, as plain data (also the ``--json`` output)."""
    from nasforge.experiment.results import group_tests

    trials = store.trials(rec.id, with_reports=False)
    metric = str(rec.config.get("metric", "score"))
    status = store.live_status(rec.name)  # "running" only while a live process owns it
    owner = store.owner(rec.name)
    if status == ExperimentStatus.RUNNING and owner is not None:
        status += f" in pid {owner['pid']} on {_safe(owner['host'])}"
    counts = dict(Counter(t.status.value for t in trials))
    ranked = rank_trials(trials)
    canonical = _canonicalizer(rec.config)
    leaderboard = [
        {"rank": rank, "trial": t.id, metric: t.metrics.get(metric), "score": t.score, "metrics": t.metrics,
         "arch": canonical(t.arch), "duration": t.duration}
        for rank, t in enumerate(ranked[:top], 1)
    ]
    failures = [{"trial": t.id, "error": t.error if full else _first_line(t.error)} for t in trials if t.status is TrialStatus.FAILED]
    tests = [r.to_dict() for r in group_tests(store.tests(rec.id), ranked)]
    rank_of = {t.id: i for i, t in enumerate(ranked, 1)}
    for r in tests:
        r["rank"] = rank_of.get(r["trial_id"])
        for run in r["runs"]:
            run.pop("runs", None)
    objectives = rec.config.get("objectives")
    pareto = None
    if objectives and len(objectives) > 1:  # multi-objective: the non-dominated trials
        from nasforge.experiment.objectives import pareto_trials, parse_objectives

        objectives = parse_objectives([tuple(o) for o in objectives]) or []
        pareto = [{"trial": t.id, "objectives": {n: t.metrics.get(n) for n, _ in objectives}, "arch": canonical(t.arch)}
                  for t in pareto_trials(trials, objectives)]
    return {
        "name": rec.name,
        "status": status,
        "objectives": [list(o) for o in objectives] if objectives else None,
        "pareto": pareto,
        "metric": metric,
        "mode": rec.config.get("mode", "max"),
        "strategy": rec.config.get("strategy"),
        "evaluator": rec.config.get("evaluator"),
        "space_size": rec.config.get("space_size"),
        "counts": counts,
        "total": len(trials),
        "leaderboard": leaderboard,
        "failures": failures,
        "tests": tests,
    }


def cmd_show(args: argparse.Namespace) -> int:
    store = Store(args.store, readonly=True)
    name = _name_arg(args)
    views = [_experiment_view(store, rec, args.top, args.full) for rec in _pick_experiments(store, name)]
    if args.json:
        json.dump({"store": args.store, "experiments": views}, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    width = shutil.get_terminal_size((100, 24)).columns if args.width is None else args.width
    for view in views:
        _print_view(view, width, args.full, args.failures or args.full)
    return 0


def _print_pareto(objectives: list[list[str]], front: list[dict[str, Any]], width: int) -> None:
    names = [n for n, _ in objectives]
    print(f"\nPareto front ({len(front)} non-dominated trial(s); "
          + ", ".join(f"{_safe(n)} {_safe(m)}imised" for n, m in objectives) + "):")
    rows = [[str(e["trial"]), *(_fmt_value(e["objectives"][n]) for n in names)] for e in front]
    headers = ["trial", *(_safe(n) for n in names)]
    _print_arch_table(headers, rows, [e["arch"] for e in front], width)


def _print_view(view: dict[str, Any], width: int, full: bool, failures: bool) -> None:
    metric = view["metric"]
    print(f"experiment {view['name']!r}  ({_safe(view['status'])}; metric {_safe(metric)}, {_safe(view['mode'])}imised; "
          f"strategy {_safe(view['strategy'])}; space of {_safe(view['space_size'] if view['space_size'] is not None else '?')} archs)")
    if full and view.get("evaluator"):
        print(f"evaluator: {_safe(view['evaluator'])}")
    counts = view["counts"]
    print("trials: " + (", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items())) or "none") + f"  (total {view['total']})")
    if view["leaderboard"]:
        headers = ["rank", "trial", _safe(metric), "params", "duration"]
        rows = [[str(e["rank"]), str(e["trial"]), _fmt_value(e[metric]), _fmt_params(e["metrics"].get("params")),
                 f"{e['duration']:.1f}s" if e["duration"] is not None else "-"] for e in view["leaderboard"]]
        print()
        _print_arch_table(headers, rows, [e["arch"] for e in view["leaderboard"]], width,
                          max_lines=None if full else 4, fit=True)
    if view.get("pareto") is not None:
        _print_pareto(view["objectives"], view["pareto"], width)
    if view["failures"] and failures:
        print("\nfailures:")
        for f in view["failures"]:
            text = _safe(f["error"] or "?") if not full else "\n    ".join(_safe(x) for x in (f["error"] or "?").splitlines())
            print(f"  trial {f['trial']}: {text}")
    elif view["failures"]:
        print(f"({len(view['failures'])} failed; --failures lists the reasons)")
    if view["tests"]:
        print("\ntest-set evaluations (by search rank):")
        for r in view["tests"]:
            how = "retrained on train+val" if r["retrain"] else "trained on train"
            rank = f"rank {r['rank']}, " if r["rank"] is not None else ""
            runs = len(r["runs"]) or 1
            ok = sum(run["status"] == TrialStatus.SUCCEEDED for run in r["runs"]) if r["runs"] else int(r["status"] == TrialStatus.SUCCEEDED)
            seeds = f"{runs} seed{'s' * (runs > 1)}" if ok == runs else f"{ok}/{runs} seeds succeeded"
            parts = []
            for k in sorted(r["metrics"]):
                if k.startswith("test_"):
                    text = f"{_safe(k)} {_fmt_value(r['metrics'][k])}"
                    if k in r["std"]:
                        text += f" ± {_fmt_value(r['std'][k])}"
                    parts.append(text)
            body = ", ".join(parts) if r["status"] == TrialStatus.SUCCEEDED else "failed: " + _first_line(r["error"])
            print(f"  {rank}trial {r['trial_id']}: {body or '-'} ({seeds}, {how})")
    print()


def _name_arg(args: argparse.Namespace) -> str | None:
    positional, option = getattr(args, "experiment", None), getattr(args, "name", None)
    if positional is not None and option is not None and positional != option:
        raise StoreError(f"two experiment names given ({positional!r} and --name {option!r}); give one")
    return positional if positional is not None else option


def cmd_export(args: argparse.Namespace) -> int:
    store = Store(args.store, readonly=True)
    records = _pick_experiments(store, _name_arg(args))
    if len(records) > 1:
        names = ", ".join(repr(r.name) for r in records)
        raise StoreError(f"{args.store!r} holds several experiments ({names}); name one: nasforge export {args.store} NAME")
    ranked = rank_trials(store.trials(records[0].id, with_reports=False))
    if not ranked:
        raise StoreError(f"experiment {records[0].name!r} has no successful trial to export")
    from nasforge.experiment.results import hyperparameter_labels

    hyper = hyperparameter_labels(records[0].config)  # training-recipe choices: not in the network
    top = ranked[: args.top]
    archs = [{k: v for k, v in t.arch.items() if k not in hyper} for t in top]
    if getattr(args, "onnx", None) or getattr(args, "torchscript", None):
        return _export_network(args, store, records[0], top[0], archs[0])
    payload: Any = archs[0] if args.top == 1 else archs
    text = json.dumps(payload, indent=2) + "\n"
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            f.write(text)
        print(f"wrote {len(top)} arch{'s' if len(top) > 1 else ''} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _export_network(args: argparse.Namespace, store: Store, record: ExperimentRecord, best: Trial,
                    arch: dict[str, Any]) -> int:
    """``export --onnx/--torchscript``: ``best``'s network (``arch``) with its saved weights (see nasforge.export)."""
    from nasforge import export as ex

    try:
        if not args.model or not args.input_shape:
            raise ex.ExportError("--onnx / --torchscript need --model FILE.py:ClassName (the model space) and "
                                 "--input-shape 1,C,H,W (an example input's shape, batch first)")
        shape = ex.parse_shape(args.input_shape)
        weights = None
        for r in reversed(store.tests(record.id)):
            if r.weights and r.arch == best.arch and r.status == TrialStatus.SUCCEEDED:
                options = [r.weights, os.path.join(os.path.dirname(os.path.abspath(args.store)), r.weights)]
                weights = next((p for p in options if os.path.isfile(p)), None)
                if weights is None:
                    raise ex.ExportError(f"the saved weights of trial {best.id} ({r.weights!r}) are missing")
                break
        if weights is None:
            weights = _kept_search_weights(record, best)
        if weights is None and not args.init_weights:
            raise ex.ExportError(
                f"experiment {record.name!r} has no saved weights for its best arch (trial {best.id}); save them with "
                f"exp.test(..., weights_dir=...) or Experiment(..., save_weights='best'), or pass --init-weights to export "
                f"freshly initialised weights")
        net = ex.build_network(ex.load_model_space(args.model), arch, weights)
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


def _kept_search_weights(record: ExperimentRecord, best: Trial) -> str | None:
    """The weights kept during the search (``Experiment(save_weights=...)``) for ``best``, if any."""
    folder = record.config.get("weights_dir")
    if not folder:
        return None
    per_trial = os.path.join(folder, f"trial_{best.id}.pt")
    if os.path.isfile(per_trial):
        return per_trial
    try:
        with open(os.path.join(folder, "best.json"), encoding="utf-8") as f:
            kept = json.load(f)
    except (OSError, ValueError):
        return None
    path = os.path.join(folder, "best.pt")
    return path if isinstance(kept, dict) and kept.get("trial") == best.id and os.path.isfile(path) else None


def _example_input(shape: tuple[int, ...]) -> Any:
    import torch

    return torch.randn(shape, generator=torch.Generator().manual_seed(0))


def cmd_run(args: argparse.Namespace) -> int:
    script = args.script
    if script is None:
        raise StoreError("nasforge run needs a script: nasforge run SCRIPT [options] -- ARGS")
    if not os.path.isfile(script):
        raise FileNotFoundError(f"script {script!r} not found")
    old_progress = os.environ.get("NASFORGE_PROGRESS")
    if args.progress:
        os.environ["NASFORGE_PROGRESS"] = "1"
    if args.no_progress:
        os.environ["NASFORGE_PROGRESS"] = "0"
    if args.log_level:
        import logging

        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s: %(message)s")
        logging.getLogger("nasforge").setLevel(args.log_level.upper())
    script_args = list(getattr(args, "script_args", []))
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [script, *script_args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv, sys.path[:] = old_argv, old_path
        if old_progress is None:
            os.environ.pop("NASFORGE_PROGRESS", None)
        else:
            os.environ["NASFORGE_PROGRESS"] = old_progress
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nasforge", description="Neural Architecture Search on PyTorch: inspect and run experiments.")
    from nasforge import __version__

    parser.add_argument("--version", action="version", version=f"nasforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    show = sub.add_parser("show", help="print the leaderboard, status counts and test results of a store")
    show.add_argument("store", help="the experiment's SQLite file")
    show.add_argument("experiment", nargs="?", help="the experiment's name (default: every experiment in the store)")
    show.add_argument("--name", help="same as the positional experiment name")
    show.add_argument("--top", type=int, default=10, help="rows of the leaderboard (default: 10)")
    show.add_argument("--width", type=int, default=None,
                      help="wrap archs to lines of this width (default: the terminal's; 0: one line each)")
    show.add_argument("--full", action="store_true",
                      help="show archs in full (no line limit), failures with their tracebacks, the evaluator")
    show.add_argument("--json", action="store_true", help="print everything as JSON (for scripts)")
    show.add_argument("--failures", action="store_true", help="also list failed trials and their reasons")
    show.set_defaults(func=cmd_show)

    export = sub.add_parser("export", help="write the best arch(s) as JSON (loadable with nasforge.fixed_arch)")
    export.add_argument("store", help="the experiment's SQLite file")
    export.add_argument("experiment", nargs="?", help="the experiment's name (needed when the store holds several)")
    export.add_argument("--name", help="same as the positional experiment name")
    export.add_argument("--top", type=int, default=1, help="how many archs (default: 1, a single JSON object; more: a list)")
    export.add_argument("-o", "--output", help="output file (default: standard output)")
    export.add_argument("--onnx", metavar="FILE", help="write the best arch's network (saved weights) as ONNX, checked with onnxruntime")
    export.add_argument("--torchscript", metavar="FILE", help="write the best arch's network as TorchScript")
    export.add_argument("--model", metavar="FILE.py:NAME", help="the model space (with --onnx/--torchscript), e.g. examples/mnist1d_space.py:Mnist1dSpace")
    export.add_argument("--input-shape", metavar="N,C,...", help="example input shape, batch first (with --onnx/--torchscript)")
    export.add_argument("--init-weights", action="store_true", help="export freshly initialised weights when none were saved")
    export.set_defaults(func=cmd_export)

    run = sub.add_parser(
        "run",
        usage="nasforge run [options] SCRIPT [options] [-- ARGS ...]",
        help="run a search script (as `python SCRIPT ARGS…` would)",
        description="Run a search script as `python SCRIPT ARGS…` would. Options of `nasforge run` may come before or "
        "after SCRIPT; everything after `--` goes to the script unchanged (as do unknown options before it).",
    )
    run.add_argument("script", nargs="?", help="the Python script")
    run.add_argument("--progress", action="store_true", help="force the progress bar even without a terminal")
    run.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error", "DEBUG", "INFO", "WARNING", "ERROR"],
                     help="print nasforge's log records of this level and above (e.g. info)")
    run.set_defaults(func=cmd_run)

    from nasforge.dashboard.cli import add_commands  # `dashboard` and `report`

    add_commands(sub)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``run`` takes its options before or after the script; what follows ``--`` (and options it does not
    know) goes to the script."""
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if first is None or argv[first] != "run" or any(a in ("-h", "--help", "--version") for a in argv[:first]):
        return parser.parse_args(argv)
    rest = argv[first + 1 :]
    after: list[str] = []
    if "--" in rest:
        cut = rest.index("--")
        rest, after = rest[:cut], rest[cut + 1 :]
    args, unknown = parser.parse_known_args([*argv[: first + 1], *rest])
    args.script_args = [*unknown, *after]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, list(sys.argv[1:] if argv is None else argv))
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
