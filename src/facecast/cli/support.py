"""Pieces every facecast command shares: the progress bar, the one-line error exit
and the --progress option. Command modules import these from here (never from
``facecast.cli``, which imports them back to register their commands)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from facecast.errors import FacecastError


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[float, str], None]]:
    from tqdm import tqdm

    bar = tqdm(total=100, unit="%", disable=not enabled, dynamic_ncols=True, mininterval=0.5,
               bar_format="{desc:<20} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")

    def update(fraction: float, stage: str) -> None:
        bar.set_description_str(stage)
        bar.n = round(100 * min(max(fraction, 0.0), 1.0))
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def fail(exc: FacecastError) -> None:
    click.echo(f"error: {exc.message} [{exc.code}]", err=True)
    sys.exit(2)


progress_option = click.option("--progress/--no-progress", default=True,
                               help="Show a progress bar.")
