"""What every API's requests share, native and vendor alike: no text field may hold
control characters. The rule is :func:`facecast.characters.check_characters`; the model
base applies it to each string of a body and the app dependency
(:data:`facecast.api.deps.CHECKED_URL`) to query and path values, so a NUL is refused at
creation (400 in the API's own envelope) rather than failing a job later (or reaching
PostgreSQL, which refuses NUL in text). Pure pydantic, no web framework: the wire models
built on it are also the Python client's (``facecast.client``) typed results."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator

from facecast.characters import check_characters


def _check(value: Any, where: str) -> None:
    if isinstance(value, str):
        check_characters(value, where)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, where)
            _check(item, f"{where}.{key}")
    # nested models check their own fields when they are validated


class CheckedText(BaseModel):
    """A request model whose string fields are refused (InputError ``invalid_characters``,
    which each API answers in its own envelope) when they hold control characters."""

    @model_validator(mode="after")
    def _no_control_characters(self) -> CheckedText:
        for name in type(self).model_fields:
            _check(getattr(self, name), name)
        return self
