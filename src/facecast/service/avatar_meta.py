"""Avatar metadata: gender, age, style, region and tags, checked once for every door (the
native API, the vendor APIs, the CLI, operator folders' ``avatar.json``), and avatar
names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from facecast.errors import InputError

GENDERS = ("female", "male")
AGES = ("child", "young", "adult", "senior")
# KreadoAI's region tags, so that its filter and the native one are the same data
REGIONS = (
    "western",
    "asian",
    "japanese_korean",
    "southeast_asian",
    "indian",
    "middle_eastern",
    "african",
)
STYLE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
TAG = re.compile(r"^[\w .:-]{1,50}$")


@dataclass(frozen=True)
class Meta:
    """What describes an avatar besides its picture (checked by :func:`check_meta`)."""

    gender: str | None = None
    age: str | None = None
    style: str | None = None
    region: str | None = None
    tags: tuple[str, ...] = ()


def check_meta(
    gender: str | None = None,
    age: str | None = None,
    style: str | None = None,
    region: str | None = None,
    tags: Iterable[str] | None = None,
) -> Meta:
    """Metadata in the library's vocabulary, or InputError(``bad_filter``-like codes)."""
    if gender is not None and gender not in GENDERS:
        raise InputError(f"gender must be one of {', '.join(GENDERS)}", code="bad_gender")
    if age is not None and age not in AGES:
        raise InputError(f"age must be one of {', '.join(AGES)}", code="bad_age")
    if style is not None and not STYLE.match(style):
        raise InputError(
            "style is a short lower-case word ([a-z0-9_-], up to 32)", code="bad_style"
        )
    if region is not None and region not in REGIONS:
        raise InputError(f"region must be one of {', '.join(REGIONS)}", code="bad_region")
    clean = tuple(t.strip() for t in (tags or ()) if t and t.strip())
    if len(clean) > 20 or any(not TAG.match(t) for t in clean):
        raise InputError(
            "tags: at most 20, each up to 50 letters, digits, spaces or .:-_", code="bad_tags"
        )
    return Meta(gender, age, style, region, clean)


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InputError("an avatar name is 1 to 200 characters", code="bad_name")
    return name
