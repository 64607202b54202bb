"""Running the dashboard with uvicorn on a socket bound here (so ``port=0`` picks a free port)."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import TextIO

__all__ = ["MISSING_EXTRA", "is_loopback", "serve"]

MISSING_EXTRA = (
    "the dashboard needs starlette and uvicorn: pip install 'nasforge[dashboard]' "
    "(scripts/setup.sh installs them)"
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6); port 0 takes a free one."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int from 0 to 65535 (0: any free port), got {port!r}")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ValueError(f"cannot use host {host!r}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def serve(
    store_path: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    log_level: str = "warning",
    out: TextIO | None = None,
) -> None:
    """Serve the dashboard of ``store_path`` on ``host:port`` until Ctrl-C.

    Binds the loopback interface by default; any other ``host`` (e.g. ``0.0.0.0``) makes the
    (read-only) results visible to the network and prints a warning.
    """
    out = out or sys.stdout
    try:
        import uvicorn

        from nasforge.dashboard.app import LOOPBACK_HOSTS, create_app
    except ImportError as exc:
        raise ImportError(f"{MISSING_EXTRA} ({exc})") from None
    loopback = is_loopback(host)
    app = create_app(store_path, allowed_hosts=[*LOOPBACK_HOSTS, host.strip("[]")] if loopback else ["*"])
    if not loopback:
        print(
            f"WARNING: serving on {host}, not the loopback interface: anyone who can reach this machine can read "
            f"the results in {os.fspath(store_path)!r} (read-only, no authentication). Use --host 127.0.0.1 to keep it local.",
            file=sys.stderr,
            flush=True,
        )
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    print(f"nasforge dashboard of {os.fspath(store_path)} (read-only) at http://{shown}:{actual}/  (Ctrl-C to stop)", file=out, flush=True)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
