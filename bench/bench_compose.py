"""4K composition: peak memory and speed of 3840x2160 renders with a composed canvas.

Each render runs in its own child process (peak RSS from ``os.wait4``'s
ru_maxrss, as bench_memory.py): 30 s and 2 min of speech by default, so the
two peaks show whether memory stays flat with length. The composition is the
heavy case: a looped 1080p background video (made here, streamed and scaled
to cover 4K every frame), the astronaut cut out of her photo by person
segmentation and placed right of centre at 2160x2160, head motion on, a logo
PNG with alpha in a corner and a translucent lower-third bar.

Prints peak RSS (MiB) against the bar (2 GiB), the long / short ratio, and
the speed ratio (render wall / audio seconds). Writes frame grabs (a 4K PNG,
an overview, 100% crops of the head's outline and the logo) to
``out/bench/compose_grabs/`` for a person to look at. Run by hand:

    python bench/bench_compose.py [--quick] [--seconds S S] [--background video|image|color]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common import OUT_DIR, ROOT, pipeline_available, portrait_path, print_table, speech_input

BAR_MB = 2048.0
WIDTH, HEIGHT = 3840, 2160
GRABS = OUT_DIR / "compose_grabs"

# Runs in the child: the spec and composition come as JSON; prints the result as JSON.
_CHILD = r"""
import json, sys, time
from pathlib import Path
from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo
from facecast.render.compose import Composition, ImageLayer
kw = json.loads(sys.argv[1])
comp = kw.pop("composition")
comp["layers"] = [ImageLayer(**x) for x in comp.get("layers", [])]
for key in ("canvas", "position", "avatar_size"):
    if comp.get(key) is not None:
        comp[key] = tuple(comp[key])
kw["composition"] = Composition(**comp)
t0 = time.perf_counter()
res = render_talking_photo(TalkingPhotoSpec(**kw), progress=None)
wall = time.perf_counter() - t0
print("@@RESULT@@" + json.dumps({"duration": res.duration, "frames": res.frames,
      "width": res.width, "height": res.height, "timings": dict(res.timings),
      "render_wall_s": wall}))
"""


@dataclass
class Run:
    ok: bool
    peak_mb: float
    process_wall_s: float
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def run_child(payload: dict[str, Any], timeout_s: float = 7200.0) -> Run:
    """One render in a fresh Python; its own peak resident memory from wait4."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(payload)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=str(ROOT))
    out: list[str] = []
    err: list[str] = []
    # Drain both pipes in threads so a chatty child never blocks while we sit in wait4.
    readers = [threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True),
               threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)]
    for r in readers:
        r.start()
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    result: dict[str, Any] = {}
    for line in "".join(out).splitlines():
        if line.startswith("@@RESULT@@"):
            result = json.loads(line[len("@@RESULT@@"):])
    ok = proc.returncode == 0 and bool(result)
    tail = ("".join(err).strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    return Run(ok, usage.ru_maxrss / 1024.0, time.perf_counter() - t0, result,
               "" if ok else tail)


def make_background_video(path: Path, seconds: float = 4.0) -> Path:
    """A 1080p clip with motion everywhere (drifting gradient, moving discs): 4 s, 25 fps."""
    import cv2

    from facecast.media import Mp4Writer

    if path.exists():
        return path
    h, w = 1080, 1920
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    with Mp4Writer(path, w, h, fps=25) as writer:
        for i in range(round(seconds * 25)):
            t = i / 25.0
            r = 90 + 60 * np.sin(xx / 300.0 + t)
            g = 110 + 50 * np.sin(yy / 200.0 - 0.7 * t)
            b = 150 + 60 * np.sin((xx + yy) / 500.0 + 1.3 * t)
            frame = np.dstack([r, g, b]).clip(0, 255).astype(np.uint8)
            for k in range(5):
                cx = int((0.2 + 0.15 * k) * w + 200 * np.sin(t * (0.8 + 0.2 * k)))
                cy = int(0.5 * h + 250 * np.cos(t * (0.6 + 0.1 * k) + k))
                cv2.circle(frame, (cx, cy), 60 + 15 * k, (240, 220 - 30 * k, 90 + 30 * k), -1,
                           cv2.LINE_AA)
            writer.write(frame)
    return path


def make_logo(path: Path) -> Path:
    """A 480x200 RGBA logo: a pill-shaped plate with text, anti-aliased alpha edges."""
    import cv2

    img = np.zeros((200, 480, 4), np.uint8)
    alpha = np.zeros((200, 480), np.uint8)
    cv2.rectangle(alpha, (100, 1), (380, 198), 255, -1)
    cv2.circle(alpha, (100, 100), 98, 255, -1, cv2.LINE_AA)
    cv2.circle(alpha, (380, 100), 98, 255, -1, cv2.LINE_AA)
    img[..., :3] = (60, 40, 200)  # BGR: a red plate
    cv2.putText(img, "facecast", (62, 128), cv2.FONT_HERSHEY_DUPLEX, 2.6, (255, 255, 255, 255),
                5, cv2.LINE_AA)
    img[..., 3] = alpha
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path


def composition(kind: str) -> dict[str, Any]:
    background: str
    if kind == "video":
        background = str(make_background_video(OUT_DIR / "compose_bg_1080p.mp4"))
    elif kind == "image":
        import cv2

        still = OUT_DIR / "compose_bg.png"
        if not still.exists():
            from facecast.media.video_reader import read_frames

            clip = make_background_video(OUT_DIR / "compose_bg_1080p.mp4")
            _, frame = next(iter(read_frames(clip)))
            cv2.imwrite(str(still), frame[..., ::-1])
        background = str(still)
    else:
        background = "#1e3c78"
    logo = make_logo(OUT_DIR / "compose_logo.png")
    return {
        "canvas": [WIDTH, HEIGHT], "background": background, "replace_background": True,
        "position": [0.68, 0.5], "layers": [
            {"source": str(logo), "x": 120, "y": 100, "width": 720},
            {"source": "#102040", "x": 0, "y": 1780, "width": 3840, "height": 260, "z": 1,
             "opacity": 0.6},
        ],
    }


def grab_frames(video: Path, label: str, spec_comp: dict[str, Any]) -> list[Path]:
    """Frames at 10%, 50% and 90%: a 4K PNG of the middle one, 1080p overviews, 100% crops."""
    import av
    import cv2

    GRABS.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with av.open(str(video)) as c:
        stream = c.streams.video[0]
        total = stream.frames or 1
        wanted = {round(total * f) for f in (0.1, 0.5, 0.9)}
        middle = sorted(wanted)[1]
        for i, frame in enumerate(c.decode(stream)):
            if i not in wanted:
                continue
            bgr = frame.to_ndarray(format="bgr24")
            tag = f"{label}_f{i:05d}"
            if i == middle:
                written.append(GRABS / f"{tag}_4k.png")
                cv2.imwrite(str(written[-1]), bgr)
            written.append(GRABS / f"{tag}_overview.png")
            cv2.imwrite(str(written[-1]), cv2.resize(bgr, (1920, 1080),
                                                     interpolation=cv2.INTER_AREA))
            # The avatar (2160x2160) is centred at 68% across: its head is in the upper third.
            cx = round(spec_comp["position"][0] * WIDTH)
            written.append(GRABS / f"{tag}_head_100pct.png")
            cv2.imwrite(str(written[-1]), bgr[0:900, cx - 600 : cx + 600])
            written.append(GRABS / f"{tag}_shoulder_100pct.png")
            cv2.imwrite(str(written[-1]), bgr[900:1700, cx - 1000 : cx - 200])
            written.append(GRABS / f"{tag}_logo_100pct.png")
            cv2.imwrite(str(written[-1]), bgr[60:440, 80:880])
            if i > max(wanted):
                break
    return written


def cpu_per_frame(comp: dict[str, Any], frames: int = 40, keep: list[np.ndarray] | None = None
                  ) -> dict[str, float]:
    """CPU milliseconds per 4K frame of animating and composing, in this process.

    CPU time (all threads of the process) rather than wall time, so a busy
    machine inflates it far less than the wall-clock figures. The encoder is
    measured apart (:func:`compare_presets`): x264's threads work on earlier frames
    while later ones are rendered, so timing it inside this loop would charge its
    work to whatever stage ran meanwhile. ``keep`` receives composed frames spread
    over the run, for that comparison.
    """
    from facecast.face import check_face
    from facecast.media import load_image
    from facecast.motion.life import life_track
    from facecast.motion.track import CHANNELS
    from facecast.render.animator import PortraitAnimator
    from facecast.render.compose import Composition, Compositor, ImageLayer

    photo = load_image(portrait_path())
    landmarks = check_face(photo).analysis.landmarks
    kw = dict(comp, layers=[ImageLayer(**x) for x in comp["layers"]],
              canvas=tuple(comp["canvas"]), position=tuple(comp["position"]))
    t = time.process_time()
    compositor = Compositor(Composition(**kw), photo, landmarks, WIDTH, HEIGHT)
    animator = PortraitAnimator(compositor.avatar, compositor.landmarks)
    compositor.follow(animator.head)
    setup = time.process_time() - t
    life = life_track(frames, 25, seed=0)
    mouth = np.zeros((frames, len(CHANNELS)), np.float32)
    mouth[:, 0] = 0.5 + 0.5 * np.sin(np.arange(frames) / 3.0)
    cost = {"animate": 0.0, "compose": 0.0}
    every = max(1, frames // PRESET_FRAMES)
    for i in range(frames):
        t0 = time.process_time()
        frame = animator.render(mouth[i], 0.0, life.head[i])
        t1 = time.process_time()
        canvas = compositor.compose(frame, life.head[i])
        t2 = time.process_time()
        if keep is not None and i % every == 0 and len(keep) < PRESET_FRAMES:
            keep.append(canvas)
        cost["animate"] += t1 - t0
        cost["compose"] += t2 - t1
    compositor.close()
    out = {k: 1000.0 * v / frames for k, v in cost.items()}
    out["setup (once, ms)"] = 1000.0 * setup
    return out


PRESET_FRAMES = 12  # composed 4K frames kept for the preset comparison (25 MiB each)
PRESETS = ("veryfast", "superfast", "ultrafast")


def compare_presets(frames: list[np.ndarray], crf: int = 20) -> list[list[object]]:
    """x264 presets on the same composed 4K frames: encoder CPU ms a frame, PSNR of the
    decoded video against the unencoded frames, bitrate. The frames are encoded twice
    each (the first pass warms the encoder's threads and caches) and the second timed."""
    import av

    from facecast.media import Mp4Writer
    from facecast.media.colour import BT709

    rows: list[list[object]] = []
    for preset in PRESETS:
        path = OUT_DIR / f"compose_preset_{preset}.mp4"
        cpu = 0.0
        for _ in range(2):
            t = time.process_time()
            with Mp4Writer(path, WIDTH, HEIGHT, 25, crf=crf, preset=preset) as writer:
                for frame in frames:
                    writer.write(frame)
            cpu = time.process_time() - t  # the flush at close included: every frame counts
        errors = []
        with av.open(str(path)) as c:
            for frame, original in zip(c.decode(video=0), frames, strict=False):
                d = BT709.frame_to_rgb(frame).astype(np.float32) - original
                errors.append(float(np.mean(d * d)))
        psnr = 10 * np.log10(255.0**2 / float(np.mean(errors)))
        mbit = path.stat().st_size * 8 / (len(frames) / 25) / 1e6
        rows.append([preset, crf, 1000 * cpu / len(frames), round(psnr, 2), round(mbit, 1)])
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, nargs=2, default=(30.0, 120.0),
                    metavar=("SHORT", "LONG"), help="speech lengths (default 30 120)")
    ap.add_argument("--quick", action="store_true", help="10 s and 30 s of speech")
    ap.add_argument("--background", choices=("video", "image", "color"), default="video")
    ap.add_argument("--profile-only", action="store_true",
                    help="only the per-stage CPU cost per frame (no long renders)")
    args = ap.parse_args(argv)
    short_s, long_s = (10.0, 30.0) if args.quick else args.seconds

    print(f"bench_compose: {WIDTH}x{HEIGHT}, {args.background} background, cut-out person, "
          f"2 layers; {short_s:g} s vs {long_s:g} s of speech; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f} at start")
    if not pipeline_available():
        print("facecast.pipeline.talking_photo is not importable yet: nothing to render.")
        return 0
    comp = composition(args.background)
    kept: list[np.ndarray] = []
    cost = cpu_per_frame(comp, keep=kept)
    presets = compare_presets(kept)
    print_table(["preset", "crf", "encode CPU ms/frame", "PSNR dB", "Mbit/s"], presets,
                title=f"x264 presets on {len(kept)} composed 4K frames (PSNR vs the frames; "
                      "encode includes the RGB->YUV conversion)")
    encode = {row[0]: float(row[2]) for row in presets}  # type: ignore[arg-type]
    from facecast.media.video import render_preset

    preset = render_preset(WIDTH, HEIGHT)
    print("CPU ms per 4K frame: " + ", ".join(f"{k} {v:.0f}" for k, v in cost.items())
          + f", encode ({preset}) {encode[preset]:.0f}")
    # On two idle cores a frame takes its slowest thread's time, or half the total CPU,
    # whichever is more. Before: animate + compose in one thread, veryfast. Now: animate,
    # compose and encode each in a thread of their own, with the preset for the size.
    a, c = cost["animate"], cost["compose"]
    before = max(a + c, encode["veryfast"], (a + c + encode["veryfast"]) / 2)
    now = max(a, c, encode[preset], (a + c + encode[preset]) / 2)
    for label, total, wall in (
            ("before (1 render thread, veryfast)", a + c + encode["veryfast"], before),
            (f"now (animate | compose | encode, {preset})", a + c + encode[preset], now)):
        print(f"  {label}: {total:.0f} CPU ms a frame; on 2 idle cores about "
              f"{1000.0 / wall:.1f} frames/s, wall / audio about {25.0 * wall / 1000.0:.1f}")
    if args.profile_only:
        return 0
    rows: list[list[object]] = []
    durations: dict[str, float] = {}
    peaks: dict[str, float] = {}
    for label, seconds in (("short", short_s), ("long", long_s)):
        speech = speech_input(seconds, f"compose_{seconds:g}s")
        out = OUT_DIR / f"compose_4k_{args.background}_{seconds:g}s.mp4"
        payload = {"photo": str(portrait_path()), "output": str(out), **speech,
                   "composition": comp}
        run = run_child(payload)
        if not run.ok:
            rows.append([label, seconds, float("nan"), float("nan"), float("nan"), BAR_MB,
                         f"ERROR {run.error}"])
            continue
        res = run.result
        ratio = run.result["render_wall_s"] / res["duration"]
        peaks[label] = run.peak_mb
        durations[label] = float(res["duration"])
        rows.append([label, round(res["duration"], 1), run.peak_mb,
                     res["frames"] / run.result["render_wall_s"], ratio, BAR_MB,
                     "PASS" if run.peak_mb < BAR_MB else "FAIL"])
        stages = ", ".join(f"{k} {v:.1f}" for k, v in res["timings"].items())
        print(f"  {label}: {res['width']}x{res['height']}, {res['frames']} frames; "
              f"stages (s): {stages}; process wall {run.process_wall_s:.0f} s")
        if label == "short":
            grabs = grab_frames(out, f"{args.background}_{seconds:g}s", comp)
            print(f"  frame grabs: {len(grabs)} files in {GRABS}")
    print_table(["render", "audio s", "peak RSS MiB", "frames/s", "wall / audio", "bar MiB",
                 "verdict"], rows,
                title="4K composed render per child process (peak = wait4 ru_maxrss)")
    if "short" in peaks and "long" in peaks:
        extra_min = (durations["long"] - durations["short"]) / 60.0
        per_min = (peaks["long"] - peaks["short"]) / max(extra_min, 1e-9)
        print(f"\nlong / short peak = {peaks['long'] / peaks['short']:.2f} for "
              f"{durations['long'] / durations['short']:.1f}x the length; {per_min:+.0f} MiB "
              "per extra minute (one 4K frame is 24 MiB: peaks jitter by a frame or two)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end (2 cores: above 2 means others "
          "were running too, and speed figures are pessimistic)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
