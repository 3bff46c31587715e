"""The ``facecast`` command line: the click group ``main`` (the ``facecast`` console
script) and the registration of every command module in this package.

One module per command group: ``render`` (demo, render, check-face), ``speech``
(voices, languages, tts, clone-voice, voice), ``avatar``, ``dub``, ``clean``,
``expressions`` and ``serve`` (serve, worker, live-worker); ``support`` holds what they
share. Before any command but those three, the group hides the native libraries'
stderr chatter (``quiet``) unless ``--verbose`` or ``FACECAST_LOG_LEVEL=debug``.
Thin by design: a command parses options, calls the pipeline with a progress bar and
prints results; errors come out as one clear line (and exit code 2 for bad input)
rather than a traceback. With ``--server URL`` render, dub, clean and tts run on a
facecast service instead (``remote``).
"""

from __future__ import annotations

import atexit
import gc

import click

from facecast import __version__
from facecast.cli.avatar import avatar
from facecast.cli.clean import clean
from facecast.cli.dub import dub
from facecast.cli.expressions import expressions
from facecast.cli.quiet import native_stderr_silenced, quiet_native_env, verbose_requested
from facecast.cli.remote import remember, server_options
from facecast.cli.render import check_face_cmd, demo, render
from facecast.cli.serve import live_worker, serve, worker
from facecast.cli.speech import clone_voice, languages, tts, voice, voices

__all__ = ["main"]


# The service's processes keep their stderr: uvicorn and the workers log there.
_KEEP_NATIVE_STDERR = frozenset({"serve", "worker", "live-worker"})


@click.group()
@click.version_option(__version__, prog_name="facecast")
@click.option("-v", "--verbose", is_flag=True,
              help="Also show the native libraries' own messages (MediaPipe, TensorFlow Lite, "
                   "libpng); same as FACECAST_LOG_LEVEL=debug.")
@server_options
@click.pass_context
def main(ctx: click.Context, verbose: bool, server: str | None, api_key: str | None) -> None:
    """facecast: talking-avatar videos from a photo and speech, on your own machine (or,
    with --server, on a facecast service)."""
    remember(ctx, server, api_key)
    # The process ends with the command. Python's last garbage collections then walk every
    # object MediaPipe, SciPy and PyAV made (over 100 000 after a render): 1-2 s of a
    # loaded machine's time after the video was written, 0.1-0.3 s with them frozen.
    # Nothing alive at that point needs collecting.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    if verbose_requested(verbose):
        return
    quiet_native_env()
    if ctx.invoked_subcommand not in _KEEP_NATIVE_STDERR:
        ctx.with_resource(native_stderr_silenced())


for command in (demo, render, check_face_cmd, voices, languages, tts, clone_voice, voice, serve,
                worker, live_worker, dub, clean, avatar, expressions):
    main.add_command(command)
