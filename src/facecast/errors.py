"""Errors that facecast raises for bad input and failed work.

Every error carries a stable machine-readable ``code`` (snake_case) and a human
message that names the problem, so the CLI, the service and the vendor-compatible
APIs can each render it in their own shape without parsing text.
"""

from __future__ import annotations

from typing import Any


class FacecastError(Exception):
    """Base class: ``code`` is stable and machine-readable, ``message`` is for people."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class InputError(FacecastError):
    """The caller's input cannot be used (unreadable, wrong format, out of range)."""

    code = "invalid_input"


class FaceCheckError(InputError):
    """The portrait failed the face check; ``code`` is the reason (e.g. ``no_face``)."""

    code = "face_check_failed"


class NotFoundError(FacecastError):
    """The thing named does not exist (or belongs to another account)."""

    code = "not_found"


class ConflictError(FacecastError):
    """The request clashes with the current state (e.g. canceling a finished job)."""

    code = "conflict"


class LimitError(FacecastError):
    """A configured limit refuses the request (queue cap, rate, credits)."""

    code = "limit_exceeded"

    def __init__(self, message: str, *, code: str | None = None,
                 retry_after: float | None = None, **details: Any) -> None:
        super().__init__(message, code=code, **details)
        self.retry_after = retry_after
