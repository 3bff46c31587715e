"""The Python client's exceptions: every one is a :class:`facecast.errors.FacecastError`
with the API's stable ``code`` and its ``message``, so code written for the local engine
(``except FacecastError``, ``except InputError``) handles remote refusals the same way.

The classes, one per case a caller handles differently::

    FacecastError (facecast.errors)
    └── APIError                        anything the client raises
        ├── APIConnectionError          no answer: refused, reset, DNS (connection_error)
        │   └── APITimeoutError         no answer in time (timeout)
        ├── APIStatusError              the API answered an error: status_code, details,
        │   │                           retry_after, response
        │   ├── BadRequestError         400, 413, 422 (also an InputError)
        │   ├── AuthenticationError     401 (unauthorized, invalid_api_key)
        │   ├── InsufficientCreditsError 402 (also a LimitError)
        │   ├── PermissionDeniedError   403 (also a ForbiddenError)
        │   ├── NotFoundError           404, 410 (also facecast.errors.NotFoundError)
        │   ├── ConflictError           409 (also facecast.errors.ConflictError)
        │   ├── RateLimitError          429, after the retries (also a LimitError)
        │   └── ServerError             5xx (internal_error, storage_full, ...)
        ├── JobFailedError              wait(): the job failed, was canceled or expired;
        │                               code is the job's (no_face, job_canceled, ...)
        ├── WaitTimeoutError            wait(): the job was not finished in time (wait_timeout)
        └── WebhookVerificationError    verify_webhook(): not a genuine delivery
                                        (invalid_webhook)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from facecast import errors as local

if TYPE_CHECKING:
    from facecast.api.native.wire import JobOut

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InsufficientCreditsError",
    "JobFailedError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "WaitTimeoutError",
    "WebhookVerificationError",
]


class APIError(local.FacecastError):
    """Base class of the client's errors: ``code`` (stable) and ``message``."""


class APIConnectionError(APIError):
    """The server could not be reached or the connection broke before an answer."""

    code = "connection_error"


class APITimeoutError(APIConnectionError):
    """No answer within the client's timeout."""

    code = "timeout"


class APIStatusError(APIError):
    """An error answer: the API's ``code``, ``message`` and ``details``, the HTTP
    ``status_code``, ``retry_after`` (seconds, when the server said) and ``response``."""

    def __init__(self, message: str, *, code: str, status_code: int,
                 response: httpx.Response, retry_after: float | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code)
        self.details = dict(details or {})
        self.status_code = status_code
        self.response = response
        self.retry_after = retry_after


class BadRequestError(APIStatusError, local.InputError):
    """The input cannot be used (400), is too large (413) or does not validate (422)."""


class AuthenticationError(APIStatusError):
    """No API key, or an unknown or revoked one (401)."""


class InsufficientCreditsError(APIStatusError, local.LimitError):
    """The account cannot pay for the job (402); nothing was created."""


class PermissionDeniedError(APIStatusError, local.ForbiddenError):
    """The key may not do this (403: admin only; a file link that does not verify)."""


class NotFoundError(APIStatusError, local.NotFoundError):
    """No such thing, or not yours (404); a result retention removed (410)."""


class ConflictError(APIStatusError, local.ConflictError):
    """Clashes with the current state (409), e.g. canceling a finished job."""


class RateLimitError(APIStatusError, local.LimitError):
    """Still refused after the retries (429): rate limit, queue cap, downloads."""


class ServerError(APIStatusError):
    """The server failed (5xx); ``storage_full`` (507) when its disk is full."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError, 413: BadRequestError, 422: BadRequestError,
    401: AuthenticationError, 402: InsufficientCreditsError, 403: PermissionDeniedError,
    404: NotFoundError, 410: NotFoundError, 409: ConflictError, 429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, APIStatusError)


class JobFailedError(APIError):
    """``wait()`` saw the job end without succeeding; ``job`` is its final state and
    ``code`` the job's error code (``job_canceled`` for a canceled job)."""

    def __init__(self, job: JobOut) -> None:
        if job.error is not None:
            code, message = job.error.code, job.error.message
        else:
            code, message = "job_canceled", "the job was canceled"
        super().__init__(f"{job.id} {job.status}: {message}", code=code)
        self.job = job


class WaitTimeoutError(APIError):
    """``wait()`` gave up before the job finished; ``job`` is its last state."""

    code = "wait_timeout"

    def __init__(self, job: JobOut, timeout: float) -> None:
        super().__init__(f"{job.id} is still {job.status} ({job.progress}%, {job.stage}) "
                         f"after {timeout:g} s")
        self.job = job


class WebhookVerificationError(APIError):
    """A webhook whose signature, timestamp or headers do not verify."""

    code = "invalid_webhook"
