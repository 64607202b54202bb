"""The ``nasforge dashboard`` and ``nasforge report`` commands (registered by :mod:`nasforge.cli`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["add_commands"]


def cmd_dashboard(args: argparse.Namespace) -> int:
    from nasforge.dashboard.server import MISSING_EXTRA, serve
    from nasforge.store import StoreError

    if not os.path.exists(args.store):
        raise StoreError(f"store file {args.store!r} does not exist")
    try:
        serve(args.store, args.host, args.port)
    except StoreError:
        raise
    except (ImportError, OSError, ValueError) as exc:  # a missing extra names the extra to install
        missing = isinstance(exc, ImportError) and MISSING_EXTRA not in str(exc)
        print(f"nasforge dashboard: error: {MISSING_EXTRA if missing else exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from nasforge.dashboard.report import write_report

    files = write_report(args.store, args.output, args.name)
    print(f"wrote {len(files)} files to {args.output}: {', '.join(os.path.basename(f) for f in files)}", file=sys.stderr)
    return 0


def add_commands(sub: Any) -> None:
    """Add ``dashboard`` and ``report`` to the ``nasforge`` command's sub-parsers."""
    dash = sub.add_parser("dashboard", help="serve a live, read-only web dashboard of a store")
    dash.add_argument("store", help="the experiment's SQLite file")
    dash.add_argument("--host", default="127.0.0.1",
                      help="interface to listen on (default: 127.0.0.1, this machine only; another one prints a warning)")
    dash.add_argument("--port", type=int, default=8080, help="TCP port (default: 8080; 0: any free port)")
    dash.set_defaults(func=cmd_dashboard)

    report = sub.add_parser("report", help="write PNG plots and a self-contained HTML report of a store")
    report.add_argument("store", help="the experiment's SQLite file")
    report.add_argument("-o", "--output", required=True, help="output folder (created if needed)")
    report.add_argument("--name", help="only this experiment (default: every experiment in the store)")
    report.set_defaults(func=cmd_report)
