"""``client.account`` (balance, ledger, API keys, vendor credentials) and
``client.accounts`` (admin keys only: other accounts, their credits and jobs, the
worker processes)."""

from __future__ import annotations

from facecast.api.native.wire import (
    AccountBrief,
    AccountCreated,
    AccountOut,
    AdminJobList,
    KeyCreated,
    KeyOut,
    LedgerList,
    LedgerOut,
    WorkerList,
)
from facecast.client._plan import Plan, body, call, segment
from facecast.client._resource import M, Resource, operation

Keys = list[KeyOut]
AccountList = list[AccountBrief]


class Account(Resource[M]):
    @operation
    def get(self) -> Plan[AccountOut]:
        """Balance, credits held by unfinished jobs, limits, prices, the webhook secret
        that signs ``callback_url`` deliveries."""
        return (yield from call("GET", "/account", AccountOut))

    @operation
    def ledger(self, *, page: int | None = None, page_size: int | None = None
               ) -> Plan[LedgerList]:
        """Every credit movement, newest first."""
        return (yield from call("GET", "/account/ledger", LedgerList,
                                params=body(page=page, page_size=page_size)))

    @operation
    def keys(self) -> Plan[Keys]:
        return (yield from call("GET", "/keys", Keys))

    @operation
    def create_key(self, name: str | None = None) -> Plan[KeyCreated]:
        """A new API key; ``.key`` is shown only in this answer."""
        return (yield from call("POST", "/keys", KeyCreated, json=body(name=name)))

    @operation
    def revoke_key(self, key: str) -> Plan[KeyOut]:
        return (yield from call("DELETE", f"/keys/{segment(key)}", KeyOut))


class Accounts(Resource[M]):
    @operation
    def list(self) -> Plan[AccountList]:
        return (yield from call("GET", "/accounts", AccountList))

    @operation
    def create(self, name: str, *, credits: int | None = None, is_admin: bool | None = None,
               rate_limit: str | None = None, max_queued_jobs: int | None = None
               ) -> Plan[AccountCreated]:
        """A new account and its first API key (``.api_key``)."""
        request = body(name=name, credits=credits, is_admin=is_admin, rate_limit=rate_limit,
                       max_queued_jobs=max_queued_jobs)
        return (yield from call("POST", "/accounts", AccountCreated, json=request))

    @operation
    def grant(self, account: str, amount: int, *, note: str | None = None) -> Plan[LedgerOut]:
        """Add (or, negative, remove) credits."""
        return (yield from call("POST", f"/accounts/{segment(account)}/credits", LedgerOut,
                                json=body(amount=amount, note=note)))

    @operation
    def jobs(self, *, kind: str | None = None, status: str | None = None,
             page: int | None = None, page_size: int | None = None) -> Plan[AdminJobList]:
        """Every account's jobs, newest first, each with its ``account_id``
        (``status="failed"``: the recent failures)."""
        params = body(kind=kind, status=status, page=page, page_size=page_size)
        return (yield from call("GET", "/admin/jobs", AdminJobList, params=params))

    @operation
    def workers(self) -> Plan[WorkerList]:
        """Every worker process, each ``idle``, ``busy`` (with its ``job_id``) or ``lost``
        (silent for ``lost_after_s``: killed, or its machine gone)."""
        return (yield from call("GET", "/admin/workers", WorkerList))
