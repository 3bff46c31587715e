"""Native routes for the account: balance and ledger, API keys, webhook endpoints
and deliveries, and (admin keys only) other accounts and their credits."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from facecast.api.deps import Caller, ServiceDep, parse_id
from facecast.api.errors import ERROR_RESPONSES
from facecast.api.native import views
from facecast.api.native import wire as s

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

PageNo = Annotated[int, Query(ge=1, le=100_000)]
PageSize = Annotated[int, Query(ge=1, le=100)]


@router.get("/account", response_model=s.AccountOut, tags=["account"],
            summary="Balance, credits held by unfinished jobs, usage, limits and prices")
def get_account(service: ServiceDep, caller: Caller) -> s.AccountOut:
    info = service.account(caller)
    a = info["account"]
    return s.AccountOut(
        id=f"acc_{a.id}", name=a.name, is_admin=a.is_admin, balance=a.balance,
        held=info["held"], available=a.balance - info["held"],
        credits_spent=info["credits_spent"], webhook_secret=a.webhook_secret,
        jobs_by_status=info["jobs_by_status"], limits=info["limits"], prices=info["prices"],
        created_at=a.created_at)


@router.get("/account/ledger", response_model=s.LedgerList, tags=["account"],
            summary="Every credit movement, newest first")
def get_ledger(service: ServiceDep, caller: Caller, page: PageNo = 1,
               page_size: PageSize = 50) -> s.LedgerList:
    rows, total = service.ledger(caller, offset=(page - 1) * page_size, limit=page_size)
    return s.LedgerList(items=[views.ledger(r) for r in rows], total=total, page=page,
                        page_size=page_size)


@router.get("/keys", response_model=list[s.KeyOut], tags=["account"])
def list_keys(service: ServiceDep, caller: Caller) -> list[s.KeyOut]:
    return [views.key(r) for r in service.api_keys(caller)]


@router.post("/keys", status_code=201, response_model=s.KeyCreated, tags=["account"],
             summary="A new API key (the key is shown only in this answer)")
def create_key(body: s.KeyCreate, service: ServiceDep, caller: Caller) -> s.KeyCreated:
    row, key = service.create_key(caller, body.name)
    return s.KeyCreated(**views.key(row).model_dump(), key=key)


@router.delete("/keys/{key_id}", response_model=s.KeyOut, tags=["account"],
               summary="Revoke an API key (refused from then on)")
def revoke_key(key_id: str, service: ServiceDep, caller: Caller) -> s.KeyOut:
    return views.key(service.revoke_key(caller, parse_id("key", key_id, "API key")))


@router.post("/vendor-credentials", status_code=201, response_model=s.VendorCredentialCreated,
             tags=["account"], summary="A client id + secret for the Akool or Kling compatible "
                                       "API (the secret is shown only now)")
def create_vendor_credential(body: s.VendorCredentialCreate, service: ServiceDep,
                             caller: Caller) -> s.VendorCredentialCreated:
    row, secret = service.create_vendor_credential(caller, body.vendor, body.name)
    return s.VendorCredentialCreated(**views.credential(row).model_dump(), client_secret=secret)


@router.get("/vendor-credentials", response_model=list[s.VendorCredentialOut], tags=["account"])
def list_vendor_credentials(service: ServiceDep, caller: Caller
                            ) -> list[s.VendorCredentialOut]:
    return [views.credential(r) for r in service.vendor_credentials(caller)]


@router.delete("/vendor-credentials/{credential_id}", response_model=s.VendorCredentialOut,
               tags=["account"], summary="Revoke a vendor credential")
def revoke_vendor_credential(credential_id: str, service: ServiceDep,
                             caller: Caller) -> s.VendorCredentialOut:
    return views.credential(service.revoke_vendor_credential(
        caller, parse_id("vc", credential_id, "vendor credential")))


@router.post("/webhooks", status_code=201, response_model=s.WebhookOut, tags=["webhooks"],
             summary="Receive signed events (Standard Webhooks) at a URL")
def create_webhook(body: s.WebhookCreate, service: ServiceDep, caller: Caller) -> s.WebhookOut:
    return views.endpoint(service.create_endpoint(caller, body.url, list(body.events),
                                                  body.description))


@router.get("/webhooks", response_model=list[s.WebhookOut], tags=["webhooks"])
def list_webhooks(service: ServiceDep, caller: Caller) -> list[s.WebhookOut]:
    return [views.endpoint(r) for r in service.endpoints(caller)]


@router.get("/webhooks/{endpoint_id}", response_model=s.WebhookOut, tags=["webhooks"])
def get_webhook(endpoint_id: str, service: ServiceDep, caller: Caller) -> s.WebhookOut:
    return views.endpoint(service.endpoint(caller, parse_id("whe", endpoint_id, "webhook")))


@router.patch("/webhooks/{endpoint_id}", response_model=s.WebhookOut, tags=["webhooks"])
def update_webhook(endpoint_id: str, body: s.WebhookUpdate, service: ServiceDep,
                   caller: Caller) -> s.WebhookOut:
    changes = body.model_dump(exclude_none=True)
    return views.endpoint(service.update_endpoint(
        caller, parse_id("whe", endpoint_id, "webhook"), **changes))


@router.delete("/webhooks/{endpoint_id}", status_code=204, tags=["webhooks"])
def delete_webhook(endpoint_id: str, service: ServiceDep, caller: Caller) -> Response:
    service.delete_endpoint(caller, parse_id("whe", endpoint_id, "webhook"))
    return Response(status_code=204)


@router.post("/webhooks/{endpoint_id}/test", status_code=202, response_model=list[s.DeliveryOut],
             tags=["webhooks"], summary="Send a webhook.test event to this endpoint")
def test_webhook(endpoint_id: str, service: ServiceDep, caller: Caller) -> list[s.DeliveryOut]:
    rows = service.send_test_event(caller, parse_id("whe", endpoint_id, "webhook"))
    return [views.delivery(r) for r in rows]


@router.get("/webhooks/{endpoint_id}/deliveries", response_model=s.DeliveryList,
            tags=["webhooks"])
def endpoint_deliveries(endpoint_id: str, service: ServiceDep, caller: Caller,
                        status: Literal["pending", "succeeded", "failed"] | None = None,
                        page: PageNo = 1, page_size: PageSize = 20) -> s.DeliveryList:
    eid = parse_id("whe", endpoint_id, "webhook")
    service.endpoint(caller, eid)
    rows, total = service.deliveries(caller, endpoint_id=eid, status=status,
                                     offset=(page - 1) * page_size, limit=page_size)
    return s.DeliveryList(items=[views.delivery(r) for r in rows], total=total, page=page,
                          page_size=page_size)


@router.get("/webhook-deliveries/{delivery_id}", response_model=s.DeliveryOut,
            tags=["webhooks"], summary="One delivery with every attempt")
def get_delivery(delivery_id: str, service: ServiceDep, caller: Caller) -> s.DeliveryOut:
    return views.delivery(service.delivery(caller, parse_id("whd", delivery_id, "delivery")))


@router.post("/webhook-deliveries/{delivery_id}/retry", response_model=s.DeliveryOut,
             tags=["webhooks"], summary="Send a delivery again now")
def retry_delivery(delivery_id: str, service: ServiceDep, caller: Caller) -> s.DeliveryOut:
    return views.delivery(service.redeliver(caller, parse_id("whd", delivery_id, "delivery")))


@router.get("/accounts", response_model=list[s.AccountBrief], tags=["admin"],
            summary="Every account (admin key)")
def list_accounts(service: ServiceDep, caller: Caller) -> list[s.AccountBrief]:
    return [views.account_brief(a) for a in service.accounts(caller)]


@router.get("/admin/workers", response_model=s.WorkerList, tags=["admin"],
            summary="Every worker process: idle, busy (with its job) or lost (admin key)")
def list_workers(service: ServiceDep, caller: Caller) -> s.WorkerList:
    return s.WorkerList(items=[views.worker(w) for w in service.workers(caller)],
                        lost_after_s=service.settings.lease_s)


@router.post("/accounts", status_code=201, response_model=s.AccountCreated, tags=["admin"],
             summary="A new account and its first API key (admin key)")
def create_account(body: s.AccountCreate, service: ServiceDep,
                   caller: Caller) -> s.AccountCreated:
    account, key = service.create_account(caller, body.name, body.credits, body.is_admin,
                                          rate_limit=body.rate_limit,
                                          max_queued_jobs=body.max_queued_jobs)
    return s.AccountCreated(id=f"acc_{account.id}", name=account.name,
                            is_admin=account.is_admin, balance=account.balance, api_key=key)


@router.post("/accounts/{account_id}/credits", status_code=201, response_model=s.LedgerOut,
             tags=["admin"], summary="Grant (or remove) credits (admin key)")
def grant_credits(account_id: str, body: s.CreditGrant, service: ServiceDep,
                  caller: Caller) -> s.LedgerOut:
    entry = service.grant(caller, parse_id("acc", account_id, "account"), body.amount,
                          body.note)
    return views.ledger(entry)
