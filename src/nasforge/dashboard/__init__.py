"""The user's view of a store: a live, read-only web dashboard and a static report.

* ``nasforge dashboard STORE [--host 127.0.0.1] [--port 8080]`` — :func:`serve` (needs the
  ``dashboard`` extra: starlette, uvicorn);
* ``nasforge report STORE -o DIR`` — :func:`write_report` (PNG plots via matplotlib and one
  self-contained HTML file).

Both only read the store (opened with ``readonly=True``). The data they show is computed by
:mod:`nasforge.dashboard.data` (plain JSON, no web framework). Example::

    from nasforge.dashboard import write_report
    write_report("runs/main/search.db", "runs/main/report")
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve", "write_report"]


def create_app(store_path: Any, allowed_hosts: list[str] | None = None) -> Any:
    """The Starlette app of the dashboard for one store (see :mod:`nasforge.dashboard.app`)."""
    from nasforge.dashboard.app import create_app as _create

    return _create(store_path, allowed_hosts)


def serve(store_path: Any, host: str = "127.0.0.1", port: int = 8080, **kwargs: Any) -> None:
    """Serve the dashboard until interrupted (see :func:`nasforge.dashboard.server.serve`)."""
    from nasforge.dashboard.server import serve as _serve

    _serve(store_path, host, port, **kwargs)


def write_report(store_path: Any, out_dir: Any, name: str | None = None) -> list[str]:
    """Write the static report of a store into ``out_dir`` (see :mod:`nasforge.dashboard.report`)."""
    from nasforge.dashboard.report import write_report as _write

    return _write(store_path, out_dir, name)
