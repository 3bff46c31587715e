"""Type checks at the lowest supported Python: mypy over src/facecast reports no errors.

The configuration (``[tool.mypy]`` in pyproject.toml) pins ``python_version`` to the
lowest Python that ``requires-python`` admits, so a 3.11-only API fails here even when
the suite runs on a newer Python.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_checks_at_the_lowest_supported_python() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    lowest = re.search(r'^requires-python = ">=(\d+\.\d+)', text, re.M)
    checked = re.search(r'^python_version = "(\d+\.\d+)"', text, re.M)
    assert lowest is not None and checked is not None, "requires-python or mypy config missing"
    assert checked.group(1) == lowest.group(1)


@pytest.mark.slow
def test_mypy_finds_no_errors() -> None:
    # run from the checkout's root, so mypy reads its [tool.mypy] and checks this src/
    proc = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mypy found errors (exit {proc.returncode}):\n{output}"
    assert "Success: no issues found" in proc.stdout, output


def test_every_module_imports() -> None:
    # the same script CI runs under Python 3.10 (.ci/run), here under this Python and
    # on this checkout's src/ (whatever facecast is installed)
    paths = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "import_all.py")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "lazily imported dependencies) import on Python" in proc.stdout, output
