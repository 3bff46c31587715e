"""Accounts and API keys.

A key is shown once, when it is made (``fc_`` + 40 random URL-safe
characters); the database keeps its SHA-256 only, so a stolen database does
not yield working keys. Looking a key up is a hash and one indexed read; the
API process keeps a short-lived cache of hits so that polling at a thousand
requests a second does not hammer the database, and revocation clears it.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from facecast.errors import FacecastError
from facecast.service.db import Database
from facecast.service.models import Account, ApiKey, LedgerEntry, utcnow

KEY_PREFIX = "fc_"


class AuthError(FacecastError):
    code = "unauthorized"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account and the key used."""

    account_id: int
    key_id: int
    is_admin: bool
    rate_limit: str | None
    max_queued_jobs: int | None
    limit_key: str = ""  # what rate limits count against ("key:12", "kling:3")


def create_account(session: Session, name: str, *, is_admin: bool = False,
                   credits: int = 0) -> Account:
    from facecast.service.webhooks import new_secret

    account = Account(name=name, is_admin=is_admin, balance=0, webhook_secret=new_secret())
    session.add(account)
    session.flush()
    if credits:
        grant_credits(session, account.id, credits, note="opening balance")
    return account


def grant_credits(session: Session, account_id: int, amount: int, note: str = "") -> LedgerEntry:
    """Add (or with a negative amount, remove) credits, recorded in the ledger."""
    return book(session, account_id, amount, kind="grant" if amount >= 0 else "adjust", note=note)


def lock_account(session: Session, account_id: int) -> None:
    """Hold the account until the session's transaction ends, so that a check of its
    credits or queue and the write that relies on it are one step.

    Call it before reading what the check needs. PostgreSQL locks the account's row
    (``SELECT ... FOR UPDATE``); under READ COMMITTED each later statement then sees
    what the previous holder committed. SQLite has no row locks: ``BEGIN IMMEDIATE``
    takes the database's write lock at once (pysqlite on its own would run the reads
    outside any transaction and begin one only at the first write).
    """
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        raw = conn.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            # already writing: a no-op update keeps the write lock (or fails, never races)
            session.execute(update(Account).where(Account.id == account_id)
                            .values(balance=Account.balance))
        return
    session.execute(select(Account.id).where(Account.id == account_id).with_for_update())


def book(session: Session, account_id: int, amount: int, *, kind: str,
         job_id: int | None = None, note: str = "") -> LedgerEntry:
    """One ledger row and the balance change, in the caller's transaction.

    The balance is updated with ``balance = balance + amount`` in SQL, so
    concurrent bookings from several processes add up rather than overwrite.
    """
    session.execute(update(Account).where(Account.id == account_id)
                    .values(balance=Account.balance + amount))
    balance = session.scalar(select(Account.balance).where(Account.id == account_id))
    entry = LedgerEntry(account_id=account_id, amount=amount, kind=kind, job_id=job_id,
                        balance_after=balance, note=note)
    session.add(entry)
    session.flush()
    return entry


def create_key(session: Session, account_id: int, name: str = "") -> tuple[ApiKey, str]:
    """A new key for the account: the row and the key itself (shown once)."""
    key = KEY_PREFIX + secrets.token_urlsafe(30)
    row = ApiKey(account_id=account_id, name=name, prefix=key[:10], hash=hash_key(key))
    session.add(row)
    session.flush()
    return row, key


class KeyResolver:
    """API key -> :class:`Principal`, with a small time-limited cache."""

    def __init__(self, db: Database, ttl_s: float = 5.0) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def resolve(self, key: str | None) -> Principal:
        if not key:
            raise AuthError("an API key is required: send 'Authorization: Bearer <key>' "
                            "or 'X-API-Key: <key>'")
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit and hit[0] > now:
            return hit[1]
        with self.db.session() as session:
            row = session.execute(
                select(ApiKey, Account).join(Account, Account.id == ApiKey.account_id)
                .where(ApiKey.hash == digest)).first()
            if row is None or row[0].revoked_at is not None:
                raise AuthError("this API key is not valid (unknown or revoked)",
                                code="invalid_api_key")
            key_row, account = row
            key_row.last_used_at = utcnow()
            principal = Principal(account.id, key_row.id, account.is_admin, account.rate_limit,
                                  account.max_queued_jobs, f"key:{key_row.id}")
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self.ttl_s, principal)
        return principal

    def forget(self) -> None:
        """Drop the cache (after a key is revoked or an account's limits change)."""
        with self._lock:
            self._cache.clear()


def revoke_key(session: Session, account_id: int, key_id: int) -> ApiKey | None:
    row = session.get(ApiKey, key_id)
    if row is None or row.account_id != account_id:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row
