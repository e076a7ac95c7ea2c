"""``python -m repohost.local`` (what ``make run`` runs).

Prepares ``./data`` (SQLite database, repository root), applies the migrations, makes
sure there is an admin, prints how to call the API, and serves every route of
``template.yaml`` until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from repohost.config import Settings, get_settings
from repohost.local.server import LocalServer
from repohost.local.template import TemplateError

log = logging.getLogger("repohost.local")


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError(value)
    return port


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m repohost.local",
        description="Serve template.yaml's routes locally, calling the handlers in-process.",
    )
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=None, help="default: $PORT or 8080")
    args = parser.parse_args(argv)
    if args.port is None:
        try:
            args.port = _port(os.environ.get("PORT", "8080"))
        except ValueError:
            parser.error(f"PORT must be a TCP port number, got {os.environ['PORT']!r}")
    return args


def _prepare_directories(settings: Settings) -> None:
    """Create the SQLite database's directory and the repository root if missing."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    Path(settings.repos_root).mkdir(parents=True, exist_ok=True)


def _recover(settings: Settings) -> None:
    """Finish what a killed run left (``repohost.recovery``); nothing else serves yet."""
    from repohost import recovery

    outcome = recovery.recover(settings.repos_root, stale_after=0)
    if outcome.settled or outcome.purged:
        log.info(
            "recovery: %d unfinished steps settled (%d undone), %d leftovers purged",
            outcome.settled,
            outcome.undone,
            outcome.purged,
        )
    if not settings.job_queue_url:
        sent = recovery.requeue_jobs()
        if sent:
            log.info("recovery: %d unfinished jobs queued again", sent)


def _banner(url: str, key: str | None) -> str:
    shown = key or "<an admin API key>"
    call = (
        f"curl -s {url}/_admin/api -H 'Content-Type: application/json' "
        f'--data \'{{"id":1,"api_key":"{shown}","method":"get_user","args":{{}}}}\''
    )
    if key:
        about_key = f"Admin API key (shown once): {key}"
    else:
        about_key = (
            "An admin already exists; its key was shown when it was created.\n"
            "For another key, call the create_api_key method with a key you have."
        )
    return f"repohost is serving on {url} (Ctrl-C stops it)\n{about_key}\nTry:\n  {call}"


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops the server the same clean way as Ctrl-C."""
    raise KeyboardInterrupt


def _run(args: argparse.Namespace) -> int:
    try:
        server = LocalServer(args.template, host=args.host, port=args.port)
    except (OSError, TemplateError) as exc:
        print(f"repohost: cannot serve {args.template} on port {args.port}: {exc}", file=sys.stderr)
        return 1
    for route in server.routes:
        log.info("route %s -> %s (%s)", route.route_key, route.function_name, route.handler)

    from repohost.db import bootstrap, migrate

    settings = get_settings()
    _prepare_directories(settings)
    migrate.upgrade()
    bootstrap.ensure_defaults()
    _recover(settings)
    key = bootstrap.ensure_first_admin(os.environ.get("ADMIN_API_KEY"))
    print(_banner(server.url, key), flush=True)
    server.serve_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 after Ctrl-C or SIGTERM)."""
    args = _parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logging.getLogger("repohost").addHandler(handler)
    logging.getLogger("repohost").setLevel(logging.INFO)
    signal.signal(signal.SIGTERM, _stop)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("repohost: stopped", file=sys.stderr)
        return 0


if __name__ == "__main__":
    sys.exit(main())
