"""The import graph of ``src/facecast``: no cycles, and the engine below the service.

The rule: every ``import`` of a facecast module counts, wherever it is written: at
module level or inside a function (a function-level import that closes a loop is still
a cycle, only a deferred one). The one exception is an import under
``if TYPE_CHECKING:``, which never runs. Function-level imports are fine where they
form no cycle: for optional or heavy modules (the video-avatar engine, PyAV-backed
readers) or ones with import-time side effects (the Huey queue), so that importing the
caller stays cheap. A cycle is broken by moving what both sides share down a layer.

Edges point at the most specific module named: ``from facecast.speech import synth``
is an edge to ``facecast.speech.synth``, ``from facecast.speech import synthesize`` one
to the package ``facecast.speech`` (its ``__init__``). The parent packages an import
loads on the way are not edges: a package's ``__init__`` re-exporting its modules is
not a cycle with them.

The layering rule of docs/ARCHITECTURE.md is checked too: the engine packages import
nothing from the service, the HTTP API, the CLI or the server.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import facecast

PACKAGE_DIR = Path(facecast.__file__).parent
ENGINE_PACKAGES = ["media", "face", "motion", "render", "pipeline", "cleanup", "speech", "quality",
                   "captions"]
ABOVE_ENGINE = ("facecast.service", "facecast.api", "facecast.console", "facecast.cli",
                "facecast.server", "facecast.client")


def is_above_engine(module: str) -> bool:
    """The service, the API, the server, the Python client and the CLI (``cli.py``,
    ``cli_*.py`` or a package)."""
    return module.startswith("facecast.cli_") or any(
        module == top or module.startswith(top + ".") for top in ABOVE_ENGINE
    )


Graph = dict[str, dict[str, int]]  # module -> {imported module: first line}


def module_files(root: Path = PACKAGE_DIR) -> dict[str, tuple[Path, bool]]:
    """Every module's dotted name -> (file, whether it is a package's ``__init__``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = ["facecast", *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that can run: all of them but those under ``if TYPE_CHECKING``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(root: Path = PACKAGE_DIR) -> Graph:
    modules = module_files(root)

    def owner(name: str) -> str | None:
        # the longest prefix that is a module of ours: facecast.x.Y -> facecast.x
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: Graph = {}
    for name, (path, is_package) in modules.items():
        base = name if is_package else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [owner(a.name) for a in node.names if a.name.startswith("facecast")]
            else:
                if node.level:
                    anchor = base
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    source = ".".join(p for p in (anchor, node.module) if p)
                else:
                    source = node.module or ""
                if source == "facecast" or source.startswith("facecast."):
                    targets = [
                        f"{source}.{a.name}" if f"{source}.{a.name}" in modules else owner(source)
                        for a in node.names
                    ]
            for target in targets:
                if target is not None and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(found)


def describe(component: list[str], graph: Graph) -> str:
    members = set(component)
    edges = [
        f"  {a} -> {b} (line {line})"
        for a in component
        for b, line in sorted(graph[a].items())
        if b in members
    ]
    return "cycle between " + ", ".join(component) + ":\n" + "\n".join(edges)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph()


def test_graph_sees_the_package(graph: Graph) -> None:
    # a walk that found nothing would pass every other test
    assert len(graph) > 100
    # a module-level import and a function-level one (the runners load the pipeline late)
    assert "facecast.render.dub" in graph["facecast.pipeline.dub_video"]
    assert "facecast.pipeline.dub_video" in graph["facecast.service.runners"]


def test_no_import_cycles(graph: Graph) -> None:
    found = cycles(graph)
    assert not found, "\n".join(describe(c, graph) for c in found)


@pytest.mark.parametrize(
    ("module", "above"),
    [
        ("facecast.service.core", True),
        ("facecast.api.native.jobs", True),
        ("facecast.cli", True),
        ("facecast.cli_dub", True),
        ("facecast.cli.render", True),
        ("facecast.client._plan", True),
        ("facecast.clips", False),
        ("facecast.server", True),
        ("facecast.servers", False),
        ("facecast.render.compose", False),
        ("facecast.errors", False),
    ],
)
def test_above_engine(module: str, above: bool) -> None:
    assert is_above_engine(module) is above


@pytest.mark.parametrize("package", ENGINE_PACKAGES)
def test_engine_does_not_import_service_or_api(graph: Graph, package: str) -> None:
    prefix = f"facecast.{package}"
    bad = [
        f"{m} -> {t} (line {line})"
        for m, edges in sorted(graph.items())
        if m == prefix or m.startswith(prefix + ".")
        for t, line in edges.items()
        if is_above_engine(t)
    ]
    assert not bad, f"{package} imports from above the engine:\n" + "\n".join(bad)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "facecast" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "facecast"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # module level, both ways
        (
            {"__init__.py": "", "a.py": "from facecast import b\n", "b.py": "import facecast.a\n"},
            [["facecast.a", "facecast.b"]],
        ),
        # a function-level import closes the loop too
        (
            {
                "__init__.py": "",
                "a.py": "from facecast.b import x\n",
                "b.py": "x = 1\ndef f():\n    from facecast.a import y\n",
            },
            [["facecast.a", "facecast.b"]],
        ),
        # relative imports, three modules round
        (
            {
                "__init__.py": "",
                "p/__init__.py": "",
                "p/a.py": "from .b import x\n",
                "p/b.py": "from ..c import y\nx = 1\n",
                "c.py": "from facecast.p.a import z\n",
            },
            [["facecast.c", "facecast.p.a", "facecast.p.b"]],
        ),
        # TYPE_CHECKING imports never run
        (
            {
                "__init__.py": "",
                "a.py": "from facecast.b import x\n",
                "b.py": (
                    "from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from facecast.a import y\n"
                ),
            },
            [],
        ),
        # a package re-exporting its module is not a cycle with it
        (
            {
                "__init__.py": "",
                "p/__init__.py": "from facecast.p.a import x\n",
                "p/a.py": "x = 1\n",
            },
            [],
        ),
    ],
)
def test_cycle_finder(tmp_path: Path, files: dict[str, str], expected: list[list[str]]) -> None:
    assert cycles(import_graph(_write(tmp_path, files))) == expected


# Names that moved to a module of their own in a split and are still imported from their
# old home by users (the CLI, the API, other packages): they stay importable there.
KEPT_NAMES = [
    ("facecast.service.ingest", "UrlPolicy"),
    ("facecast.service.ingest", "check_url"),
    ("facecast.service.ingest", "download"),
    ("facecast.service.ingest", "decode_base64"),
    ("facecast.service.ingest", "save_upload"),
    ("facecast.service.ingest", "verify_media"),
    ("facecast.service.ingest", "IPAddress"),
    ("facecast.service.ingest", "PinnedBackend"),
    ("facecast.service.ingest", "shared_ssl_context"),
    ("facecast.pipeline.dub_video", "output_rate"),
    ("facecast.pipeline.dub_video", "source_output_rate"),
    ("facecast.pipeline.dub_video", "prefetched"),
    ("facecast.pipeline.dub_video", "Loop"),
    ("facecast.pipeline.dub_video", "schedule"),
    ("facecast.pipeline.dub_video", "FaceTracking"),
    ("facecast.render.dub", "eye_frame"),
    ("facecast.render.dub", "mouth_gap"),
    ("facecast.service.avatars", "local_package"),
    ("facecast.service.avatars", "video_engine"),
    ("facecast.service.avatars", "check_meta"),
    ("facecast.speech.text", "check_characters"),
]


@pytest.mark.parametrize(("module", "name"), KEPT_NAMES)
def test_moved_names_stay_importable(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name)


@pytest.mark.parametrize("module", ["facecast.service.ingest", "facecast.pipeline.dub_video"])
def test_all_lists_only_real_names(module: str) -> None:
    # httpx's test_exported_members: every name a package exports exists
    mod = importlib.import_module(module)
    assert mod.__all__
    assert [n for n in mod.__all__ if not hasattr(mod, n)] == []


def test_client_reaches_only_the_wire_models(graph: Graph) -> None:
    # facecast.client runs on machines that only call a service: everything it loads,
    # transitively, stays out of the service, the server, the CLI, the engine and the
    # web framework's modules (tests/test_client.py checks the third-party side)
    allowed_api = {"facecast.api", "facecast.api.wire", "facecast.api.native",
                   "facecast.api.native.wire"}
    seen: set[str] = set()
    todo = [m for m in graph if m == "facecast.client" or m.startswith("facecast.client.")]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            # the request specs import their checkers when a check runs, which the
            # client never does (the server checks)
            if module != "facecast.pipeline.specs":
                todo.extend(graph.get(module, {}))
    bad = sorted(m for m in seen if (is_above_engine(m) and m not in allowed_api
                                     and not m.startswith("facecast.client"))
                 or any(m.startswith(f"facecast.{p}") for p in ENGINE_PACKAGES
                        if p != "pipeline")
                 or (m.startswith("facecast.pipeline.") and m != "facecast.pipeline.specs"))
    assert "facecast.api.native.wire" in seen
    assert not bad, bad
