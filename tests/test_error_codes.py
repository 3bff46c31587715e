"""The list of error codes (facecast.errors.CODES) against the code that raises them and
the API documentation that lists them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from facecast.errors import CODES, CODES_LIST, codes_markdown
from facecast.face.check import REASONS

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "facecast"
# the functions the API layer answers with a code of its own: error_response(status, code)
HTTP_ANSWERS = {"error_response", "_error"}


def _raised_codes() -> dict[str, str]:
    """Every literal error code in src/: ``code="..."`` in a call, ``code = "..."`` in a
    class, the code argument of the API's own error answers; with where it was seen."""
    found: dict[str, str] = {}
    for path in sorted(SRC.rglob("*.py")):
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if (
                        kw.arg == "code"
                        and isinstance(kw.value, ast.Constant)
                        and isinstance(kw.value.value, str)
                    ):
                        found.setdefault(kw.value.value, f"{where}:{node.lineno}")
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if (
                    name in HTTP_ANSWERS
                    and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant)
                ):
                    found.setdefault(node.args[1].value, f"{where}:{node.lineno}")
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if (
                        isinstance(item, ast.Assign)
                        and isinstance(item.value, ast.Constant)
                        and any(getattr(t, "id", "") == "code" for t in item.targets)
                        and isinstance(item.value.value, str)
                    ):
                        found.setdefault(item.value.value, f"{where}:{item.lineno}")
    # parse_id(kind, value, what) raises f"{what}_not_found"
    text = "\n".join(p.read_text(encoding="utf-8") for p in SRC.rglob("*.py"))
    for what in re.findall(r'parse_id\("\w+", [\w.\[\]"\']+, "([a-z ]+)"\)', text):
        found.setdefault(f"{what.replace(' ', '_')}_not_found", "parse_id")
    # the job's failure when its worker is lost, and the face check's reasons
    found.setdefault("worker_lost", "service/jobs.py")
    for reason in REASONS:
        found.setdefault(reason, "face/check.py")
    return found


RAISED = _raised_codes()


def test_the_scan_finds_the_raise_sites() -> None:
    # a scan that found nothing would make the next test pass vacuously
    assert len(RAISED) > 100
    assert {
        "no_face",
        "forbidden",
        "storage_full",
        "malformed_json",
        "job_not_found",
    } <= RAISED.keys()


@pytest.mark.parametrize("code", sorted(RAISED))
def test_every_raised_code_is_listed(code: str) -> None:
    assert code in CODES, f"{code} (raised at {RAISED[code]}) is not in facecast.errors.CODES"


def test_codes_are_listed_once_and_snake_case() -> None:
    assert len(CODES) == len(CODES_LIST)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", c.code) for c in CODES_LIST)
    assert all(c.description for c in CODES_LIST)


def test_docs_carry_the_generated_list() -> None:
    doc = (ROOT / "docs" / "API.md").read_text(encoding="utf-8")
    table = doc.split("<!-- codes:start -->\n", 1)[1].split("\n<!-- codes:end -->", 1)[0]
    assert table == codes_markdown(), "regenerate the table in docs/API.md: codes_markdown()"
    for code in CODES:
        assert f"`{code}`" in table
