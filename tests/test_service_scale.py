"""Scale-out: one API server and two separate worker processes sharing real servers.

The setup starts Redis (the Huey queue), a throwaway PostgreSQL cluster (the database) and
s3rver (S3 storage; without it, a local folder all processes share), then a
``facecast serve`` with ``FACECAST_WORKERS=0`` (API only) and two ``facecast worker``
processes, each with its own ``$FACECAST_HOME``: all they share is the three URLs. Speech and
talking-photo jobs go in through the HTTP API; the tests check that every job succeeded once,
that each result downloads from its URL as real media, that the jobs were spread across both
worker processes (the ``jobs.worker`` column, read from PostgreSQL) and that the ledger holds
exactly one charge per job.

Needs Debian's ``redis-server`` and ``postgresql`` (skips without them) and, for S3,
``npm ci --prefix tests/servers``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import psutil
import psycopg
import pytest

from scale_support import (
    PostgresCluster,
    RedisServer,
    ServerMissing,
    postgres_cluster,
    redis_server,
    s3rver,
)
from service_support import ServerProcess, service_env, wait_for_job

# end-to-end: a real server process rendering media
pytestmark = pytest.mark.slow

WORKERS = 2
SPEECH_TEXTS = [
    "The first sentence for the scale test.",
    "Two workers share one Redis queue.",
    "PostgreSQL keeps every job row.",
    "Results are stored in an object store.",
    "Each job must run exactly once.",
    "And every job is charged exactly once.",
]
PHOTO_TEXT = "Hello from the scale test."
INITIAL_CREDITS = 1_000_000  # the first admin account's credits (the default, set explicitly)
START_TIMEOUT_S = 120.0
JOB_TIMEOUT_S = 150.0


@dataclass
class Backends:
    redis: RedisServer
    postgres: PostgresCluster
    storage_url: str
    s3_endpoint: str | None  # None: storage is a local folder served by the API server


class WorkerProcess:
    """``facecast worker`` (a Huey consumer with one worker child) in its own process group."""

    def __init__(self, home: Path, **settings: object) -> None:
        self.home = home
        self.settings = settings
        self.log = home / "worker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> WorkerProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "facecast.cli", "worker"],
                env=service_env(self.home, **self.settings), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"facecast worker exited with {self.proc.returncode}:\n"
                               f"{self.log.read_text(errors='replace')[-3000:]}")

    def terminate(self) -> None:
        """Ask the consumer to stop (it stops its worker child and exits)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        # the consumer's worker children too, whatever state the consumer left them in
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout)


@dataclass
class Cluster:
    backends: Backends
    server: ServerProcess
    workers: list[WorkerProcess]


@dataclass
class Finished:
    """The submitted jobs once all have ended, as the API shows them."""

    cluster: Cluster
    jobs: list[dict[str, Any]]


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    """Redis, PostgreSQL and s3rver (or a shared folder), started here and stopped after."""
    work = tmp_path_factory.mktemp("scale-servers")
    with contextlib.ExitStack() as stack:
        try:
            redis = stack.enter_context(redis_server(work / "redis"))
            postgres = stack.enter_context(postgres_cluster())
        except ServerMissing as exc:
            pytest.skip(f"scale-out test needs real servers: {exc}")
        try:
            s3 = stack.enter_context(s3rver(work / "s3rver"))
            storage_url, endpoint = s3.storage_url("scale"), s3.endpoint
        except ServerMissing:
            # the processes run on one machine, so a folder they all share is storage too
            storage_url, endpoint = f"file://{work / 'storage'}", None
        yield Backends(redis, postgres, storage_url, endpoint)


def _brpop_clients(redis: RedisServer) -> int:
    """How many connections are waiting on (or last ran) BRPOP: Huey workers polling."""
    with redis.client() as client:
        return sum(1 for c in client.client_list() if c.get("cmd") == "brpop")


@pytest.fixture(scope="module")
def cluster(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """An API-only ``facecast serve`` and two ``facecast worker`` processes, all ready."""
    root = tmp_path_factory.mktemp("scale-homes")
    shared: dict[str, object] = {
        "database_url": backends.postgres.url, "queue_url": backends.redis.url,
        "storage_url": backends.storage_url, "secret_key": secrets.token_hex(16),
        "admin_initial_credits": INITIAL_CREDITS,
        "heartbeat_s": 1.0,  # both workers' renders write heartbeats to PostgreSQL meanwhile
    }
    server = ServerProcess(root / "api", workers=0, **shared)
    shared["public_url"] = server.url
    workers = [WorkerProcess(root / f"worker{i}", **shared) for i in range(WORKERS)]
    try:
        for worker in workers:  # they start (imports) while the server migrates the database
            worker.start()
        server.start(timeout=START_TIMEOUT_S)
        assert server.admin_key, "the first start printed no admin key"
        # ready when both workers' Huey processes block on the queue (BRPOP): Redis hands
        # each new job to the client that has waited longest, so the first two jobs (the
        # long talking photos) go one to each worker
        deadline = time.monotonic() + START_TIMEOUT_S
        while _brpop_clients(backends.redis) < WORKERS:
            for worker in workers:
                worker.check_alive()
            if time.monotonic() > deadline:
                pytest.fail(f"the {WORKERS} workers did not start polling Redis in "
                            f"{START_TIMEOUT_S} s")
            time.sleep(0.1)
        yield Cluster(backends, server, workers)
    finally:
        for worker in workers:  # all stop at once
            worker.terminate()
        server.stop()
        for worker in workers:
            worker.stop()


@pytest.fixture(scope="module")
def finished(cluster: Cluster) -> Finished:
    """Six speech jobs and two talking photos (one per built-in avatar), run to the end."""
    with cluster.server.client() as api:
        r = api.get("/api/v1/avatars")
        assert r.status_code == 200, r.text
        avatars = [a["id"] for a in r.json()["items"] if not a["custom"]]
        assert len(avatars) >= 2, f"expected the built-in avatars, got {r.json()}"
        ids = []
        for avatar in avatars[:2]:
            r = api.post("/api/v1/talking-photos", json={"avatar_id": avatar, "text": PHOTO_TEXT})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        for text in SPEECH_TEXTS:
            r = api.post("/api/v1/speech", json={"text": text, "format": "mp3"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        deadline = time.monotonic() + JOB_TIMEOUT_S
        done = []
        for job_id in ids:
            for worker in cluster.workers:
                worker.check_alive()
            done.append(wait_for_job(api, job_id, timeout=max(1.0, deadline - time.monotonic())))
    return Finished(cluster, done)


def _rows(cluster: Cluster, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(cluster.backends.postgres.conninfo) as conn:
        return conn.execute(query).fetchall()


def _succeeded(finished: Finished) -> list[dict[str, Any]]:
    assert [j["status"] for j in finished.jobs] == ["succeeded"] * len(finished.jobs), [
        (j["id"], j["status"], j["error"]) for j in finished.jobs]
    return finished.jobs


def _db_id(job: dict[str, Any]) -> int:
    return int(job["id"].removeprefix("job_"))


def _download(cluster: Cluster, url: str) -> bytes:
    # S3 storage hands out the store's own presigned URLs; a folder, the API server's
    base = cluster.backends.s3_endpoint or cluster.server.url
    assert url.startswith(f"{base}/"), f"{url} is not served by {base}"
    # loopback only: proxy settings from the environment must not reroute the request
    with httpx.Client(trust_env=False, timeout=30) as client:
        r = client.get(url)
    assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:300]}"
    return r.content


def _decode(data: bytes) -> dict[str, Any]:
    """What PyAV finds when it decodes every frame: counts, sizes and seconds of audio."""
    facts: dict[str, Any] = {"video_frames": 0, "audio_s": 0.0, "size": None}
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(*container.streams.video, *container.streams.audio):
            if isinstance(frame, av.VideoFrame):
                facts["video_frames"] += 1
                facts["size"] = (frame.width, frame.height)
            else:
                facts["audio_s"] += frame.samples / frame.sample_rate
    return facts


# ---------------------------------------------------------------------------------------------
# tests


def test_every_job_succeeds_once(finished: Finished) -> None:
    jobs = _succeeded(finished)
    rows = dict(_rows(finished.cluster, "SELECT id, attempt FROM jobs"))
    assert rows == {_db_id(j): 1 for j in jobs}, "a job ran more than once"


def test_results_download_as_real_media(finished: Finished) -> None:
    cluster = finished.cluster
    for job in _succeeded(finished):
        files = job["result"]["files"]
        info = job["result"]["info"]
        if job["kind"] == "talking_photo":
            video = _download(cluster, files["video"]["url"])
            assert len(video) == files["video"]["size"]
            assert video[4:8] == b"ftyp", f"{job['id']}: not an MP4"
            facts = _decode(video)
            assert facts["video_frames"] == info["frames"] > 0
            assert facts["size"] == (info["width"], info["height"])
            assert facts["audio_s"] == pytest.approx(info["duration"], abs=0.2)
            visemes = json.loads(_download(cluster, files["visemes"]["url"]))
            assert visemes, f"{job['id']}: empty visemes"
        else:
            assert job["kind"] == "tts"
            audio = _download(cluster, files["audio"]["url"])
            assert len(audio) == files["audio"]["size"]
            facts = _decode(audio)
            assert facts["video_frames"] == 0
            assert facts["audio_s"] == pytest.approx(info["duration"], abs=0.2)
            assert facts["audio_s"] > 0.5
            timings = json.loads(_download(cluster, files["timings"]["url"]))
            assert timings, f"{job['id']}: empty timings"


def test_jobs_are_spread_across_both_workers(finished: Finished) -> None:
    workers = finished.cluster.workers
    names = dict(_rows(finished.cluster, "SELECT id, worker FROM jobs"))
    host = socket.gethostname()
    ran_in: dict[int, list[int]] = {}  # `facecast worker` pid -> the jobs its children ran
    for job in _succeeded(finished):
        name = names[_db_id(job)]
        assert name and name.rsplit(":", 1)[0] == host, f"{job['id']}: worker {name!r}"
        pid = int(name.rsplit(":", 1)[1])
        # the Huey worker that ran it is a child of one `facecast worker` (still running)
        parent = psutil.Process(pid).ppid()
        assert parent in {w.pid for w in workers}, (
            f"{job['id']} ran in pid {pid}, child of {parent}, not of a facecast worker")
        ran_in.setdefault(parent, []).append(_db_id(job))
    assert set(ran_in) == {w.pid for w in workers}, f"jobs by worker: {ran_in}"


def test_one_charge_per_job(finished: Finished) -> None:
    charges = _rows(finished.cluster,
                    "SELECT job_id, count(*), sum(amount) FROM ledger WHERE kind = 'charge' "
                    "GROUP BY job_id")
    costs = {_db_id(j): j["cost"] for j in _succeeded(finished)}
    assert all(cost and cost > 0 for cost in costs.values()), costs
    assert {job_id: (n, -total) for job_id, n, total in charges} == {
        job_id: (1, cost) for job_id, cost in costs.items()}
    with finished.cluster.server.client() as api:
        r = api.get("/api/v1/account")
    assert r.status_code == 200, r.text
    assert r.json()["balance"] == INITIAL_CREDITS - sum(costs.values())
