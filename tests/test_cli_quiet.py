"""The CLI's stderr, in process: progress as stage lines off a terminal, and native
output (fd 2) silenced while Python's own stderr still reaches the user."""

from __future__ import annotations

import os
import sys

import pytest

from facecast.cli.quiet import native_stderr_silenced, verbose_requested
from facecast.cli.support import progress_bar


def test_progress_off_a_terminal_is_one_line_per_stage(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar(True) as update:
        for fraction, stage in [
            (0.0, ""),
            (0.0, "analysing face"),
            (0.01, "analysing face"),
            (0.05, "rendering"),
            (0.5, "rendering"),
            (1.0, "done"),
        ]:
            update(fraction, stage)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert [line.split(" (")[0] for line in lines] == ["analysing face", "rendering", "done"]
    assert lines[1].startswith("rendering (5%, ") and lines[2].startswith("done (100%, ")


def test_no_progress_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar(False) as update:
        update(0.5, "rendering")
    assert capsys.readouterr().err == ""


def test_native_stderr_is_silenced_and_restored(capfd: pytest.CaptureFixture[str]) -> None:
    with native_stderr_silenced():
        os.write(2, b"W0000 native chatter\n")
        print("facecast's own line", file=sys.stderr, flush=True)
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "W0000" not in err
    assert "facecast's own line" in err and "after" in err


@pytest.mark.parametrize(
    ("flag", "level", "verbose"),
    [
        (False, None, False),
        (False, "info", False),
        (False, "DEBUG", True),
        (True, None, True),
    ],
)
def test_verbose_from_flag_or_log_level(
    monkeypatch: pytest.MonkeyPatch, flag: bool, level: str | None, verbose: bool
) -> None:
    if level is None:
        monkeypatch.delenv("FACECAST_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("FACECAST_LOG_LEVEL", level)
    assert verbose_requested(flag) is verbose
