"""The ``facecast`` command line: the click group ``main`` (the ``facecast`` console
script) and the registration of every command module in this package.

One module per command group: ``render`` (demo, render, check-face), ``speech``
(voices, languages, tts, clone-voice, voice), ``avatar``, ``dub``, ``clean``,
``expressions`` and ``serve`` (serve, worker); ``support`` holds what they share.
Thin by design: a command parses options, calls the pipeline with a progress bar and
prints results; errors come out as one clear line (and exit code 2 for bad input)
rather than a traceback.
"""

from __future__ import annotations

import os

import click

from facecast import __version__
from facecast.cli.avatar import avatar
from facecast.cli.clean import clean
from facecast.cli.dub import dub
from facecast.cli.expressions import expressions
from facecast.cli.render import check_face_cmd, demo, render
from facecast.cli.serve import serve, worker
from facecast.cli.speech import clone_voice, languages, tts, voice, voices

__all__ = ["main"]


def _quiet_native_logs() -> None:
    # MediaPipe and TensorFlow Lite print banner lines on stderr; users do not need them.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@click.group()
@click.version_option(__version__, prog_name="facecast")
def main() -> None:
    """facecast: talking-avatar videos from a photo and speech, on your own machine."""
    _quiet_native_logs()


for command in (demo, render, check_face_cmd, voices, languages, tts, clone_voice, voice, serve,
                worker, dub, clean, avatar, expressions):
    main.add_command(command)
