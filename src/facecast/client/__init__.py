"""facecast's Python client for its native REST API (``/api/v1``), on httpx.

::

    from facecast.client import Client

    client = Client("http://127.0.0.1:8000", api_key="fc_...")  # or FACECAST_BASE_URL,
    job = client.talking_photos.create(photo="face.jpg", text="Hello!")  # FACECAST_API_KEY
    job = client.jobs.wait(job, progress=lambda fraction, stage: ..., timeout=600)
    client.jobs.download(job, "hello.mp4")

``AsyncClient`` has the same resources and methods, awaited. Results are the API's own
wire models (``facecast.api.native.wire``: ``JobOut``, ``AssetOut``, ...), not dicts;
media is given as paths, bytes, file objects (uploaded for you), URLs or asset ids;
refusals raise :mod:`facecast.client.errors` exceptions carrying the API's ``code``;
requests refused with 429 or 503 are retried after their Retry-After. On the receiving
side of webhooks, :func:`verify_webhook` checks a delivery's signature.
"""

from facecast.api.native.wire import (
    AssetOut,
    AvatarOut,
    DeliveryOut,
    JobOut,
    VoiceOut,
    WebhookMessage,
    WebhookOut,
)
from facecast.client._client import AsyncClient, Client
from facecast.client._media import Media
from facecast.client.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InsufficientCreditsError,
    JobFailedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    WaitTimeoutError,
    WebhookVerificationError,
)
from facecast.client.resources.jobs import Progress
from facecast.client.signatures import verify_webhook

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AssetOut",
    "AsyncClient",
    "AuthenticationError",
    "AvatarOut",
    "BadRequestError",
    "Client",
    "ConflictError",
    "DeliveryOut",
    "InsufficientCreditsError",
    "JobFailedError",
    "JobOut",
    "Media",
    "NotFoundError",
    "PermissionDeniedError",
    "Progress",
    "RateLimitError",
    "ServerError",
    "VoiceOut",
    "WaitTimeoutError",
    "WebhookMessage",
    "WebhookOut",
    "WebhookVerificationError",
    "verify_webhook",
]
