"""Import every module of facecast; exit 1, naming each failure, if any does not import.

CI runs this under the lowest supported Python (3.10, `.ci/run`), where a 3.11-only
name (``datetime.UTC``, ``typing.Self``, ``tomllib``) breaks an import that the test
suite on a newer Python never notices, and under the highest (3.13), where a dependency
may lack something it needs there (pyworld imports ``pkg_resources``, which venvs from
Python 3.12 on do not have). facecast imports its heavy dependencies where they are used,
so those are imported here too. Usage: ``python tests/import_all.py``.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path


def module_names() -> list[str]:
    """Every module under the facecast package folder, by its files rather than by
    ``pkgutil.walk_packages``, which skips folders without an ``__init__.py`` (service/)."""
    import facecast

    root = Path(next(iter(facecast.__path__)))
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        # Alembic's scripts run migrations when imported; __main__ runs the CLI
        if "migrations" in parts or parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


# Imported inside functions by facecast, so a module import alone does not reach them.
LAZY_DEPENDENCIES = ("pyworld", "parselmouth", "pocketsphinx", "piper", "rapidocr",
                     "ai_edge_litert.interpreter", "onnxruntime", "av", "cv2", "scipy.signal",
                     "aiortc")


def main() -> int:
    names = module_names() + list(LAZY_DEPENDENCIES)
    failed: list[str] = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            failed.append(name)
            print(f"--- {name} does not import:\n{traceback.format_exc()}", file=sys.stderr)
    version = ".".join(map(str, sys.version_info[:3]))
    if failed:
        print(
            f"{len(failed)} of {len(names)} modules (facecast's and its lazily imported "
            f"dependencies) do not import on Python "
            f"{version}: {', '.join(failed)}",
            file=sys.stderr,
        )
        return 1
    print(f"all {len(names)} modules (facecast's and its lazily imported dependencies) "
          f"import on Python {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
