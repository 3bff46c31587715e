"""Checking that a webhook came from facecast: the receiving side of the Standard Webhooks
signatures the service sends (``facecast.service.webhooks`` signs with the same library,
``standardwebhooks``, so the scheme is written in one place)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as _Unverified

from facecast.api.native.wire import WebhookMessage
from facecast.client.errors import WebhookVerificationError


def verify_webhook(body: bytes | str, headers: Mapping[str, str], secret: str
                   ) -> WebhookMessage:
    """The delivery's message, if ``body`` and its ``webhook-id``, ``webhook-timestamp``
    and ``webhook-signature`` headers were signed with ``secret`` (``whsec_...``: an
    endpoint's own, or the account's ``webhook_secret`` for ``callback_url``) within the
    last five minutes; else :class:`WebhookVerificationError`.

    Pass the body exactly as received (bytes): a re-serialised JSON does not verify.
    """
    try:
        Webhook(secret).verify(body, dict(headers.items()), json_parse=False)
    except _Unverified as exc:
        raise WebhookVerificationError(f"webhook not verified: {exc}") from None
    try:
        return WebhookMessage.model_validate_json(body)
    except ValidationError as exc:
        raise WebhookVerificationError(f"a signed webhook that is not a facecast message: "
                                       f"{exc.errors()[0]['msg']}") from None
