"""Credits and queue places under concurrency, and balances that never go below zero.

Fifty creators (threads in five processes, as several API servers would be) released
together by a barrier create jobs for one account against a real SQLite file and a real
PostgreSQL (started here), through the service layer (``jobs.create_job``) so that a round
takes milliseconds; one variant goes through a real ``facecast serve`` over HTTP. Whatever
the interleaving, no more jobs may be accepted than the account's credits (or its queue
cap) allow.
"""

from __future__ import annotations

import base64
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from facecast.errors import LimitError
from facecast.service import jobs
from facecast.service.accounts import Principal, create_account, create_key
from facecast.service.assets import MediaSource
from facecast.service.core import Service
from facecast.service.db import Database
from facecast.service.models import Account, Job
from facecast.service.settings import Settings
from facecast.service.worker import JobRunner
from scale_support import PostgresCluster, ServerMissing, postgres_cluster
from service_support import ServerProcess

THREADS = 50
PROCESSES = 5
CREATORS_EACH = THREADS // PROCESSES
ROUNDS = 20
JOBS_AFFORDED = 5
PRICE = 3  # credits per job: the account can pay for JOBS_AFFORDED of them


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('credits') / 'facecast.db'}")
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PostgresCluster]:
    try:
        with postgres_cluster() as cluster:
            yield cluster
    except ServerMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def postgresql_db(pg_cluster: PostgresCluster) -> Iterator[Database]:
    db = Database(Settings(database_url=pg_cluster.url).db_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    return request.getfixturevalue(f"{request.param}_db")


def _account(db: Database, credits: int, max_queued_jobs: int | None = None) -> Principal:
    with db.session() as session:
        account = create_account(session, "racer", credits=credits)
        account.max_queued_jobs = max_queued_jobs
        account_id = account.id
    return Principal(account_id, 0, False, None, max_queued_jobs, f"acc:{account_id}")


def _creator(
    url: str, settings: Settings, principals: list[Principal], barrier: Any, out: Any
) -> None:
    """One process of the race: CREATORS_EACH threads, each making one create a round."""
    db = Database(url)
    new = jobs.NewJob(kind="tts", params={"text": "x"}, cost_estimate=PRICE, queue_group="video")
    try:
        for principal in principals:

            def one(_: int, principal: Principal = principal) -> str:
                barrier.wait(120)
                try:
                    jobs.create_job(db, settings, principal, new, lambda _job_id: None)
                except LimitError as exc:
                    return exc.code
                return "created"

            with ThreadPoolExecutor(CREATORS_EACH) as pool:
                out.put((principal.account_id, list(pool.map(one, range(CREATORS_EACH)))))
    finally:
        db.dispose()


def _race(
    db: Database, settings: Settings, principals: list[Principal]
) -> list[tuple[int, list[str]]]:
    """A round per principal: THREADS creates for its account released at once, from
    PROCESSES processes (as several API servers would send them) of CREATORS_EACH threads.
    Per round, the number accepted and the refusal codes."""
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(THREADS), ctx.Queue()
    procs = [
        ctx.Process(target=_creator, args=(db.url, settings, principals, barrier, out))
        for _ in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    outcomes: dict[int, list[str]] = {p.account_id: [] for p in principals}
    try:
        for _ in range(PROCESSES * len(principals)):
            account_id, part = out.get(timeout=300)
            outcomes[account_id] += part
    finally:
        for proc in procs:
            proc.join(60)
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES
    return [
        (o.count("created"), [c for c in o if c != "created"])
        for o in (outcomes[p.account_id] for p in principals)
    ]


def _active(db: Database, account_id: int) -> tuple[int, int, int]:
    """(unfinished jobs, credits they hold, balance) as the database has them."""
    with db.session() as session:
        n, held = session.execute(
            select(func.count(), func.coalesce(func.sum(Job.cost_estimate), 0)).where(
                Job.account_id == account_id, Job.status.in_(jobs.ACTIVE)
            )
        ).one()
        balance = session.scalar(select(Account.balance).where(Account.id == account_id))
    return int(n), int(held), int(balance or 0)


def test_concurrent_creates_never_hold_more_credits_than_the_balance(db: Database) -> None:
    settings = Settings(max_queued_jobs=THREADS * 2)  # only the credits limit the rounds
    principals = [_account(db, JOBS_AFFORDED * PRICE) for _ in range(ROUNDS)]
    accepted = []
    for principal, (created, refused) in zip(
        principals, _race(db, settings, principals), strict=True
    ):
        accepted.append(created)
        n, held, balance = _active(db, principal.account_id)
        assert n == created and held <= balance, (n, held, balance)
        assert set(refused) <= {"insufficient_credits"}, refused
    assert max(accepted) <= JOBS_AFFORDED, accepted
    # the lock serialises the creates, it does not refuse what the credits pay for
    assert min(accepted) == JOBS_AFFORDED, accepted


def test_concurrent_creates_never_pass_the_queue_cap(db: Database) -> None:
    settings = Settings()
    cap = 4
    principals = [_account(db, 10 * THREADS * PRICE, max_queued_jobs=cap) for _ in range(ROUNDS)]
    accepted = []
    for principal, (created, refused) in zip(
        principals, _race(db, settings, principals), strict=True
    ):
        accepted.append(created)
        assert _active(db, principal.account_id)[0] == created
        assert set(refused) <= {"too_many_queued_jobs"}, refused
    assert max(accepted) <= cap and min(accepted) == cap, accepted


# ---- end to end over HTTP ------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # no workers: the jobs stay queued, holding their credits, while the requests race
    srv = ServerProcess(
        tmp_path_factory.mktemp("credits-http"), workers=0, rate_limit="1000/second"
    )
    srv.start()
    yield srv
    srv.stop()


def _new_account(server: ServerProcess, credits: int) -> Callable[[], httpx.Client]:
    with server.client() as admin:
        r = admin.post(
            "/api/v1/accounts", json={"name": "racer", "credits": credits, "max_queued_jobs": 100}
        )
        assert r.status_code == 201, r.text
        key = r.json()["api_key"]
    return lambda: server.client(key)


def test_concurrent_http_creates_hold_only_what_the_account_has(server: ServerProcess) -> None:
    text = "Hello there, this is a short test."  # 34 characters: 3 credits each
    requests = 40
    make_client = _new_account(server, credits=5 * 3)
    barrier = threading.Barrier(requests)

    def post(_: int) -> httpx.Response:
        with make_client() as client:
            barrier.wait()
            return client.post("/api/v1/talking-photos", json={"avatar_id": "av_1", "text": text})

    with ThreadPoolExecutor(requests) as pool:
        answers = list(pool.map(post, range(requests)))
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {201, 402}, [r.text for r in answers if r.status_code not in (201, 402)]
    assert statuses.count(201) == 5, statuses
    assert all(
        r.json()["error"]["code"] == "insufficient_credits" for r in answers if r.status_code == 402
    )
    with make_client() as client:
        account = client.get("/api/v1/account").json()
    assert account["held"] == 15 and account["available"] == 0, account


def test_digits_are_priced_as_spoken_words(server: ServerProcess) -> None:
    # "123456789012" is 12 characters typed and 121 spoken ("one hundred twenty-three
    # billion, ..."): about 7 s of speech, which one credit does not pay for
    make_client = _new_account(server, credits=1)
    with make_client() as client:
        r = client.post(
            "/api/v1/talking-photos", json={"avatar_id": "av_1", "text": "123456789012"}
        )
        assert r.status_code == 402, r.text
        assert r.json()["error"]["code"] == "insufficient_credits"
        assert client.get("/api/v1/jobs").json()["total"] == 0


# ---- the real price, held before rendering -------------------------------------------------

# 23 characters, priced up front at 2 s (14 characters a second); the pauses between the
# sentences make it speak for about 2.8 s, so its video costs 3 credits
PAUSED_TEXT = "Hi. Hi. Hi. Hi. Hi. Hi."


def _service(home: Path, database_url: str | None = None) -> Service:
    settings = Settings(
        home=home,
        database_url=database_url,
        worker_nice=0,
        avatar_previews=False,
        expression_previews="off",
    )
    svc = Service(settings, enqueue=lambda _job_id: None)  # the test runs each job itself
    svc.bootstrap(previews=False)
    return svc


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = _service(tmp_path_factory.mktemp("credits-worker"))
    yield svc
    svc.db.dispose()


@pytest.fixture(scope="module")
def postgresql_service(
    tmp_path_factory: pytest.TempPathFactory, pg_cluster: PostgresCluster
) -> Iterator[Service]:
    # the same database as postgresql_db: the service's own accounts and jobs
    svc = _service(tmp_path_factory.mktemp("credits-worker-pg"), pg_cluster.url)
    yield svc
    svc.db.dispose()


def _priced_job(service: Service, astronaut_path: Path, credits: int) -> tuple[Principal, int]:
    with service.db.session() as session:
        account = create_account(session, "payer", credits=credits)
        account_id = account.id
        _, key = create_key(session, account_id)
    principal = service.authenticate(key)
    job, _ = service.create_talking_photo(
        principal,
        photo=MediaSource(base64=base64.b64encode(astronaut_path.read_bytes()).decode()),
        text=PAUSED_TEXT,
    )
    assert job.cost_estimate == 2
    return principal, job.id


def _balance(service: Service, principal: Principal) -> int:
    return int(service.account(principal)["account"].balance)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_job_whose_speech_costs_more_than_the_account_has_fails_before_rendering(
    database: str, request: pytest.FixtureRequest, astronaut_path: Path
) -> None:
    service: Service = request.getfixturevalue(
        "service" if database == "sqlite" else "postgresql_service"
    )
    principal, job_id = _priced_job(service, astronaut_path, credits=2)
    JobRunner(service.settings).run(job_id)
    job = service.job(principal, job_id)
    assert (job.status, job.error_code) == ("failed", "insufficient_credits"), job.error_message
    assert "needs 3" in (job.error_message or "")
    assert job.cost is None and _balance(service, principal) == 2
    assert service.account(principal)["held"] == 0


def test_the_charge_is_the_real_price_held_and_the_balance_stays_at_zero_or_more(
    service: Service, astronaut_path: Path
) -> None:
    principal, job_id = _priced_job(service, astronaut_path, credits=3)
    JobRunner(service.settings).run(job_id)
    job = service.job(principal, job_id)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    assert job.cost == job.cost_estimate == 3
    assert _balance(service, principal) == 0


def test_a_charge_is_never_more_than_the_hold(sqlite_db: Database) -> None:
    principal = _account(sqlite_db, 2)
    new = jobs.NewJob(kind="tts", params={"text": "x"}, cost_estimate=2)
    job, _ = jobs.create_job(sqlite_db, Settings(), principal, new, lambda _job_id: None)
    claimed = jobs.claim(sqlite_db, job.id, "test")
    assert claimed is not None
    # a runner's price over what was held (e.g. a frame of rounding past a second)
    assert jobs.finish_success(sqlite_db, Settings(), job.id, claimed.attempt, {}, cost=5)
    with sqlite_db.session() as session:
        assert session.get(Job, job.id).cost == 2  # type: ignore[union-attr]
    assert _active(sqlite_db, principal.account_id) == (0, 0, 0)
