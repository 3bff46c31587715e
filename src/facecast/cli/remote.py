"""Remote mode: ``facecast --server URL render|demo|dub|clean|tts ...`` sends the work to a
facecast service (a bigger machine) through the Python client, with the same flags,
shows the job's progress with the same bar, and downloads the result to the output path.

The group's ``--server`` / ``--api-key`` (or ``FACECAST_SERVER`` / ``FACECAST_API_KEY``)
are kept on the click context; a command asks :func:`remote` whether to run here or there
and, there, translates its flags into the API request and calls :func:`run_job`. Errors
print as the local ones do (``error: message [code]``, exit status 2): the client's
exceptions are ``FacecastError`` s with the API's code."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from facecast.cli.support import fail, progress_bar
from facecast.errors import FacecastError

if TYPE_CHECKING:
    from facecast.api.native.wire import JobOut
    from facecast.client import Client

ENV_SERVER = "FACECAST_SERVER"
# a bar moves more smoothly than the client's default poll (the API answers a poll from
# a row at most 0.25 s old)
POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class Remote:
    server: str
    api_key: str | None


def server_options(group: Callable[..., Any]) -> Callable[..., Any]:
    """The group's --server and --api-key."""
    # no envvar here: without --api-key the client reads its own FACECAST_API_KEY
    group = click.option("--api-key", metavar="KEY",
                         help="API key for --server (default: FACECAST_API_KEY).")(group)
    return click.option(
        "--server", envvar=ENV_SERVER, metavar="URL",
        help="Run render, demo, dub, clean and tts on a facecast service at URL (e.g. "
             f"http://gpu-box:8000) with the same options, and download the result "
             f"(or {ENV_SERVER}).")(group)


def remember(ctx: click.Context, server: str | None, api_key: str | None) -> None:
    if server:
        ctx.obj = Remote(server, api_key)
    elif api_key:
        raise click.UsageError("--api-key goes with --server URL")


def remote() -> Remote | None:
    """The service the current command runs on, or None: here."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj if isinstance(obj, Remote) else None


def refuse_local_only(**given: object) -> None:
    """A usage error for options the service does not take, when they were given."""
    names = [name for name, value in given.items() if value]
    if names:
        raise click.UsageError(f"{', '.join(names)} cannot be used with --server")


def run_job(target: Remote, create: Callable[[Client], JobOut], progress: bool,
            downloads: dict[str, Path]) -> JobOut | None:
    """Submit with ``create``, follow the job with the progress bar and download its files
    (``downloads``: result file name -> local path). None after an error was printed
    (the process then exits 2) or the user interrupted (the job is canceled)."""
    from facecast.client import Client

    try:
        with Client(target.server, target.api_key) as client:
            job = create(client)
            click.echo(f"{job.id} {job.status} on {client.base_url}", err=True)
            try:
                with progress_bar(progress) as update:
                    done = client.jobs.wait(job, progress=update,
                                            poll_interval=POLL_INTERVAL_S)
            except KeyboardInterrupt:
                client.jobs.cancel(job)
                click.echo(f"canceled {job.id}", err=True)
                sys.exit(130)
            for name, path in downloads.items():
                client.jobs.download(done, path, file=name)
            return done
    except FacecastError as exc:
        fail(exc)
        return None
