"""The install is reproducible: what is installed is what constraints.txt pins.

A fresh machine resolves dependencies anew; the README's install command and
.ci/run pass constraints.txt so that an upstream release cannot change what the
suite runs on. This test fails when the environment drifted from the lock (an
install without the constraints, or a lock not re-resolved after pyproject.toml
changed).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"


def _pins() -> dict[str, str]:
    """Package -> pinned version for the running Python and platform."""
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name_version, _, marker = line.partition(";")
        name, _, version = name_version.strip().partition("==")
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        pins[canonicalize_name(name)] = version.strip()
    return pins


def _requirements(name: str, extras: frozenset[str] = frozenset()) -> list[Requirement]:
    """The installed distribution's requirements that apply with these extras."""
    found = []
    for text in metadata.requires(name) or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
            found.append(req)
    return found


def _closure() -> set[str]:
    """facecast's dependencies with the dev extra, followed transitively."""
    seen: set[str] = set()
    todo = _requirements("facecast", frozenset({"dev"}))
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            todo.extend(_requirements(name, frozenset(req.extras)))
        except metadata.PackageNotFoundError:
            continue
    return seen


def test_lock_pins_every_direct_dependency() -> None:
    pins = _pins()
    missing = [
        r.name
        for r in _requirements("facecast", frozenset({"dev"}))
        if canonicalize_name(r.name) not in pins
    ]
    assert not missing, f"constraints.txt does not pin {missing}: re-resolve it (README)"


def test_installed_versions_are_the_locked_ones() -> None:
    pins = _pins()
    drift = {}
    for name in sorted(_closure()):
        if name not in pins:
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if canonicalize_name(installed) != canonicalize_name(pins[name]):
            drift[name] = (installed, pins[name])
    assert not drift, (
        "installed versions differ from constraints.txt (installed, pinned): "
        f"{drift}; install with `pip install -c constraints.txt -e .[dev]`"
    )


@pytest.mark.parametrize("tool", ["pytest", "schemathesis"])
def test_test_tools_are_pinned_exactly(tool: str) -> None:
    assert re.fullmatch(r"[0-9][0-9A-Za-z.]*", _pins()[tool])
