"""Akool's encrypted callback: ``{signature, dataEncrypt, timestamp, nonce}``.

``dataEncrypt`` is the JSON data, AES-CBC encrypted (PKCS#7 padding, base64)
with the client secret as the key and the client id as the IV; ``signature``
is the sha1 hex digest of the sorted, joined ``[clientId, timestamp, nonce,
dataEncrypt]``. Akool's own pairs are a 16-character client id and a
24-character secret (AES-192). facecast's vendor pairs are longer, so the key
is the secret's first 24 bytes (all of it when it is 16, 24 or 32 bytes long)
and the IV the client id's first 16 bytes: with Akool-shaped pairs this is
exactly Akool's scheme.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def aes_key(client_secret: str) -> bytes:
    raw = client_secret.encode()
    return raw if len(raw) in (16, 24, 32) else raw[:24]


def aes_iv(client_id: str) -> bytes:
    return client_id.encode()[:16]


def encrypt(data: dict[str, Any], client_id: str, client_secret: str) -> str:
    plain = json.dumps(data, separators=(",", ":")).encode()
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes_key(client_secret)),
                       modes.CBC(aes_iv(client_id))).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def signature(client_id: str, timestamp: int | str, nonce: str, data_encrypt: str) -> str:
    joined = "".join(sorted([client_id, str(timestamp), nonce, data_encrypt]))
    return hashlib.sha1(joined.encode()).hexdigest()


def envelope(data: dict[str, Any], client_id: str, client_secret: str) -> dict[str, Any]:
    """The callback body, made now (a fresh timestamp and nonce per attempt)."""
    encrypted = encrypt(data, client_id, client_secret)
    timestamp = int(time.time() * 1000)
    nonce = str(secrets.randbelow(9000) + 1000)
    return {"signature": signature(client_id, timestamp, nonce, encrypted),
            "dataEncrypt": encrypted, "timestamp": timestamp, "nonce": nonce}
