"""The HTTP app in-process: FastAPI's ``TestClient`` on the whole app (native API and the
mounted vendor APIs) over a ``Service`` in a temp folder (real SQLite, real local storage).

No server process, no worker and no maintenance thread: requests are answered in the
test's own process, so mapping and validation tests take milliseconds. Jobs are queued
only into ``App.queued``; :meth:`App.run_jobs` runs them in-process when a test needs a
finished one. End-to-end tests keep using ``service_support.ServerProcess``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from facecast.api.app import create_app
from facecast.service.core import Service
from facecast.service.settings import load_settings

# settings of every in-process app: loopback URLs allowed (tests serve media on it),
# nothing rendered in the background, workers at the test's own priority
SETTINGS: dict[str, Any] = {
    "url_allowlist": ["127.0.0.1"],
    "avatar_previews": False,
    "expression_previews": "off",
    "worker_nice": 0,
}


@dataclass
class App:
    """An in-process app: ``client`` speaks to it; ``admin`` is the first admin key."""

    service: Service
    client: TestClient
    admin: str
    queued: list[int] = field(default_factory=list)

    def native(self, key: str | None = None) -> dict[str, str]:
        """Headers of a native API call with ``key`` (default: the admin key)."""
        return {"Authorization": f"Bearer {key or self.admin}"}

    def account(self, credits: int = 1000, name: str = "test user") -> str:
        """A new account's API key."""
        r = self.client.post(
            "/api/v1/accounts", json={"name": name, "credits": credits}, headers=self.native()
        )
        assert r.status_code == 201, r.text
        return str(r.json()["api_key"])

    def vendor_pair(self, key: str, vendor: str) -> dict[str, Any]:
        """A vendor credential (client id + secret) of the account with ``key``."""
        r = self.client.post(
            "/api/v1/vendor-credentials", json={"vendor": vendor}, headers=self.native(key)
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def jobs(self, key: str) -> int:
        """How many jobs the account with ``key`` has."""
        r = self.client.get("/api/v1/jobs", headers=self.native(key))
        assert r.status_code == 200, r.text
        return int(r.json()["total"])

    def run_jobs(self) -> None:
        """Run every queued job in this process, as a worker would."""
        from facecast.service.worker import JobRunner

        runner = JobRunner(self.service.settings)
        while self.queued:
            runner.run(self.queued.pop(0))


@contextmanager
def app_in(home: Path, **settings: Any) -> Iterator[App]:
    """An in-process app whose data lives in ``home``."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("FACECAST_")}
    for name in saved:  # the caller's environment must not pick a database or storage
        del os.environ[name]
    try:
        queued: list[int] = []
        service = Service(
            load_settings(home=home, **{**SETTINGS, **settings}), enqueue=queued.append
        )
        admin = service.bootstrap(previews=False)
        assert admin is not None
        with TestClient(
            create_app(service, maintenance=False), raise_server_exceptions=False
        ) as client:
            yield App(service, client, admin, queued)
        service.db.dispose()
    finally:
        os.environ.update(saved)
