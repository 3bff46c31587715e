"""Service load benchmark: status polls and job creation against a real server while a
talking-photo render runs on the same machine.

Starts ``facecast serve`` (one worker process, ``--api-workers`` API processes, a rate limit
and queue cap the benchmark cannot reach) in a scratch home, starts a long talking-photo
render and waits until it draws frames, then drives the HTTP API with ``wrk`` (Debian:
``apt-get install wrk``):

1. status polls: ``GET /api/v1/jobs/{render}`` for ``--seconds`` s on ``--connections``
   (200) keep-alive connections (after a short warm-up run);
2. job creation: ``POST /api/v1/speech`` (a TTS job: the cheapest job to create; it stays
   queued behind the render) for ``--create-seconds`` s on ``--create-connections`` (4),
   via a wrk Lua script.

Each phase checks that the render is ``running`` before and after it (and samples the CPU
time of the API processes and of the worker processes over it). Afterwards every job made is
canceled and the server stopped. Prints a table (metric, value, bar, PASS/FAIL); exits 0
whether a bar is met or not. ``--profile`` also records the API process with py-spy
(``pip install py-spy``) during a third poll run and prints its hottest frames.

    python bench/bench_service.py [--seconds 10] [--connections 200] [--api-workers 1]
        [--profile]

Bars (the issues', a quiet 2-core machine while one render draws frames): >= 1,500 status
polls per second from 200 connections with p99 latency < 250 ms; job creation p99 < 100 ms
from 4 connections.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from common import ROOT, TTS_TEXT, print_table

sys.path.insert(0, str(ROOT / "tests"))
from service_support import ServerProcess, wait_for_job

POLL_RPS_BAR = 1500.0
POLL_P99_BAR_MS = 250.0
POLL_CONNECTIONS = 200  # the poll bars hold at this many connections
CREATE_P99_BAR_MS = 100.0
CREATE_CONNECTIONS = 4
UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    output: str


def parse_wrk(output: str) -> WrkResult:
    """The figures of a ``wrk --latency`` run from its text output."""
    def ms(value: str, unit: str) -> float:
        return float(value) * UNITS_MS[unit]

    def percentile(p: int) -> float:
        found = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
        if not found:
            raise ValueError(f"no {p}% line in the wrk output:\n{output}")
        return ms(*found.groups())

    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency_max = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)", output)
    if not (total and rps and latency_max):
        raise ValueError(f"cannot read the wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    return WrkResult(
        requests=int(total.group(1)), seconds=ms(total.group(2), total.group(3)) / 1000,
        rps=float(rps.group(1)), p50_ms=percentile(50), p90_ms=percentile(90),
        p99_ms=percentile(99), max_ms=ms(*latency_max.groups()),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0, output=output)


def run_wrk(url: str, key: str, seconds: float, connections: int, threads: int,
            script: Path | None = None) -> WrkResult:
    cmd = ["wrk", "--latency", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",
           "--timeout", "10s", "-H", f"Authorization: Bearer {key}"]
    if script is not None:
        cmd += ["-s", str(script)]
    done = subprocess.run([*cmd, url], capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


# ---- CPU of the server's processes ----------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of one process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            children.append(int(entry.name))
    return children + [d for c in children for d in _descendants(c)]


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def worker_pids(api_pid: int) -> list[int]:
    """The worker consumer started by ``facecast serve`` and its worker processes."""
    consumers = [pid for pid in _descendants(api_pid)
                 if "facecast.service.consumer" in _cmdline(pid)]
    return consumers + [d for c in consumers for d in _descendants(c)]


@dataclass
class CpuUse:
    api_cores: float = 0.0  # CPU seconds per wall second: 1.0 is one core busy
    workers_cores: float = 0.0
    machine_cores: float = 0.0  # every process on the machine (wrk and other users too)


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (not idle or waiting on I/O)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def cpu_use(api_pid: int) -> Iterator[CpuUse]:
    """The cores used by the API processes (``facecast serve`` and, with ``--api-workers``,
    its API children) and by its worker processes over the block."""
    use = CpuUse()

    def sample() -> tuple[float, float]:
        api = workers = 0.0
        work = set(worker_pids(api_pid))
        for pid in _descendants(api_pid):
            with contextlib.suppress(OSError, IndexError, ValueError):  # ended in between
                if pid in work:
                    workers += _cpu_seconds(pid)
                else:
                    api += _cpu_seconds(pid)
        return _cpu_seconds(api_pid) + api, workers

    t0, (api0, workers0), busy0 = time.monotonic(), sample(), _machine_busy_seconds()
    yield use
    wall, (api1, workers1), busy1 = time.monotonic() - t0, sample(), _machine_busy_seconds()
    use.api_cores, use.workers_cores = (api1 - api0) / wall, (workers1 - workers0) / wall
    use.machine_cores = (busy1 - busy0) / wall


# ---- the benchmark ---------------------------------------------------------------------------


def job_state(client: httpx.Client, job_id: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/jobs/{job_id}")
    r.raise_for_status()
    return r.json()


@dataclass
class Phase:
    name: str
    wrk: WrkResult
    cpu: CpuUse
    render_before: dict[str, Any]
    render_after: dict[str, Any]

    @property
    def render_running(self) -> bool:
        return self.render_before["status"] == self.render_after["status"] == "running"

    @property
    def render_text(self) -> str:
        a, b = self.render_before, self.render_after
        stages = a["stage"] if a["stage"] == b["stage"] else f"{a['stage']} -> {b['stage']}"
        return f"{a['status']} -> {b['status']}, {a['progress']}% -> {b['progress']}% ({stages})"


def measure(name: str, client: httpx.Client, render_id: str, api_pid: int, url: str,
            key: str, seconds: float, connections: int, threads: int,
            script: Path | None = None) -> Phase:
    before = job_state(client, render_id)
    with cpu_use(api_pid) as cpu:
        result = run_wrk(url, key, seconds, connections, threads, script)
    return Phase(name, result, cpu, before, job_state(client, render_id))


def wait_for_rendering(client: httpx.Client, job_id: str, timeout: float = 600.0) -> None:
    """Until the job renders frames (its speech is made): the heaviest part of a render."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = job_state(client, job_id)
        if job["status"] != "running" or job["stage"] == "rendering":
            return
        time.sleep(0.5)  # polling a job that takes minutes; no event to wait on
    raise TimeoutError(f"{job_id} did not start rendering frames in {timeout:.0f} s")


def cancel_queued(client: httpx.Client, kind: str) -> int:
    """Cancel every queued job of ``kind``; returns how many were canceled."""
    canceled = 0
    while True:
        page = client.get("/api/v1/jobs", params={"kind": kind, "status": "queued",
                                                  "page_size": 100})
        page.raise_for_status()
        items = page.json()["items"]
        if not items:
            return canceled
        for job in items:
            r = client.post(f"/api/v1/jobs/{job['id']}/cancel")
            canceled += r.status_code == 200


def profile_polls(server: ServerProcess, url: str, seconds: float, connections: int,
                  threads: int, out: Path) -> str:
    """py-spy record of the API process during a poll run; its hottest frames as text."""
    if shutil.which("py-spy") is None:
        return "py-spy is not installed (pip install py-spy): no profile"
    assert server.proc is not None and server.admin_key is not None
    raw = out / "polls.pyspy.txt"
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(server.proc.pid), "--gil",
                            "--rate", "250", "--format", "raw", "--output", str(raw),
                            "--duration", f"{seconds:g}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        run_wrk(url, server.admin_key, seconds, connections, threads)
    finally:
        _, err = spy.communicate(timeout=seconds + 60)
    if spy.returncode != 0 or not raw.exists():
        return f"py-spy failed ({spy.returncode}): {err.strip()[-500:]}"
    return summarize_profile(raw)


def summarize_profile(raw: Path, top: int = 25) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [re.sub(r" \(.*?/(site-packages|src)/", " (", f) for f in stack.split(";")]
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    lines = [f"{total} samples of the thread holding the GIL; share of them:"]
    lines.append("  self:")
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {100 * n / total:5.1f}%  {frame}")
    lines.append("  inclusive:")
    for frame, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {100 * n / total:5.1f}%  {frame}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the poll run")
    ap.add_argument("--create-seconds", type=float, default=5.0,
                    help="length of the job-creation run")
    ap.add_argument("--connections", type=int, default=POLL_CONNECTIONS,
                    help="wrk keep-alive connections of the poll run")
    ap.add_argument("--create-connections", type=int, default=CREATE_CONNECTIONS,
                    help="wrk keep-alive connections of the job-creation run")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--chars", type=int, default=4000,
                    help="text length of the render (it must outlast the runs)")
    ap.add_argument("--any-stage", action="store_true",
                    help="measure as soon as the render runs (default: wait until it renders "
                         "frames, after its speech synthesis)")
    ap.add_argument("--workers", type=int, default=1, help="FACECAST_WORKERS")
    ap.add_argument("--api-workers", type=int, default=1, help="FACECAST_API_WORKERS")
    ap.add_argument("--worker-nice", type=int, default=None,
                    help="FACECAST_WORKER_NICE (default: the setting's own, 10)")
    ap.add_argument("--profile", action="store_true",
                    help="also profile the API process with py-spy during a poll run")
    ap.add_argument("--keep", action="store_true", help="keep the server's home folder")
    args = ap.parse_args(argv)

    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk); nothing measured.")
        return 0
    home = Path(tempfile.mkdtemp(prefix="facecast-bench-service-"))
    nice = {} if args.worker_nice is None else {"worker_nice": args.worker_nice}
    server = ServerProcess(home, workers=args.workers, api_workers=args.api_workers,
                           rate_limit="10000000/second", max_queued_jobs=10_000_000, **nice)
    t = time.perf_counter()
    server.start()
    print(f"server {server.url} up in {time.perf_counter() - t:.1f} s "
          f"({args.api_workers} API process(es), {args.workers} worker process(es), "
          f"{os.cpu_count()} CPUs, home {home}; load average {os.getloadavg()[0]:.1f})")
    assert server.proc is not None and server.admin_key is not None
    key, api_pid = server.admin_key, server.proc.pid
    phases: list[Phase] = []
    profile = ""
    try:
        with server.client() as client:
            text = (TTS_TEXT + " ") * (args.chars // len(TTS_TEXT) + 1)
            r = client.post("/api/v1/talking-photos",
                            json={"avatar_id": "av_1", "text": text[:args.chars].strip()})
            r.raise_for_status()
            render_id = r.json()["id"]
            t = time.perf_counter()
            wait_for_job(client, render_id, timeout=120, until={"running"})
            if not args.any_stage:
                wait_for_rendering(client, render_id)
            state = job_state(client, render_id)
            print(f"render {render_id} ({args.chars} characters of text) {state['status']}, "
                  f"{state['stage']!r} after {time.perf_counter() - t:.1f} s")

            poll_url = f"{server.url}/api/v1/jobs/{render_id}"
            run_wrk(poll_url, key, 2, args.connections, args.threads)  # warm-up
            phases.append(measure("status polls", client, render_id, api_pid, poll_url, key,
                                  args.seconds, args.connections, args.threads))

            script = home / "create.lua"
            script.write_text(
                'wrk.method = "POST"\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                'wrk.body = \'{"text": "Hello from the load benchmark."}\'\n')
            phases.append(measure("job creation", client, render_id, api_pid,
                                  f"{server.url}/api/v1/speech", key, args.create_seconds,
                                  args.create_connections, args.threads, script))
            created = client.get("/api/v1/jobs", params={"kind": "tts", "page_size": 1})
            n_created = created.json()["total"]
            if args.profile:
                profile = profile_polls(server, poll_url, args.seconds, args.connections,
                                        args.threads, home)
            t = time.perf_counter()
            canceled = cancel_queued(client, "tts")
            final = job_state(client, render_id)
            if final["status"] in ("queued", "running"):
                client.post(f"/api/v1/jobs/{render_id}/cancel").raise_for_status()
            print(f"cleanup: {n_created} TTS jobs created, {canceled} canceled in "
                  f"{time.perf_counter() - t:.1f} s; the render was {final['status']} at "
                  f"{final['progress']}% ({final['stage']}) and is canceled")
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)

    polls, creates = phases
    rows: list[list[Any]] = []

    def row(metric: str, value: float, bar: str, ok: bool) -> None:
        rows.append([metric, round(value, 1), bar, ("PASS" if ok else "FAIL") if bar else ""])

    polls_clean = polls.wrk.non_2xx == 0 and polls.wrk.socket_errors == 0
    creates_clean = creates.wrk.non_2xx == 0 and creates.wrk.socket_errors == 0
    # the poll bars are set for POLL_CONNECTIONS: fewer connections would meet them trivially
    polls_ok = polls_clean and polls.render_running and args.connections >= POLL_CONNECTIONS
    row(f"status polls / s ({args.connections} connections)", polls.wrk.rps,
        f">= {POLL_RPS_BAR:,.0f}", polls.wrk.rps >= POLL_RPS_BAR and polls_ok)
    row("status poll p50 (ms)", polls.wrk.p50_ms, "", True)
    row("status poll p90 (ms)", polls.wrk.p90_ms, "", True)
    row("status poll p99 (ms)", polls.wrk.p99_ms, f"< {POLL_P99_BAR_MS:g}",
        polls.wrk.p99_ms < POLL_P99_BAR_MS and polls_ok)
    row(f"job creation p99 (ms) ({args.create_connections} connections)", creates.wrk.p99_ms,
        f"< {CREATE_P99_BAR_MS:g}",
        creates.wrk.p99_ms < CREATE_P99_BAR_MS and creates_clean and creates.render_running)
    print_table(["metric", "value", "bar", "result"], rows,
                title=f"Service under load ({os.cpu_count()} CPUs, {args.api_workers} API "
                      f"process(es), wrk -t{args.threads}, render running during both runs: "
                      f"{'yes' if polls.render_running and creates.render_running else 'NO'})")
    detail = [[p.name, p.wrk.requests, round(p.wrk.seconds, 1), round(p.wrk.rps),
               round(p.wrk.p50_ms, 2), round(p.wrk.p90_ms, 2), round(p.wrk.p99_ms, 2),
               round(p.wrk.max_ms, 1), p.wrk.non_2xx + p.wrk.socket_errors,
               p.render_text,
               round(p.cpu.api_cores, 2), round(1000 * p.cpu.api_cores / max(p.wrk.rps, 1e-9), 2),
               round(p.cpu.workers_cores, 2), round(p.cpu.machine_cores, 2)]
              for p in phases]
    print_table(["run", "requests", "s", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
                 "errors", "render", "API cores", "API CPU ms/req", "worker cores",
                 "machine cores"], detail,
                title="Runs (errors: non-2xx answers + socket errors; cores: CPU seconds per "
                      "second: the API processes, the worker processes, the whole machine with "
                      "wrk and anything else running)")
    print(f"load average after the runs: {Path('/proc/loadavg').read_text().split()[0]} "
          f"on {os.cpu_count()} CPUs")
    if profile:
        print(f"\nProfile of the API process during a poll run (py-spy):\n{profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
