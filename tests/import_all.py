"""Import every module of facecast; exit 1, naming each failure, if any does not import.

CI runs this under the lowest supported Python (3.10, `.ci/run`), where a 3.11-only
name (``datetime.UTC``, ``typing.Self``, ``tomllib``) breaks an import that the test
suite on a newer Python never notices. Usage: ``python tests/import_all.py``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback


def main() -> int:
    import facecast

    names = ["facecast"] + [
        info.name
        for info in pkgutil.walk_packages(facecast.__path__, "facecast.")
        # __main__ modules run the CLI when imported
        if not info.name.endswith(".__main__")
    ]
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
            f"{len(failed)} of {len(names)} facecast modules do not import on Python "
            f"{version}: {', '.join(failed)}",
            file=sys.stderr,
        )
        return 1
    print(f"all {len(names)} facecast modules import on Python {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
