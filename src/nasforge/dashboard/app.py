"""The dashboard's web app (Starlette): a JSON API over one store, read-only, and the page.

Routes (all GET)::

    /                                          the page (static/index.html)
    /static/<file>                             the page's own script, styles (a fixed list; no file-system path)
    /api/experiments                           summaries of every experiment in the store
    /api/experiments/<name or id>              one experiment: summary, plot data, chosen arch, tests
    /api/experiments/<name or id>/trials       the trials table (?status=SUCCEEDED,FAILED filters)
    /api/experiments/<name or id>/reports      intermediate reports of ?ids=1,2,3
    /api/experiments/<name or id>/arch.json    the chosen (best) arch as a JSON download

The store is opened read-only for every request (``Store(path, readonly=True)``); the app never
writes. A missing experiment or trial is a 404 with a JSON error, a bad query a 400.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nasforge.dashboard import data
from nasforge.store import ExperimentRecord, Store, StoreError

__all__ = ["create_app"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

_STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "plot.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "index.html": "text/html; charset=utf-8",
}

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class _JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(data.clean_json(content), ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def _json(content: Any, status_code: int = 200) -> Response:
    return _JSON(content, status_code=status_code, headers=_SECURITY_HEADERS)


def _error(status_code: int, message: str) -> Response:
    return _json({"error": message}, status_code)


def create_app(store_path: str | os.PathLike, allowed_hosts: list[str] | None = None) -> Starlette:
    """The dashboard app for the store file ``store_path`` (checked now: it must be a nasforge store).

    ``allowed_hosts``: the ``Host`` headers accepted (default: loopback names only, which keeps
    other web sites from reaching the API through DNS rebinding); ``["*"]`` accepts any.
    """
    path = os.fspath(store_path)
    if not os.path.isfile(path):
        raise StoreError(f"store file {path!r} does not exist")
    Store(path, readonly=True).close()  # a clear StoreError now rather than on the first request
    folder = resources.files("nasforge.dashboard") / "static"
    files = {name: (folder / name).read_bytes() for name in _STATIC}

    def static(name: str) -> Response:
        return Response(files[name], media_type=_STATIC[name], headers=_SECURITY_HEADERS)

    def index(request: Request) -> Response:
        return static("index.html")

    def static_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in files or name == "index.html":
            return _error(404, f"no static file {name!r}")
        return static(name)

    def experiments(request: Request) -> Response:
        with Store(path, readonly=True) as store:
            records = store.experiments()
            return _json({"store": os.path.basename(path), "experiments": [data.experiment_summary(store, r) for r in records]})

    def with_experiment(request: Request, respond: Callable[[Store, ExperimentRecord], Response]) -> Response:
        """``respond(store, record)`` for the experiment the URL names, or a 404 listing those there are."""
        key = request.path_params["name"]
        with Store(path, readonly=True) as store:
            rec = data.find_experiment(store, key)
            if rec is None:
                names = ", ".join(repr(r.name) for r in store.experiments()) or "none"
                return _error(404, f"no experiment {key!r} in this store; it holds: {names}")
            return respond(store, rec)

    def experiment(request: Request) -> Response:
        return with_experiment(request, lambda store, rec: _json(data.experiment_detail(store, rec)))

    def trials(request: Request) -> Response:
        def respond(store: Store, rec: ExperimentRecord) -> Response:
            try:
                rows = data.trial_rows(store.trials(rec.id, with_reports=False), request.query_params.get("status"),
                                       data.report_counts(store, rec.id))
            except ValueError as exc:
                return _error(400, str(exc))
            return _json({"experiment": rec.name, "trials": rows})

        return with_experiment(request, respond)

    def reports(request: Request) -> Response:
        raw = request.query_params.get("ids", "")
        try:
            ids = [int(x) for x in raw.split(",") if x.strip()]
        except ValueError:
            return _error(400, f"ids must be comma-separated trial ids, got {raw!r}")
        if len(ids) > 200:
            return _error(400, f"at most 200 trial ids at a time, got {len(ids)}")

        def respond(store: Store, rec: ExperimentRecord) -> Response:
            out = data.trial_reports(store.trials(rec.id, with_reports=True), ids)
            missing = [i for i in ids if str(i) not in out]
            if missing:
                return _error(404, f"no trial {missing[0]} in experiment {rec.name!r}")
            return _json({"experiment": rec.name, "trials": out})

        return with_experiment(request, respond)

    def arch_json(request: Request) -> Response:
        def respond(store: Store, rec: ExperimentRecord) -> Response:
            trials = store.trials(rec.id, with_reports=False)
            best = data.best_trial(trials, str(rec.config.get("metric", "score")), str(rec.config.get("mode", "max")))
            if best is None:
                return _error(404, f"experiment {rec.name!r} has no successful trial yet")
            return Response(
                json.dumps(best.arch, indent=2) + "\n",
                media_type="application/json",
                headers={**_SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="best_arch_trial_{best.id}.json"'},
            )

        return with_experiment(request, respond)

    def favicon(request: Request) -> Response:
        return Response(status_code=204, headers=_SECURITY_HEADERS)

    routes = [
        Route("/", index),
        Route("/favicon.ico", favicon),
        Route("/static/{name}", static_file),
        Route("/api/experiments", experiments),
        Route("/api/experiments/{name}", experiment),
        Route("/api/experiments/{name}/trials", trials),
        Route("/api/experiments/{name}/reports", reports),
        Route("/api/experiments/{name}/arch.json", arch_json),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, f"no such page: {request.url.path}")

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        return _error(405, "the dashboard is read-only: only GET requests")

    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS)
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
        exception_handlers={404: not_found, 405: method_not_allowed},
    )
    app.state.store_path = path
    return app
