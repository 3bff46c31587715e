"""What every API's requests share, native and vendor alike: no text field may hold
control characters. The rule is :func:`facecast.speech.text.check_characters`; the model
base applies it to each string of a body and the app dependency to query and path values,
so a NUL is refused at creation (400 in the API's own envelope) rather than failing a job
later (or reaching PostgreSQL, which refuses NUL in text)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from pydantic import BaseModel, model_validator

from facecast.speech.text import check_characters


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


def _checked_url_values(request: Request) -> None:
    for name, value in request.query_params.multi_items():
        check_characters(value, name)
    for name, value in request.path_params.items():
        if isinstance(value, str):
            check_characters(value, name)


# every app's dependency: query and path values follow the same rule as body text
CHECKED_URL = [Depends(_checked_url_values)]
