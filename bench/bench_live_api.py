"""Live streaming benchmark, the API's side (issue #16): what a caller waits for, and what
open sessions cost the rest of the API.

Starts ``facecast serve`` (no job workers) in a scratch home, then:

1. polls ``GET /health`` and ``GET /api/v1/account`` (sequentially, one keep-alive
   connection, ``--polls`` each) with no session open: the baseline;
2. opens ``--sessions`` (2) sessions of the astronaut at 512x512, one after the other,
   timing each ``POST /api/v1/streams`` (spawn, face check, portrait set-up) and each WHEP
   answer (an aiortc viewer per session, receiving and decoding, as a player would);
3. with every session streaming to its viewer, one of them speaking, polls again, and
   times ``speak`` -> ``utterance_started`` and -> the first ``word`` event (SSE);
4. samples the CPU time of each session's process (idle, and the one speaking): what
   ``FACECAST_LIVE_CPU_PER_SESSION`` should say;
5. times a forwarded call (``interrupt``, to the session and back) and ``speak`` ->
   ``utterance_started`` for a few short sentences;
6. deletes the sessions and times how long until their processes are gone.

Prints a table (metric, value, bar, PASS/FAIL) and exits 0 whether a bar is met or not.
The viewers decode in this process, so on a small machine they take CPU from the sessions
too (as a player on the same machine would).

    python bench/bench_live_api.py [--sessions 2] [--polls 200] [--placed]

``--placed`` runs the sessions on a live worker (``FACECAST_LIVE_PLACEMENT=workers``:
``serve`` starts one beside its API process) instead of as the API process's children:
every call is then forwarded over loopback HTTP and the events relayed, so the two runs
side by side give what the forwarding adds.

Bars (a quiet 2-core machine): a session opens in < 5 s; with two sessions streaming, API
polls keep p99 < 100 ms (sessions render in their own processes; the API only signals).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from common import ROOT, print_table

sys.path.insert(0, str(ROOT / "tests"))
from live_support import Events, Viewer, wait_for
from service_support import ServerProcess

CREATE_BAR_S = 5.0
POLL_P99_BAR_MS = 100.0
CPU_WINDOW_S = 5.0
SPEAK_REPEATS = 5


def polls(client: httpx.Client, path: str, n: int) -> list[float]:
    """Milliseconds of ``n`` sequential GETs of ``path``."""
    out = []
    for _ in range(n):
        started = time.perf_counter()
        r = client.get(path)
        out.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 200, r.text
    return out


def cores(processes: list[psutil.Process], seconds: float) -> list[float]:
    """CPU cores each process (all its threads) kept busy over the next ``seconds``."""
    before = [sum(x.cpu_times()[:2]) for x in processes]
    time.sleep(seconds)  # a measuring window, not a wait for something to happen
    return [(sum(x.cpu_times()[:2]) - b) / seconds for x, b in zip(processes, before,
                                                                     strict=True)]


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 2 else max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=2)
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument("--placed", action="store_true",
                        help="sessions on a live worker (calls forwarded, events relayed)")
    args = parser.parse_args()

    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as home:
        server = ServerProcess(Path(home), workers=0, rate_limit="100000/second",
                               live_max_per_account=args.sessions,
                               live_max_sessions=args.sessions,
                               live_placement="workers" if args.placed else "local").start()
        viewers: list[Viewer] = []
        try:
            client = httpx.Client(base_url=server.url, timeout=120,
                                  headers={"Authorization": f"Bearer {server.admin_key}"})
            for path in ("/health", "/api/v1/account"):
                base = polls(client, path, args.polls)
                rows.append([f"GET {path}, no session: p50 / p99 ms",
                             f"{p(base, 50):.1f} / {p(base, 99):.1f}", "", ""])
            if args.placed:  # the live worker has registered
                wait_for(lambda: 'live_sessions{of="capacity"} 0.0' not in
                         client.get("/metrics").text, 60, "the live worker")
            avatar = next(a["id"] for a in client.get("/api/v1/avatars").json()["items"]
                          if a["name"] == "Eileen Collins")
            streams = []
            for i in range(args.sessions):
                started = time.perf_counter()
                r = client.post("/api/v1/streams", json={"avatar_id": avatar})
                created = time.perf_counter() - started
                assert r.status_code == 201, r.text
                streams.append(r.json())
                viewer = Viewer()
                viewers.append(viewer)
                started = time.perf_counter()
                assert viewer.connect(r.json()["whep_url"]).status_code == 201
                answered = time.perf_counter() - started
                wait_for(lambda v=viewer: v.video_frames >= 10, 60, "frames")
                rows.append([f"session {i + 1}: create s", f"{created:.2f}", f"< {CREATE_BAR_S}",
                             "PASS" if created < CREATE_BAR_S else "FAIL"])
                rows.append([f"session {i + 1}: WHEP answer s", f"{answered:.2f}", "", ""])
            assert server.proc is not None
            # the sessions' processes (the live worker's children when placed)
            sessions = [c for c in psutil.Process(server.proc.pid).children(recursive=True)
                        if "spawn_main" in " ".join(c.cmdline())]
            idle_cores = cores(sessions, CPU_WINDOW_S)
            rows.append([f"CPU cores per session, idle ({CPU_WINDOW_S:g} s)",
                         " / ".join(f"{c:.2f}" for c in idle_cores), "", ""])
            first = streams[0]
            events = Events(first["events_url"])
            long = ("The family of Dashwood had long been settled in Sussex, and their estate "
                    "was large. ") * 4
            started = time.perf_counter()
            said = client.post(f"/api/v1/streams/{first['id']}/speak", json={"text": long})
            assert said.status_code == 202, said.text
            uid = said.json()["id"]
            events.wait("utterance_started", 60, utterance_id=uid)
            to_start = time.perf_counter() - started
            events.wait("word", 60, utterance_id=uid)
            to_word = time.perf_counter() - started
            talking_cores = cores(sessions[:1], CPU_WINDOW_S)
            rows.append([f"CPU cores of the speaking session ({CPU_WINDOW_S:g} s)",
                         f"{talking_cores[0]:.2f}", "", ""])
            rows.append(["speak -> utterance_started event s", f"{to_start:.2f}", "", ""])
            rows.append(["speak -> first word event s", f"{to_word:.2f}", "", ""])
            for path in ("/health", "/api/v1/account", f"/api/v1/streams/{first['id']}"):
                busy = polls(client, path, args.polls)
                rows.append([f"GET {path.replace(first['id'], '{id}')}, {args.sessions} "
                             "streaming: p50 / p99 ms", f"{p(busy, 50):.1f} / {p(busy, 99):.1f}",
                             f"p99 < {POLL_P99_BAR_MS:.0f}",
                             "PASS" if p(busy, 99) < POLL_P99_BAR_MS else "FAIL"])
            # a call that goes to the session and back (through the live worker when placed)
            cuts = []
            for _ in range(max(10, args.polls // 5)):
                started = time.perf_counter()
                assert client.post(f"/api/v1/streams/{first['id']}/interrupt").status_code \
                    == 200
                cuts.append((time.perf_counter() - started) * 1000)
            rows.append(["POST /streams/{id}/interrupt: p50 / p99 ms",
                         f"{p(cuts, 50):.1f} / {p(cuts, 99):.1f}", "", ""])
            # speak -> utterance_started, a short sentence at a time (its first audio)
            starts = []
            for i in range(SPEAK_REPEATS):
                started = time.perf_counter()
                said = client.post(f"/api/v1/streams/{first['id']}/speak",
                                   json={"text": f"Number {i + 1}, a short sentence."})
                events.wait("utterance_started", 60, utterance_id=said.json()["id"])
                starts.append((time.perf_counter() - started) * 1000)
                events.wait("utterance_ended", 60, utterance_id=said.json()["id"])
            rows.append([f"speak -> utterance_started, {SPEAK_REPEATS} short: p50 / max ms",
                         f"{p(starts, 50):.0f} / {max(starts):.0f}", "", ""])
            frames = [v.video_frames for v in viewers]
            events.close()
            pids = [c.pid for c in sessions]
            started = time.perf_counter()
            for stream in streams:
                assert client.delete(f"/api/v1/streams/{stream['id']}").status_code == 200
            wait_for(lambda: not any(psutil.pid_exists(x) and psutil.Process(x).status()
                                     != psutil.STATUS_ZOMBIE for x in pids), 30, "processes")
            rows.append(["delete -> processes gone s", f"{time.perf_counter() - started:.2f}",
                         "", ""])
            rows.append(["video frames received per viewer", " / ".join(map(str, frames)), "",
                         ""])
        finally:
            for viewer in viewers:
                viewer.close()
            server.stop()
    print_table(["metric", "value", "bar", ""], rows,
                title=f"live streaming, API side ({psutil.cpu_count()} cores"
                      f"{', placed on a live worker' if args.placed else ''})")


if __name__ == "__main__":
    main()
