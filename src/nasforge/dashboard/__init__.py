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

from nasforge._lazy import lazy_attributes

__all__ = ["create_app", "serve", "write_report"]


_LAZY = {
    "create_app": "nasforge.dashboard.app",  # the Starlette app of the dashboard for one store
    "serve": "nasforge.dashboard.server",  # serve the dashboard until interrupted
    "write_report": "nasforge.dashboard.report",  # write the static report of a store into a folder
}

# imported on first use: the web and plotting libraries are optional extras
__getattr__ = lazy_attributes(__name__, _LAZY)
