"""``GET /metrics`` (Prometheus text format): the database's figures at each scrape and this
process's request latencies, in-process over the whole app."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app_support import App, app_in


def scrape(app: App) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample: (name, sorted labels) -> value."""
    r = app.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def test_jobs_queue_speed_and_deliveries(app: App) -> None:
    key = app.account(credits=100)
    made = app.client.post("/api/v1/speech", json={"text": "Counting the seconds."},
                           headers=app.native(key))
    assert made.status_code == 201, made.text
    job_id = made.json()["id"]
    before = scrape(app)
    assert before[("facecast_jobs", (("kind", "tts"), ("status", "queued")))] == 1
    assert before[("facecast_queue_depth", (("kind", "tts"),))] == 1
    assert not any(name == "facecast_render_seconds_per_media_second" for name, _ in before)
    app.run_jobs()
    after = scrape(app)
    assert after[("facecast_jobs", (("kind", "tts"), ("status", "succeeded")))] == 1
    assert after[("facecast_queue_depth", (("kind", "tts"),))] == 0
    speed = after[("facecast_render_seconds_per_media_second", (("kind", "tts"),))]
    assert 0 < speed < 10, speed  # synthesis runs many times faster than speech plays
    hook = app.client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"},
                           headers=app.native(key)).json()
    assert app.client.post(f"/api/v1/webhooks/{hook['id']}/test",
                           headers=app.native(key)).status_code == 202
    # no maintenance thread here: the delivery waits
    assert scrape(app)[("facecast_webhook_deliveries", (("status", "pending"),))] >= 1
    # latencies by route template (one series for every job id) and status class
    app.client.get(f"/api/v1/jobs/{job_id}", headers=app.native(key))
    app.client.get("/api/v1/jobs/job_999999", headers=app.native(key))
    latency = scrape(app)
    ok = ("facecast_http_request_duration_seconds_count",
          (("method", "GET"), ("route", "/api/v1/jobs/{job_id}"), ("status", "2xx")))
    missing = (ok[0], (("method", "GET"), ("route", "/api/v1/jobs/{job_id}"), ("status", "4xx")))
    assert latency[ok] >= 1 and latency[missing] >= 1
    assert not any("job_999999" in str(labels) for _name, labels in latency)


def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    with app_in(tmp_path, metrics=False) as app:
        assert app.client.get("/metrics").status_code == 404


@pytest.mark.parametrize("path", ["/health", "/metrics"])
def test_no_key_needed(app: App, path: str) -> None:
    assert app.client.get(path).status_code == 200
