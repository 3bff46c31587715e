"""``client.webhooks``: account webhook endpoints and their deliveries. Checking a
delivery's signature on the receiving side is :func:`facecast.client.verify_webhook`."""

from __future__ import annotations

from collections.abc import Sequence

from facecast.api.native.wire import DeliveryList, DeliveryOut, WebhookEvent, WebhookOut
from facecast.client._plan import Plan, body, call, listed, no_content, segment
from facecast.client._resource import M, Resource, operation

Endpoints = list[WebhookOut]
Deliveries = list[DeliveryOut]
EndpointRef = str | WebhookOut


def endpoint_id(endpoint: EndpointRef) -> str:
    return segment(endpoint if isinstance(endpoint, str) else endpoint.id)


class Webhooks(Resource[M]):
    @operation
    def create(self, url: str, *, events: Sequence[WebhookEvent] | None = None,
               description: str | None = None) -> Plan[WebhookOut]:
        """An endpoint receiving the ``events`` chosen (none: all), signed with its own
        ``secret`` (``whsec_...``)."""
        request = body(url=url, events=listed(events),
                       description=description)
        return (yield from call("POST", "/webhooks", WebhookOut, json=request))

    @operation
    def list(self) -> Plan[Endpoints]:
        return (yield from call("GET", "/webhooks", Endpoints))

    @operation
    def get(self, endpoint: EndpointRef) -> Plan[WebhookOut]:
        return (yield from call("GET", f"/webhooks/{endpoint_id(endpoint)}", WebhookOut))

    @operation
    def update(self, endpoint: EndpointRef, *, url: str | None = None,
               events: Sequence[WebhookEvent] | None = None, description: str | None = None,
               enabled: bool | None = None) -> Plan[WebhookOut]:
        request = body(url=url, events=listed(events),
                       description=description, enabled=enabled)
        return (yield from call("PATCH", f"/webhooks/{endpoint_id(endpoint)}", WebhookOut,
                                json=request))

    @operation
    def delete(self, endpoint: EndpointRef) -> Plan[None]:
        yield from no_content("DELETE", f"/webhooks/{endpoint_id(endpoint)}")

    @operation
    def test(self, endpoint: EndpointRef) -> Plan[Deliveries]:
        """Send a ``webhook.test`` event to the endpoint now."""
        return (yield from call("POST", f"/webhooks/{endpoint_id(endpoint)}/test", Deliveries))

    @operation
    def deliveries(self, endpoint: EndpointRef, *, status: str | None = None,
                   page: int | None = None, page_size: int | None = None
                   ) -> Plan[DeliveryList]:
        params = body(status=status, page=page, page_size=page_size)
        return (yield from call("GET", f"/webhooks/{endpoint_id(endpoint)}/deliveries",
                                DeliveryList, params=params))

    @operation
    def get_delivery(self, delivery: str) -> Plan[DeliveryOut]:
        """One delivery with every attempt (``attempts_log``)."""
        return (yield from call("GET", f"/webhook-deliveries/{segment(delivery)}",
                                DeliveryOut))

    @operation
    def retry_delivery(self, delivery: str) -> Plan[DeliveryOut]:
        """Send a delivery again now."""
        return (yield from call("POST", f"/webhook-deliveries/{segment(delivery)}/retry",
                                DeliveryOut))
