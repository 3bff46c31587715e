"""The ``facecast`` service commands: serve (API, workers, database and storage on
this machine), worker (jobs from a shared queue) and live-worker (live avatar sessions
placed by the API processes)."""

from __future__ import annotations

import os

import click


@click.command()
@click.option("--host", help="Address to listen on (FACECAST_HOST, default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (FACECAST_PORT, default 8000).")
@click.option("--workers", type=click.IntRange(0, 64),
              help="Worker processes to start (FACECAST_WORKERS, default 1; 0: none here).")
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False),
              help="Serve HTTPS with this PEM certificate (chain) (FACECAST_SSL_CERTFILE).")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False),
              help="The certificate's PEM private key (FACECAST_SSL_KEYFILE).")
@click.option("--api-workers", type=click.IntRange(1, 64),
              help="API processes sharing the port (FACECAST_API_WORKERS, default 1). Above "
                   "1, live streams run on a live worker started beside them (see "
                   "live-worker).")
def serve(host: str | None, port: int | None, workers: int | None, ssl_certfile: str | None,
          ssl_keyfile: str | None, api_workers: int | None) -> None:
    """Run the HTTP API, its workers, database and storage on this machine."""
    from facecast.server import serve as run_server
    from facecast.service.settings import Settings

    overrides = {k: v for k, v in (("host", host), ("port", port), ("workers", workers),
                                   ("ssl_certfile", ssl_certfile), ("ssl_keyfile", ssl_keyfile),
                                   ("api_workers", api_workers))
                 if v is not None}
    for name, value in overrides.items():
        os.environ[f"FACECAST_{name.upper()}"] = str(value)  # the worker child reads these too
    run_server(Settings())


@click.command()
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (default 1).")
def worker(workers: int | None) -> None:
    """Run jobs from the shared queue (FACECAST_DATABASE_URL, _QUEUE_URL, _STORAGE_URL)."""
    from facecast.service.consumer import run_consumer

    run_consumer(workers)


@click.command("live-worker")
@click.option("--host", help="Private address the RPC server listens on, for the API "
                             "processes (FACECAST_LIVE_WORKER_HOST, default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535),
              help="Its port (FACECAST_LIVE_WORKER_PORT, default 0: any free port).")
@click.option("--url", help="How the API processes reach it, when not http://HOST:PORT "
                            "(FACECAST_LIVE_WORKER_URL).")
@click.option("--max-sessions", type=click.IntRange(0, 1000),
              help="Sessions to run at once (FACECAST_LIVE_MAX_SESSIONS, default the CPU "
                   "cores / FACECAST_LIVE_CPU_PER_SESSION).")
def live_worker(host: str | None, port: int | None, url: str | None,
                max_sessions: int | None) -> None:
    """Run live avatar sessions placed here by the API processes (FACECAST_DATABASE_URL
    and FACECAST_SECRET_KEY shared with them; FACECAST_LIVE_PLACEMENT=workers there).
    Media goes from this machine to the players over UDP."""
    from facecast.api.live_worker import run_live_worker
    from facecast.service.settings import Settings

    for name, value in (("live_worker_host", host), ("live_worker_port", port),
                        ("live_worker_url", url), ("live_max_sessions", max_sessions)):
        if value is not None:
            os.environ[f"FACECAST_{name.upper()}"] = str(value)
    run_live_worker(Settings())
