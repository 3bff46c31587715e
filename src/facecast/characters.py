"""The one rule for the characters of any text a caller gives (speech text, transcripts,
prompts, names, ids), at every door: no control characters. A module of its own with no
imports but the errors, so the wire models (which the Python client loads too) and the
request specs apply it without loading the speech engine."""

from __future__ import annotations

import re

from facecast.errors import InputError

# Characters no text field may hold: C0 controls but tab, line feed and carriage return,
# DEL, the C1 controls, and lone surrogates (JSON's "\ud800" decodes to one; it cannot be
# encoded as UTF-8). NUL in particular breaks every C library and subprocess argument.
_BAD_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def check_characters(value: str, field: str = "text") -> str:
    """``value`` unchanged, or :class:`InputError` ``invalid_characters`` naming the field,
    the first bad character and its position. The one rule for every text a caller gives
    (speech text, transcripts, prompts, names, ids), at every door."""
    found = _BAD_CHARACTERS.search(value)
    if found is not None:
        raise InputError(f"{field} contains the control character U+{ord(found[0]):04X} at "
                         f"position {found.start()}; only tab and line breaks are allowed",
                         code="invalid_characters", field=field, position=found.start())
    return value
