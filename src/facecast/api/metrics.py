"""``GET /metrics``: the service's figures in the Prometheus text format, for operators' own
tools (the `prometheus-client` package writes the format).

What the database knows is read at each scrape, so every API process answers the same
whatever process or worker did the work: jobs by kind and status, the queue's depth, render
seconds per second of media made (over the most recent finished jobs of each kind),
webhook deliveries by status and worker processes by state. HTTP request latencies are a
histogram of this process's own requests (with ``--api-workers N``, each process counts
its own: sum them in the query). No key is asked, as for ``/health``;
``FACECAST_METRICS=false`` turns the route off.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facecast.service.core import Service
from facecast.service.models import Job, WebhookDelivery
from facecast.service.workers import list_workers

__all__ = ["RECENT_JOBS", "install_metrics"]

# the finished jobs per kind that render seconds per media second are measured over
RECENT_JOBS = 100
# seconds: from a status poll (a few ms) to a large upload
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServiceCollector:
    """The database's figures, read when Prometheus scrapes."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("facecast_jobs", "Jobs by kind and status (deleted ones "
                                 "left out)", labels=["kind", "status"])
        queue = GaugeMetricFamily("facecast_queue_depth", "Jobs queued, by kind",
                                  labels=["kind"])
        speed = GaugeMetricFamily(
            "facecast_render_seconds_per_media_second", "Seconds from a job's start to its "
            f"end per second of audio or video it made, over the last {RECENT_JOBS} "
            "succeeded jobs of each kind", labels=["kind"])
        deliveries = GaugeMetricFamily("facecast_webhook_deliveries", "Webhook deliveries "
                                       "by status (failed: every attempt failed)",
                                       labels=["status"])
        workers = GaugeMetricFamily("facecast_workers", "Worker processes by state (lost: "
                                    "no heartbeat for FACECAST_LEASE_S)", labels=["state"])
        with self.service.db.session() as session:
            counts = session.execute(select(Job.kind, Job.status, func.count())
                                     .where(Job.deleted_at.is_(None))
                                     .group_by(Job.kind, Job.status)).all()
            kinds = sorted({kind for kind, _status, _n in counts})
            recent = {kind: session.execute(
                select(Job.started_at, Job.finished_at, Job.result)
                .where(Job.kind == kind, Job.status == "succeeded",
                       Job.started_at.is_not(None), Job.finished_at.is_not(None))
                .order_by(Job.id.desc()).limit(RECENT_JOBS)).all() for kind in kinds}
            sent = session.execute(select(WebhookDelivery.status, func.count())
                                   .group_by(WebhookDelivery.status)).all()
        for kind, status, n in counts:
            jobs.add_metric([kind, status], n)
        for kind in kinds:
            queue.add_metric([kind], sum(n for k, s, n in counts if k == kind and s == "queued"))
            ratio = _seconds_per_media_second(recent[kind])
            if ratio is not None:
                speed.add_metric([kind], ratio)
        for status, n in sent:
            deliveries.add_metric([status], n)
        states = [w.state for w in list_workers(self.service.db, self.service.settings.lease_s)]
        for state in ("idle", "busy", "lost"):  # each state always, 0 too: alerts on "lost"
            workers.add_metric([state], states.count(state))
        # this API process's own sessions (its children), or, placed on live workers, every
        # session of the service and what the live workers alive now carry
        live = GaugeMetricFamily("facecast_live_sessions", "Live stream sessions open, and "
                                 "the most that may run at once", labels=["of"])
        live.add_metric(["open"], self.service.live.open_count())
        live.add_metric(["capacity"], self.service.live.capacity())
        yield from (jobs, queue, speed, deliveries, workers, live)


def _seconds_per_media_second(rows: Iterable[Any]) -> float | None:
    """Total run time over total media seconds made; None without media."""
    spent = made = 0.0
    for started, finished, result in rows:
        duration = ((result or {}).get("info") or {}).get("duration")
        if isinstance(duration, (int, float)) and duration > 0:
            spent += (finished - started).total_seconds()
            made += float(duration)
    return spent / made if made else None


class RequestTimer:
    """Times every HTTP request into the latency histogram, by method, route template (not
    the path: ids would make a series per job) and status class."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what an exception that escapes every handler becomes

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None)
            if template is None:  # a mounted vendor door or no route at all
                template = "unrouted"
            self.histogram.labels(scope["method"], template, f"{status // 100}xx").observe(
                time.perf_counter() - start)


def install_metrics(app: FastAPI, service: Service) -> None:
    """Mount ``/metrics`` and time every request (unless ``FACECAST_METRICS`` is off)."""
    if not service.settings.metrics:
        return
    registry = CollectorRegistry(auto_describe=True)  # one per app: no global state
    registry.register(ServiceCollector(service))  # type: ignore[arg-type]
    latency = Histogram("facecast_http_request_duration_seconds",
                        "HTTP request latency in this API process",
                        ["method", "route", "status"], buckets=LATENCY_BUCKETS,
                        registry=registry)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestTimer, histogram=latency)  # type: ignore[arg-type]
