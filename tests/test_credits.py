"""Credits and queue places under concurrency, and balances that never go below zero.

Many threads released together by a :class:`threading.Barrier` create jobs for one
account against a real SQLite file and a real PostgreSQL (started here), through the
service layer (``jobs.create_job``) so that a round takes milliseconds; one variant goes
through a real ``facecast serve`` over HTTP. Whatever the interleaving, no more jobs may
be accepted than the account's credits (or its queue cap) allow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from facecast.errors import LimitError
from facecast.service import jobs
from facecast.service.accounts import Principal, create_account
from facecast.service.db import Database
from facecast.service.models import Account, Job
from facecast.service.settings import Settings
from scale_support import ServerMissing, postgres_cluster
from service_support import ServerProcess

THREADS = 50
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
def postgresql_db() -> Iterator[Database]:
    try:
        with postgres_cluster() as cluster:
            db = Database(Settings(database_url=cluster.url).db_url)
            db.migrate()
            yield db
            db.dispose()
    except ServerMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    return request.getfixturevalue(f"{request.param}_db")


def _account(db: Database, credits: int, max_queued_jobs: int | None = None) -> Principal:
    with db.session() as session:
        account = create_account(session, "racer", credits=credits)
        account.max_queued_jobs = max_queued_jobs
        account_id = account.id
    return Principal(account_id, 0, False, None, max_queued_jobs, f"acc:{account_id}")


def _race(db: Database, settings: Settings, principal: Principal) -> tuple[int, list[str]]:
    """THREADS creates released at once; the number accepted and the refusal codes."""
    barrier = threading.Barrier(THREADS)
    new = jobs.NewJob(kind="tts", params={"text": "x"}, cost_estimate=PRICE, queue_group="video")

    def one(_: int) -> str:
        barrier.wait()
        try:
            jobs.create_job(db, settings, principal, new, lambda _job_id: None)
        except LimitError as exc:
            return exc.code
        return "created"

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(one, range(THREADS)))
    return outcomes.count("created"), [o for o in outcomes if o != "created"]


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
    accepted = []
    for _ in range(ROUNDS):
        principal = _account(db, JOBS_AFFORDED * PRICE)
        created, refused = _race(db, settings, principal)
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
    accepted = []
    for _ in range(ROUNDS):
        principal = _account(db, 10 * THREADS * PRICE, max_queued_jobs=cap)
        created, refused = _race(db, settings, principal)
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
