"""Vendor credentials: client id + secret pairs for the compatible APIs that
authenticate with a shared secret (Kling: a JWT signed with the secret key,
issuer = the access key; Akool: clientId/clientSecret for a token, and the
secret as the AES key of its encrypted callbacks).

Unlike API keys these secrets cannot be kept as hashes, because checking an
HMAC or encrypting a callback needs the secret itself; they are encrypted at
rest (Fernet) with a key derived from the service's signing key.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from facecast.service.accounts import AuthError, Principal
from facecast.service.db import Database
from facecast.service.models import Account, VendorCredential, utcnow

VENDORS = ("akool", "kling")


def _fernet(signing_key: bytes) -> Fernet:
    derived = hashlib.sha256(signing_key + b"\0facecast vendor credentials").digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def create_credential(session: Session, account_id: int, vendor: str, signing_key: bytes,
                      name: str = "") -> tuple[VendorCredential, str]:
    """A new pair; the secret is returned once, in clear."""
    if vendor not in VENDORS:
        raise ValueError(f"unknown vendor {vendor!r}")
    if vendor == "akool":
        # Akool's shape: its callbacks use the secret as the AES-192 key (24 bytes) and the
        # client id as the IV (16 bytes), so receivers written for Akool need exactly these
        client_id, secret = secrets.token_hex(8), secrets.token_urlsafe(18)
    else:
        client_id, secret = f"{vendor[:2]}_{secrets.token_hex(12)}", secrets.token_urlsafe(32)
    row = VendorCredential(account_id=account_id, vendor=vendor, client_id=client_id, name=name,
                           secret_encrypted=_fernet(signing_key).encrypt(secret.encode()).decode())
    session.add(row)
    session.flush()
    return row, secret


class CredentialResolver:
    """client id -> (Principal, secret), with a short cache like API keys."""

    def __init__(self, db: Database, signing_key: bytes, ttl_s: float = 5.0) -> None:
        self.db, self.fernet, self.ttl_s = db, _fernet(signing_key), ttl_s
        self._cache: dict[tuple[str, str], tuple[float, Principal, str]] = {}
        self._lock = threading.Lock()

    def resolve(self, vendor: str, client_id: str) -> tuple[Principal, str]:
        now = time.monotonic()
        hit = self._cache.get((vendor, client_id))
        if hit and hit[0] > now:
            return hit[1], hit[2]
        with self.db.session() as session:
            row = session.execute(
                select(VendorCredential, Account)
                .join(Account, Account.id == VendorCredential.account_id)
                .where(VendorCredential.client_id == client_id,
                       VendorCredential.vendor == vendor)).first()
            if row is None or row[0].revoked_at is not None:
                raise AuthError(f"unknown or revoked {vendor} client id", code="invalid_api_key")
            cred, account = row
            try:
                secret = self.fernet.decrypt(cred.secret_encrypted.encode()).decode()
            except InvalidToken:
                # the service's signing key changed since this pair was made
                raise AuthError("this credential can no longer be read by the server",
                                code="invalid_api_key") from None
            principal = Principal(account.id, -cred.id, account.is_admin, account.rate_limit,
                                  account.max_queued_jobs, f"{vendor}:{cred.id}")
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[(vendor, client_id)] = (now + self.ttl_s, principal, secret)
        return principal, secret

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


def revoke_credential(session: Session, account_id: int, credential_id: int
                      ) -> VendorCredential | None:
    row = session.get(VendorCredential, credential_id)
    if row is None or row.account_id != account_id:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row
