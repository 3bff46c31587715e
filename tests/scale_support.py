"""Throwaway external servers for the scale-out tests: Redis, PostgreSQL and s3rver.

Each server is started on a free loopback port with its data in a temporary folder, waited
for by polling it (with a deadline) until it answers, and stopped and removed afterwards:

- :func:`redis_server`: Debian's ``redis-server``, nothing persisted (``--save ''``).
- :func:`postgres_cluster`: a new cluster made by ``initdb`` and run by ``pg_ctl`` with its
  unix socket in the temporary folder. PostgreSQL refuses to run as root, so as root its
  programs run as the ``postgres`` user (``runuser``) in a folder owned by that user.
- :func:`s3rver`: the npm ``s3rver`` in ``tests/servers/node_modules`` (a copy of the
  approach of ``test_storage.py``), with one bucket configured.

A missing program raises :class:`ServerMissing`, which the fixtures turn into a skip whose
reason says what to install.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from service_support import free_port

SERVERS = Path(__file__).resolve().parent / "servers"
S3RVER_CLI = SERVERS / "node_modules" / "s3rver" / "bin" / "s3rver.js"
S3_BUCKET = "facecast-scale"
# s3rver's built-in account
S3_CREDS = "access_key=S3RVER&secret_key=S3RVER&region=us-east-1"

# a port picked by free_port() may be taken by someone else before the server binds it
PORT_ATTEMPTS = 3


class ServerMissing(Exception):
    """The program a server needs is not installed; the message says how to install it."""


class ServerFailed(Exception):
    """The server did not start; the message carries its log."""


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------------------------------------
# Redis


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=0, socket_timeout=5)


def _start_redis(binary: str, workdir: Path, port: int, timeout: float) -> RedisServer:
    log = workdir / f"redis-{port}.log"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--logfile", str(log), "--daemonize", "no"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = RedisServer(port, proc, log)
    deadline = time.monotonic() + timeout
    with server.client() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServerFailed(f"redis-server exited with {proc.returncode}:\n{_tail(log)}")
            try:
                if client.ping():
                    return server
            except redis.RedisError:
                pass
            time.sleep(0.05)
    _stop_process(proc)
    raise ServerFailed(f"redis-server did not answer within {timeout} s:\n{_tail(log)}")


@contextlib.contextmanager
def redis_server(workdir: Path, timeout: float = 20.0) -> Iterator[RedisServer]:
    """A running ``redis-server`` on a free loopback port; stopped on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerMissing("redis-server is not installed (Debian: apt-get install redis-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    error: ServerFailed | None = None
    for _ in range(PORT_ATTEMPTS):
        try:
            server = _start_redis(binary, workdir, free_port(), timeout)
            break
        except ServerFailed as exc:  # most likely the port was taken meanwhile: try another
            error = exc
    else:
        assert error is not None
        raise error
    try:
        yield server
    finally:
        _stop_process(server.proc)


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_bindir() -> Path:
    """The folder of ``initdb`` / ``pg_ctl``: Debian's newest version, else the PATH's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    raise ServerMissing("PostgreSQL is not installed (Debian: apt-get install postgresql)")


@dataclass
class PostgresCluster:
    bindir: Path
    root: Path  # owned by the user the server runs as
    port: int
    user: str  # the cluster's superuser (the OS user that runs it)
    as_user: list[str]  # the prefix that runs a program as that user ([] when not root)
    database: str = "facecast"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        """The URL facecast takes (``FACECAST_DATABASE_URL``)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def conninfo(self) -> str:
        """The same database for psycopg."""
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={self.database}"

    def run(self, program: str, *args: str, timeout: float = 60.0) -> str:
        cmd = [*self.as_user, str(self.bindir / program), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=self.root)
        if done.returncode != 0:
            raise ServerFailed(f"{' '.join(cmd)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}\n{_tail(self.log)}")
        return done.stdout

    def start(self, timeout: float) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        # -w: pg_ctl itself polls until the server accepts connections (or -t runs out)
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                 "-w", "-t", str(int(timeout)), "start", timeout=timeout + 10)

    def stop(self) -> None:
        with contextlib.suppress(ServerFailed, subprocess.TimeoutExpired):
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop",
                     timeout=30)


@contextlib.contextmanager
def postgres_cluster(timeout: float = 60.0) -> Iterator[PostgresCluster]:
    """A new PostgreSQL cluster on a free loopback port with an empty ``facecast`` database
    (trust authentication, loopback and a private unix socket only); removed on exit."""
    bindir = postgres_bindir()
    if os.geteuid() == 0:
        # PostgreSQL will not run as root: run it as the packaging's ``postgres`` user
        runuser = shutil.which("runuser")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise ServerMissing("running as root but there is no 'postgres' user "
                                "(Debian's postgresql package creates it)") from None
        if runuser is None:
            raise ServerMissing("running as root without runuser (util-linux)")
        as_user, user = [runuser, "-u", "postgres", "--"], "postgres"
    else:
        owner, as_user, user = pwd.getpwuid(os.geteuid()), [], pwd.getpwuid(os.geteuid()).pw_name
    # not under pytest's tmp_path: its parents are private to root, and the server's user must
    # reach its data folder and socket
    root = Path(tempfile.mkdtemp(prefix="facecast-pg-"))
    try:
        os.chown(root, owner.pw_uid, owner.pw_gid)
        cluster = PostgresCluster(bindir, root, 0, user, as_user)
        cluster.run("initdb", "-D", str(cluster.data), "-U", user, "--auth=trust",
                    "--encoding=UTF8", "--no-sync", timeout=120)
        error: ServerFailed | None = None
        for _ in range(PORT_ATTEMPTS):
            cluster.port = free_port()
            try:
                cluster.start(timeout)
                break
            except ServerFailed as exc:  # most likely the port was taken meanwhile
                error = exc
        else:
            assert error is not None
            raise error
        try:
            with psycopg.connect(f"host=127.0.0.1 port={cluster.port} user={user} "
                                 "dbname=postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{cluster.database}"')
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# s3rver (S3-compatible object store, npm)


@dataclass
class S3rver:
    endpoint: str
    bucket: str

    def storage_url(self, prefix: str) -> str:
        """A ``FACECAST_STORAGE_URL`` for ``prefix`` in the bucket."""
        return f"s3://{self.bucket}/{prefix}?endpoint_url={self.endpoint}&{S3_CREDS}"


@contextlib.contextmanager
def s3rver(workdir: Path, bucket: str = S3_BUCKET, timeout: float = 30.0) -> Iterator[S3rver]:
    """An s3rver on a free loopback port with ``bucket`` configured; stopped on exit."""
    node = shutil.which("node")
    if not S3RVER_CLI.is_file() or node is None:
        raise ServerMissing("s3rver is not installed: run `npm ci --prefix tests/servers` "
                            "(needs node)")
    workdir.mkdir(parents=True, exist_ok=True)
    # port 0: s3rver binds a free port and prints it, so no other process can take it first
    proc = subprocess.Popen(
        [node, str(S3RVER_CLI), "-d", str(workdir), "-a", "127.0.0.1", "-p", "0", "--silent",
         "--configure-bucket", bucket],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str | None] = queue.Queue()
    log: list[str] = []

    def pump() -> None:
        # keeps reading to the end so the pipe never fills and blocks the server
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    endpoint = None
    deadline = time.monotonic() + timeout
    try:
        while endpoint is None:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            # printed once the bucket is configured and the socket listens
            match = re.search(r"S3rver listening on ([\d.]+):(\d+)", line)
            if match:
                endpoint = f"http://{match[1]}:{match[2]}"
        if endpoint is None:
            raise ServerFailed(f"s3rver did not start; its output:\n{''.join(log)}")
        yield S3rver(endpoint, bucket)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
