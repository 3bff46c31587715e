"""Live streaming (facecast.live, issue #16) as a viewer receives it.

A real aiortc client (:class:`facecast.live.viewer.Viewer`) watches a live session
on the astronaut and records every decoded frame and audio packet with its arrival
time. Measured:

1. latency, speak_text -> the first received frame whose mouth moves for it and ->
   the first audible audio packet, over 12 utterances whose first sentence has 8-12
   words (p50 / p95; bars 600 / 900 ms);
2. smoothness over 60 s of continuous speech: frames received per second and the
   largest gap between two frames (bars >= 24.5 fps, <= 120 ms);
3. lip sync of what was received: the frames and sound put back on their own media
   timestamps, each stream at its median delay (as a player's jitter buffer plays them),
   written to an MP4 and scored by facecast.quality.lipsync against an offline render
   of the same text (bar: lag 0..+120 ms, r >= 0.35);
4. two sessions at once, both speaking: each one's fps and largest gap (bar >= 24 fps);
5. interrupt -> the last audible packet and the first closed-mouth frame, as received
   and as sent (the frame's stamp on the media clock) (bar 200 ms);
6. ``--minutes N``: a long session speaking without pause: the session process's RSS
   (its floor between synthesis bursts, first minute after warm-up vs last) and A/V
   drift (the audio's delay minus the video's, first minute vs last).

Run by hand (the figures need a quiet machine; under load they are indicative):

    python bench/bench_stream.py [--quick] [--size 512] [--minutes N]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import OUT_DIR, portrait_path, print_table, render_in_child, spec_fields, tts_text
from facecast.live import LiveSession, LiveSpec
from facecast.live.viewer import Recording, Viewer

# First sentences of 8 to 12 words, each followed by a second one.
UTTERANCES = (
    "Good morning, and welcome to our little corner of the internet. It is good to see you.",
    "Today I would like to tell you about the history of lighthouses. They are old.",
    "The weather in the mountains changes faster than you might expect. Bring a coat.",
    "Please remember to save your work before you close the window. Thank you.",
    "My favourite book has a blue cover and a torn first page. I read it twice.",
    "We will meet again at nine o'clock tomorrow in the main hall. Do not be late.",
    "Every river finds its way to the sea in the end. That is a comfort.",
    "Our team has finished the first part of the project this week. Well done.",
    "Could you tell me the quickest way to the railway station? I am lost.",
    "The museum opens at ten and closes early on Sundays. Entry is free.",
    "Bright yellow flowers grew along the edge of the old stone wall. Bees came.",
    "A good cup of tea makes almost any morning a little better. Try it.",
)
LONG = ("Once upon a time there was a lighthouse keeper who counted the waves every night. "
        "She wrote each number in a long blue book. The book grew and grew, and nobody "
        "ever read it, until one stormy evening a sailor knocked at her door.")
LATENCY_BAR_MS = (600.0, 900.0)  # p50, p95
FPS_BAR, GAP_BAR_MS, TWO_FPS_BAR = 24.5, 120.0, 24.0
LAG_BAR_MS, R_BAR = (0.0, 120.0), 0.35
INTERRUPT_BAR_MS = 200.0
WARM_UP_S = 120.0  # a long session's memory is judged from here on
FLOOR_WINDOW_S = 300.0  # its floor: the lowest sample in the first / last this long
GROWTH_BAR_MIB = 8.0  # "memory flat (no growth beyond a few MB)"
AUDIBLE = 0.02  # peak level of an audible packet (silence decodes to about 0)
SYNC_S = 25.0  # seconds of speech scored for lip sync (>= 20 s: shorter gives chance r)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


class Watch:
    """One session and one viewer that keeps the face (a 256-pixel square) of each frame."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        x, y = session.info["mouth"]
        self.iod = float(session.info["iod"])
        w, h = session.info["width"], session.info["height"]
        half = min(128, w // 2, h // 2)
        cx = int(np.clip(x, half, w - half))
        cy = int(np.clip(y - 0.8 * self.iod, half, h - half))
        self.box = (slice(cy - half, cy + half), slice(cx - half, cx + half))
        self.mouth = (y - (cy - half), x - (cx - half))  # in the crop
        self.viewer = Viewer(crop=lambda im: im[self.box])
        self.viewer.keep = lambda _t: self.keeping
        self.keeping = True

    @property
    def rec(self) -> Recording:
        return self.viewer.recording

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()

        async def answer(sdp: str) -> str:
            return await loop.run_in_executor(None, self.session.answer, sdp)

        await self.viewer.connect(answer)
        assert await self.viewer.wait_for(lambda r: len(r.video) > 25, 60.0)

    def contrast(self, image: np.ndarray) -> float:
        """Grey-level spread on the lips: high when the mouth is open (dark inside, teeth)."""
        y, x = self.mouth
        d = self.iod
        patch = image[int(y - 0.25 * d):int(y + 0.25 * d), int(x - 0.4 * d):int(x + 0.4 * d)]
        return float(patch.astype(np.float32).mean(axis=2).std())

    def frames(self, t0: float, t1: float) -> list[tuple[float, np.ndarray]]:
        return [(v.arrived, v.image) for v in self.rec.video
                if t0 <= v.arrived < t1 and v.image is not None]

    def trim(self, before: float) -> None:
        """Forget frames and audio that arrived before ``before`` (a long watch stays flat)."""
        self.rec.video = [v for v in self.rec.video if v.arrived >= before]
        self.rec.audio = [a for a in self.rec.audio if a.arrived >= before]

    async def until_ended(self, uid: str, timeout: float = 120.0) -> None:
        ok = await self.viewer.wait_for(
            lambda r: any(e["type"] == "utterance_ended" and e["utterance_id"] == uid
                          for e in r.events), timeout)
        recent = sum(v.arrived > time.monotonic() - 5 for v in self.rec.video)
        assert ok, (f"utterance {uid} did not end in {timeout} s: {recent} frames in the "
                    f"last 5 s, last events {self.rec.events[-3:]}, "
                    f"session alive {self.session.alive}")

    async def idle_for(self, seconds: float) -> None:
        t = time.monotonic() + seconds
        await self.viewer.wait_for(lambda r: bool(r.video) and r.video[-1].arrived >= t,
                                   seconds + 30)


def start(size: int) -> LiveSession:
    session = LiveSession(LiveSpec(photo=portrait_path(), width=size, height=size))
    t = time.monotonic()
    session.start(timeout=180)
    print(f"session started in {time.monotonic() - t:.1f} s (pid {session.pid})")
    return session


def smoothness(rec: Recording, t0: float, t1: float) -> tuple[float, float, float]:
    """Frames received per second, the largest gap (ms) between arrivals, and the largest
    gap between the frames' own stamps (ms: above 40, the sender skipped frames; the rest
    of an arrival gap is the network and the receiver) between ``t0`` and ``t1``."""
    got = [v for v in rec.video if t0 <= v.arrived <= t1]
    if len(got) < 2:
        return 0.0, float("inf"), float("inf")
    times = np.array([v.arrived for v in got])
    stamps = np.array([v.pts for v in got], np.float64) / 90.0
    return ((len(times) - 1) / (times[-1] - times[0]), float(np.diff(times).max() * 1000),
            float(np.diff(stamps).max()))


def speech_window(watch: Watch, uid: str) -> tuple[float, float]:
    """Arrival times of the utterance's first and last loud packets."""
    loud = [a.arrived for a in watch.rec.audio if np.abs(a.samples).max() > AUDIBLE]
    ev = {e["type"]: e for e in watch.rec.events if e["utterance_id"] == uid}
    assert "utterance_started" in ev
    return (loud[0], loud[-1]) if loud else (0.0, 0.0)


# --------------------------------------------------------------------------- 1. latency
async def latency(watch: Watch, n: int) -> list[list[Any]]:
    to_mouth: list[float] = []
    to_sound: list[float] = []
    to_plan: list[float] = []  # speak -> the time the session put the speech at
    clock_start = float(watch.session.info["clock_start"])
    for text in UTTERANCES[:n]:
        await watch.idle_for(1.0)
        t_s = time.monotonic()
        idle = [watch.contrast(im) for _, im in watch.frames(t_s - 1.0, t_s)]
        uid = watch.session.speak_text(text)
        await watch.until_ended(uid)
        moving = next((t for t, im in watch.frames(t_s, time.monotonic())
                       if watch.contrast(im) > max(idle) + 2.0), float("nan"))
        audible = next((a.arrived for a in watch.rec.audio
                        if a.arrived > t_s and np.abs(a.samples).max() > AUDIBLE), float("nan"))
        to_mouth.append((moving - t_s) * 1000)
        to_sound.append((audible - t_s) * 1000)
        started = next(e for e in watch.rec.events
                       if e["type"] == "utterance_started" and e["utterance_id"] == uid)
        # one monotonic clock for every process: the media clock's t is comparable
        to_plan.append((clock_start + started["t"] - t_s) * 1000)
        watch.trim(time.monotonic() - 2.0)
    print("speak -> mouth ms:", " ".join(f"{v:.0f}" for v in to_mouth))
    print("speak -> sound ms:", " ".join(f"{v:.0f}" for v in to_sound))
    print("speak -> placed on the media clock (TTS + placement) ms:",
          " ".join(f"{v:.0f}" for v in to_plan))
    rows = []
    for name, values in (("speak -> first moving-mouth frame", to_mouth),
                         ("speak -> first audible audio", to_sound),
                         ("(speak -> speech due on the media clock)", to_plan)):
        p50, p95 = np.nanpercentile(values, 50), np.nanpercentile(values, 95)
        rows.append([name, len(values), float(p50), float(p95), "600 / 900",
                     verdict(p50 <= LATENCY_BAR_MS[0] and p95 <= LATENCY_BAR_MS[1])])
    return rows


# --------------------------------------------------------------------------- 2. smoothness
async def continuous(watch: Watch, seconds: float) -> list[Any]:
    watch.keeping = False  # times only: 60 s of frames are not kept
    uid = watch.session.speak_text(tts_text(seconds))
    await watch.until_ended(uid, timeout=seconds * 4 + 60)
    t0, t1 = speech_window(watch, uid)
    fps, gap, sent_gap = smoothness(watch.rec, t0, t1)
    watch.keeping = True
    watch.trim(time.monotonic() - 2.0)
    return [f"{watch.session.info['width']}px, {t1 - t0:.0f} s of speech", fps, gap, sent_gap,
            verdict(fps >= FPS_BAR and gap <= GAP_BAR_MS)]


# --------------------------------------------------------------------------- 3. lip sync
def on_media_clock(rec: Recording, t0: float, t1: float, fps: int
                   ) -> tuple[list[np.ndarray], np.ndarray]:
    """The received frames and sound between arrival times ``t0`` and ``t1`` on one
    timeline: each stream's media timestamps shifted by its median delay (arrival minus
    timestamp), as a player plays them. Frames on the fps grid (a missing one repeats
    the last), audio at 48 kHz from the first frame's time."""
    video = [v for v in rec.video if t0 <= v.arrived <= t1 and v.image is not None]
    audio = [a for a in rec.audio if t0 - 1 <= a.arrived <= t1 + 1]
    dv = float(np.median([v.arrived - v.pts / 90000 for v in video]))
    da = float(np.median([a.arrived - a.pts / 48000 for a in audio]))
    first = video[0].pts
    frames: list[np.ndarray] = []
    for v in video:
        k = round((v.pts - first) / (90000 / fps))
        while len(frames) < k:
            frames.append(frames[-1])
        if len(frames) == k:
            frames.append(v.image)  # type: ignore[arg-type]
    start = first / 90000 + dv  # when the first frame plays
    n = int(len(frames) / fps * 48000)
    sound = np.zeros(n, np.float32)
    for a in audio:
        i = int(round((a.pts / 48000 + da - start) * 48000))
        lo, hi = max(i, 0), min(i + len(a.samples), n)
        if lo < hi:
            sound[lo:hi] = a.samples[lo - i:hi - i]
    return frames, sound


async def lip_sync(watch: Watch, size: int) -> tuple[list[list[Any]], Path]:
    from facecast.media import Audio, Mp4Writer
    from facecast.quality.lipsync import measure_lipsync

    text = tts_text(SYNC_S)
    watch.trim(time.monotonic())
    uid = watch.session.speak_text(text)
    await watch.until_ended(uid, timeout=SYNC_S * 4 + 60)
    t0, t1 = speech_window(watch, uid)
    frames, sound = on_media_clock(watch.rec, t0 - 1.0, t1 + 0.5, 25)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    live_mp4 = OUT_DIR / "stream_received.mp4"
    h, w = frames[0].shape[:2]
    with Mp4Writer(live_mp4, w, h, 25, Audio(sound, 48000)) as writer:
        for f in frames:
            writer.write(f)
    watch.trim(time.monotonic())
    live = measure_lipsync(live_mp4)
    offline_mp4 = OUT_DIR / "stream_offline.mp4"
    offline = render_in_child(spec_fields(offline_mp4, text=text, size=f"{size}x{size}"))
    rows = [["received live stream", live.best_lag_ms, live.peak_correlation,
             verdict(LAG_BAR_MS[0] <= live.best_lag_ms <= LAG_BAR_MS[1]
                     and live.peak_correlation >= R_BAR)]]
    if offline.ok:
        ref = measure_lipsync(offline_mp4)
        rows.append(["offline render, same text", ref.best_lag_ms, ref.peak_correlation,
                     verdict(LAG_BAR_MS[0] <= ref.best_lag_ms <= LAG_BAR_MS[1]
                             and ref.peak_correlation >= R_BAR)])
    else:
        print("offline render failed:", offline.error)
    return rows, live_mp4


# --------------------------------------------------------------------------- 4. two at once
async def two_at_once(a: Watch, b: Watch, seconds: float) -> list[list[Any]]:
    a.keeping = b.keeping = False
    ua = a.session.speak_text(tts_text(seconds))
    ub = b.session.speak_text(tts_text(seconds))
    await a.until_ended(ua, timeout=seconds * 4 + 60)
    await b.until_ended(ub, timeout=seconds * 4 + 60)
    rows = []
    for name, w, uid in (("session A", a, ua), ("session B", b, ub)):
        t0, t1 = speech_window(w, uid)
        fps, gap, sent_gap = smoothness(w.rec, t0, t1)
        rows.append([name, fps, gap, sent_gap, verdict(fps >= TWO_FPS_BAR)])
        w.keeping = True
        w.trim(time.monotonic() - 2.0)
    return rows


# --------------------------------------------------------------------------- 5. interrupt
def media_origin(rec: Recording, clock_start: float, since: float, fps: int = 25) -> float:
    """Seconds to add to a received frame's stamp (pts / 90 kHz) for the time it was due
    on the session's media clock (``time.monotonic`` minus ``clock_start``). The stamps
    start at a random RTP origin; the frame that arrived soonest after its stamp shows it,
    less one frame: aiortc's receiver hands a frame on only when the next frame's first
    packet arrives (``aiortc/jitterbuffer.py``, ``_remove_frame``: a frame is complete when
    a packet with another timestamp comes), so every frame it decodes is at least one
    frame interval older than its arrival. What is left is the fastest frame's encoding
    and transport (a few ms on one machine)."""
    fastest = min(v.arrived - clock_start - v.pts / 90000 for v in rec.video
                  if v.arrived >= since)
    return fastest - 1.0 / fps


CLOSED_SHARE = 0.2  # a mouth reads closed below this share of the way from idle to open


async def interrupts(watch: Watch, n: int) -> list[Any]:
    """Each trial: a long text, interrupted 5 words in. Read per received frame: the lips'
    contrast. A frame reads closed below idle + CLOSED_SHARE of the way to speaking (idle:
    the highest of the second before the speech; speaking: the 90th percentile of the
    speech before the interrupt), so that the encoder's softer first frames after motion
    are not read as an open mouth. The mouth is closed from the first frame after which
    none reads open; timed from the call as received (arrival) and as sent (the frame's
    own stamp on the media clock)."""
    import json

    loop = asyncio.get_running_loop()
    clock_start = float(watch.session.info["clock_start"])
    silent: list[float] = []
    closed: list[float] = []
    sent: list[float] = []
    delays: list[float] = []  # per frame after an interrupt: arrival minus its stamp
    traces: list[dict[str, Any]] = []
    grabs: list[tuple[str, np.ndarray]] = []
    strips: list[np.ndarray] = []
    for i in range(n):
        # the baseline from the second before: after a fresh connection, a little later
        # (the encoder's first second is softer, which reads as a lower contrast)
        await watch.idle_for(1.0 if i else 3.0)
        t = time.monotonic()
        idle = [watch.contrast(im) for _, im in watch.frames(t - 1.0, t)]
        if i == 0:
            grabs.append(("idle", watch.frames(t - 0.2, t)[-1][1]))
        uid = watch.session.speak_text(LONG)
        await watch.viewer.wait_for(
            lambda r, u=uid: sum(e["type"] == "word" and e["utterance_id"] == u
                                 for e in r.events) >= 5, 60)
        t_i = time.monotonic()
        speaking = [watch.contrast(im) for _, im in watch.frames(t, t_i)]
        if i == 0:
            grabs.append(("speaking", max(watch.frames(t_i - 0.6, t_i),
                                          key=lambda f: watch.contrast(f[1]))[1]))
        await loop.run_in_executor(None, watch.session.interrupt)
        await watch.idle_for(1.0)
        loud = [a.arrived for a in watch.rec.audio
                if a.arrived > t_i and np.abs(a.samples).max() > AUDIBLE]
        silent.append(((loud[-1] if loud else t_i) - t_i) * 1000)
        origin = media_origin(watch.rec, clock_start, t_i - 2.0)
        after = [v for v in watch.rec.video
                 if v.arrived >= t_i - 0.2 and v.image is not None]
        stamps = [(v.pts / 90000 + origin + clock_start - t_i) * 1000 for v in after]
        arrivals = [(v.arrived - t_i) * 1000 for v in after]
        level = [watch.contrast(v.image) for v in after]  # type: ignore[arg-type]
        delays += [a - s for a, s in zip(arrivals, stamps, strict=True) if s > 0]
        top = float(np.percentile(speaking, 90)) if speaking else max(idle) + 8.0
        limit = max(idle) + CLOSED_SHARE * max(top - max(idle), 4.0)
        # the first frame from which the mouth stays closed
        last_open = max((j for j, c in enumerate(level) if c > limit), default=-1)
        if last_open + 1 < len(after):
            closed.append(max(arrivals[last_open + 1], 0.0))
            sent.append(max(stamps[last_open + 1], 0.0))
        else:
            closed.append(float("nan"))
            sent.append(float("nan"))
        cut = next((e["t"] for e in watch.rec.events
                    if e["type"] == "interrupted" and e["utterance_id"] == uid), None)
        traces.append({"idle_max": max(idle), "speaking_p90": top, "limit": limit,
                       "cut_after_call_ms": None if cut is None
                       else (clock_start + cut - t_i) * 1000,
                       "frames": [[round(a, 1), round(s_), round(c, 2)] for a, s_, c
                                  in zip(arrivals, stamps, level, strict=True)]})
        strips.append(mouth_strip(watch, after, stamps, level, limit))
        if i == 0:
            grabs.append(("interrupted +300 ms",
                          next(v.image for v in after if v.arrived > t_i + 0.3)))
        watch.trim(time.monotonic() - 2.0)
    save_grabs(grabs, watch)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "stream_interrupts.json").write_text(json.dumps(traces))
    save_strips(strips)
    print("interrupt -> silent ms:", " ".join(f"{v:.0f}" for v in silent))
    print("interrupt -> closed ms (received):", " ".join(f"{v:.0f}" for v in closed))
    print("interrupt -> closed ms (sent, media clock):", " ".join(f"{v:.0f}" for v in sent))
    print(f"frames after an interrupt, arrival minus stamp: median {np.median(delays):.0f} ms,"
          f" max {np.max(delays):.0f} ms")
    closed_max = float(np.max(closed))  # nan (unreadable) fails
    return [float(np.median(silent)), float(np.max(silent)), float(np.nanmedian(closed)),
            closed_max, float(np.max(sent)),
            verdict(float(np.max(silent)) <= INTERRUPT_BAR_MS
                    and closed_max <= INTERRUPT_BAR_MS)]


def mouth_strip(watch: Watch, frames: list[Any], stamps: list[float], level: list[float],
                limit: float) -> np.ndarray:
    """One trial's mouths, sent -80..+400 ms around the interrupt call, at 2x, each
    labelled with its stamp (ms after the call) and contrast (red: read open)."""
    import cv2

    y, x = watch.mouth
    d = watch.iod
    tiles = []
    for v, s_, c in zip(frames, stamps, level, strict=True):
        if not -80 <= s_ <= 400:
            continue
        m = v.image[int(y - 0.45 * d):int(y + 0.45 * d), int(x - 0.6 * d):int(x + 0.6 * d)]
        m = np.ascontiguousarray(cv2.resize(m, None, fx=2, fy=2,
                                            interpolation=cv2.INTER_CUBIC))
        colour = (255, 60, 60) if c > limit else (255, 255, 0)
        cv2.putText(m, f"{s_:+.0f} {c:.1f}", (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                    colour, 1)
        tiles.append(m)
    return np.concatenate(tiles, axis=1) if tiles else np.zeros((8, 8, 3), np.uint8)


def save_strips(strips: list[np.ndarray]) -> None:
    import cv2

    width = max(s.shape[1] for s in strips)
    rows = [np.pad(s, ((0, 4), (0, width - s.shape[1]), (0, 0))) for s in strips]
    cv2.imwrite(str(OUT_DIR / "stream_interrupt_strips.png"),
                np.concatenate(rows, axis=0)[:, :, ::-1])


def save_grabs(grabs: list[tuple[str, np.ndarray]], watch: Watch) -> None:
    """Face crops side by side, and the mouths at 3x, under out/bench/."""
    import cv2

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    y, x = watch.mouth
    d = watch.iod
    faces, mouths = [], []
    for name, im in grabs:
        face = np.ascontiguousarray(im)
        cv2.putText(face, name, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1)
        faces.append(face)
        m = im[int(y - 0.6 * d):int(y + 0.6 * d), int(x - 0.8 * d):int(x + 0.8 * d)]
        mouths.append(cv2.resize(m, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC))
    cv2.imwrite(str(OUT_DIR / "stream_faces.png"), np.concatenate(faces, axis=1)[:, :, ::-1])
    cv2.imwrite(str(OUT_DIR / "stream_mouths.png"),
                np.concatenate(mouths, axis=1)[:, :, ::-1])


# --------------------------------------------------------------------------- cpu
async def cpu_use(watch: Watch, seconds: float) -> list[list[Any]]:
    """The session process's CPU (user + system, all its threads) per second of stream,
    idle and speaking: what a session costs whatever else the machine runs."""
    import psutil

    proc = psutil.Process(watch.session.pid)
    watch.keeping = False
    rows = []
    for name in ("idle", "speaking"):
        uid = watch.session.speak_text(tts_text(seconds + 5)) if name == "speaking" else None
        if uid is not None:
            await watch.viewer.wait_for(lambda r, u=uid: any(
                e["type"] == "utterance_started" and e["utterance_id"] == u
                for e in r.events), 60)
        c0, t0 = sum(proc.cpu_times()[:2]), time.monotonic()
        await watch.idle_for(seconds)
        c1, t1 = sum(proc.cpu_times()[:2]), time.monotonic()
        rows.append([name, (c1 - c0) / (t1 - t0), seconds])
        if uid is not None:
            watch.session.interrupt()
        watch.trim(time.monotonic() - 1.0)
    watch.keeping = True
    return rows


# --------------------------------------------------------------------------- 6. long
async def long_session(watch: Watch, minutes: float) -> list[list[Any]]:
    import psutil

    proc = psutil.Process(watch.session.pid)
    watch.keeping = False
    end = time.monotonic() + minutes * 60
    rss: list[tuple[float, float]] = []
    offsets: list[tuple[float, float, float]] = []  # (time, audio delay, video delay)
    t_start = time.monotonic()
    uid = watch.session.speak_text(tts_text(60))
    while time.monotonic() < end:
        await watch.idle_for(10.0)
        now = time.monotonic()
        rss.append((now - t_start, proc.memory_info().rss / 2**20))
        recent_v = [v.arrived - v.pts / 90000 for v in watch.rec.video if v.arrived > now - 10]
        recent_a = [a.arrived - a.pts / 48000 for a in watch.rec.audio if a.arrived > now - 10]
        offsets.append((now - t_start, float(np.median(recent_a)), float(np.median(recent_v))))
        watch.trim(now - 1.0)
        if any(e["type"] == "utterance_ended" and e["utterance_id"] == uid
               for e in watch.rec.events):
            uid = watch.session.speak_text(tts_text(60))
        watch.rec.events = [e for e in watch.rec.events if e["utterance_id"] == uid]
    watch.session.interrupt()
    print("RSS MiB over time:", " ".join(f"{t:.0f}s={m:.0f}" for t, m in rss))
    floor_first, floor_last, peak = memory_floors(rss)
    # each stream's delay minus its value at the first sample after 20 s (before, the
    # receiver is still catching up with its start-up backlog)
    base = next((o for o in offsets if o[0] >= 20), offsets[0])
    av = [(t, (a - base[1]) - (v - base[2])) for t, a, v in offsets if t >= base[0]]
    print("A/V drift ms over time:", " ".join(f"{t:.0f}s={d * 1000:+.0f}" for t, d in av))
    first = np.mean([d for t, d in av if t <= base[0] + 60])
    last = np.mean([d for t, d in av if t >= av[-1][0] - 60])
    return [[f"{minutes:g} min", rss[0][1], floor_first, floor_last, peak,
             (last - first) * 1000,
             verdict(floor_last - floor_first <= GROWTH_BAR_MIB and abs(last - first) < 0.04)]]


def memory_floors(rss: list[tuple[float, float]]) -> tuple[float, float, float]:
    """The session's resident memory between bursts: the lowest sample of the first
    ``FLOOR_WINDOW_S`` after ``WARM_UP_S`` and of the last (a third of the time after
    warm-up each, for a short run), and the highest sample after warm-up. A sample taken
    while a sentence is being synthesised holds its buffers for that second (up to a few
    hundred MiB for piper's longest sentences, given back at once), and the speech queued
    on the schedule (up to 11 MiB for a minute of 48 kHz audio) comes and goes: a single
    sample tells when it fell, the floors whether memory stays."""
    warm = [(t, m) for t, m in rss if t >= WARM_UP_S] or rss[-1:]
    window = min(FLOOR_WINDOW_S, (warm[-1][0] - warm[0][0]) / 3)
    first = min(m for t, m in warm if t <= warm[0][0] + window)
    last = min(m for t, m in warm if t >= warm[-1][0] - window)
    return first, last, max(m for _, m in warm)


async def started(size: int) -> Watch:
    """A session started in a worker thread (the viewers' loop keeps running meanwhile)."""
    loop = asyncio.get_running_loop()
    return Watch(await loop.run_in_executor(None, start, size))


async def run(args: argparse.Namespace) -> None:
    parts = set(args.parts.split(","))
    a = await started(args.size)
    b: Watch | None = None
    try:
        await a.connect()
        if "latency" in parts:
            n = 4 if args.quick else len(UTTERANCES)
            lat = await latency(a, n)
            print_table(["from speak_text", "n", "p50 ms", "p95 ms", "bar", "verdict"], lat,
                        "Latency (first sentence 8-12 words)")
        if "smooth" in parts:
            smooth = await continuous(a, 20 if args.quick else 60)
            print_table(["stream", "fps received", "largest gap ms", "stamps gap ms",
                         "verdict"], [smooth],
                        f"Smoothness (bars >= {FPS_BAR} fps, gap <= {GAP_BAR_MS:.0f} ms)")
        if "interrupt" in parts:
            irows = await interrupts(a, 3 if args.quick else 5)
            print_table(["silent p50 ms", "silent max ms", "mouth closed p50 ms",
                         "closed max ms", "closed max ms (sent)", "verdict"], [irows],
                        "Interrupt -> last audible packet / mouth closed from then on "
                        "(received)")
        if "sync" in parts:
            sync, mp4 = await lip_sync(a, args.size)
            print_table(["video", "best lag ms", "peak r", "verdict"], sync,
                        f"Lip sync of the received stream ({mp4})")
        if "cpu" in parts:
            rows = await cpu_use(a, 10 if args.quick else 20)
            print_table(["stream", "cores busy", "seconds"], rows,
                        "CPU of the session process (render, TTS, encode, network)")
        if "two" in parts and not args.quick:
            b = await started(args.size)
            await b.connect()
            two = await two_at_once(a, b, 30)
            print_table(["session", "fps received", "largest gap ms", "stamps gap ms",
                         "verdict"], two,
                        "Two sessions at once, both speaking")
            b.session.close()
            await b.viewer.close()
            b = None
        if args.minutes:
            rows = await long_session(a, args.minutes)
            print_table(["length", "RSS at 10 s MiB", "floor, 1st minute after warm-up",
                         "floor, last minute", "peak", "A/V drift ms", "verdict"], rows,
                        f"Long session (RSS, MiB; bar: floor grows <= {GROWTH_BAR_MIB:g} MiB)")
    finally:
        await a.viewer.close()
        a.session.close()
        if b is not None:
            await b.viewer.close()
            b.session.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer utterances, shorter runs")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--minutes", type=float, default=0.0, help="also a long session")
    p.add_argument("--parts", default="latency,smooth,interrupt,sync,cpu,two",
                   help="which measurements (comma-separated; --minutes adds the long one)")
    args = p.parse_args(argv)
    with open("/proc/loadavg") as f:
        print("load average:", f.read().split()[:3])
    asyncio.run(run(args))
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
