"""Video avatars (cloned from a recording) against their bars: creation time, render
speed at 720p, memory of a long render, re-voicing, the person's own mouth against the
painted one, and frame grabs for a person to look at.

- create: a 60 s 1280x720 recording (the shared Obama address scaled onto a 16:9
  frame as bench_dub builds its 720p clip, ping-ponged forward / backward / forward,
  with the original soundtrack laid along the frames) made into an avatar in a fresh
  child process: wall seconds (bar < 60 s), CPU seconds, peak RSS, per-stage timings;
- speed: 20 s of foreign speech (German + Chinese) rendered from that avatar in a
  child: wall / audio seconds (bar <= 0.5) and CPU seconds / audio seconds;
- memory: a short and a ``--minutes`` long render, each in a child (``os.wait4``
  ru_maxrss): bar < 2048 MiB, and flat with length;
- sync: ``facecast.quality.lipsync`` peak r of the 20 s render against the new
  audio (bar >= 0.3) and against the recording's own soundtrack laid along the
  shown frames (bar <= 0.15); PSNR outside the lower face against the stored idle
  clip (bar >= 40 dB, worst frame); the mean colour of the lower face around the
  mouth against the idle clip's (a colour shift would show here);
- mouth: the person's own mouth bank against the painter, on held-out frames of a
  source: the bank is built from the first 60 % of the video, and each open mouth
  of the last 40 % is rebuilt from the bank and by the painter; PSNR and SSIM
  inside the opening against what the camera saw (higher is closer to the person);
- grabs: idle clip | render at 720p, mouth close-ups, a strip of consecutive
  mouths (jitter), the loop's jump, held-out reconstructions (camera | bank |
  painter), in out/bench/avatar_grabs/.

Needs ../shared/media (videos and speech). Reports; exit code 0 whatever the
verdicts. Timings are wall-clock on whatever else the machine runs: the load
average is printed before and after. Run by hand from the project root:

    python bench/bench_avatar.py [--quick] [--minutes M]
                                 [--only create,speed,memory,sync,mouth,grabs]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench_dub import (
    KLOBUCHAR,
    OBAMA,
    chance_level,
    clip_720p,
    cut_speech,
    foreign_speech,
    load_note,
    lower_face_box,
    original_audio,
    outside_psnr,
)
from common import OUT_DIR, SHARED_MEDIA, ChildRun, print_table, run_child

CREATE_BAR_S = 60.0
SPEED_BAR = 0.5
MEMORY_BAR_MB = 2048.0
R_NEW_BAR = 0.3
R_ORIG_BAR = 0.15
PSNR_BAR = 40.0

VIDEOS = SHARED_MEDIA / "videos"
SPEECH = SHARED_MEDIA / "speech"
AV_DIR = OUT_DIR / "avatar"
GRAB_DIR = OUT_DIR / "avatar_grabs"
AVATAR = AV_DIR / "obama60"
OBAMA_FRAMES = 500  # the 20 s address at 25 fps


# --------------------------------------------------------------------------- inputs


def pingpong_order() -> list[int]:
    """Obama frames shown by the 60 s recording: forward, backward, forward."""
    fwd = list(range(OBAMA_FRAMES))
    return fwd + fwd[::-1] + fwd


def recording_60s() -> Path:
    """1280x720, 60 s: each Obama frame scaled onto a blurred 16:9 copy of itself, in
    ping-pong order, with the original soundtrack laid along the frames."""
    from facecast.media import Audio, Mp4Writer, load_audio
    from facecast.media.video_reader import read_frames

    out = AV_DIR / "obama_720p_60s.mp4"
    if out.exists():
        return out
    AV_DIR.mkdir(parents=True, exist_ok=True)
    frames = [f for _, f in read_frames(OBAMA)]
    own = load_audio(original_audio(OBAMA))
    spf = own.sample_rate / 25.0
    order = pingpong_order()
    pieces = []
    for j in order:
        lo, hi = round(j * spf), round((j + 1) * spf)
        piece = own.samples[lo:hi]
        pieces.append(np.pad(piece, (0, max(0, hi - lo - len(piece)))))
    with Mp4Writer(out, 1280, 720, 25, Audio(np.concatenate(pieces), own.sample_rate),
                   crf=16, preset="superfast") as w:
        for j in order:
            f = frames[min(j, len(frames) - 1)]
            frame = cv2.GaussianBlur(cv2.resize(f, (1280, 720), interpolation=cv2.INTER_AREA),
                                     (0, 0), 12)
            frame[:, 280:1000] = cv2.resize(f, (720, 720), interpolation=cv2.INTER_CUBIC)
            w.write(frame)
    return out


# --------------------------------------------------------------------------- child runs

_CHILD = r"""
import json, sys, time
from facecast.pipeline import video_avatar as va
job, kw = sys.argv[1], json.loads(sys.argv[2])
t0 = time.perf_counter()
if job == "create":
    info = va.create_video_avatar(va.VideoAvatarSpec(**kw))
    out = {k: v for k, v in info.to_json().items()}
else:
    res = va.render_video_avatar(va.AvatarRenderSpec(**kw))
    out = {"frames": res.frames, "duration": res.duration, "width": res.width,
           "height": res.height, "fps": res.fps, "timings": res.timings, "loops": res.loops,
           "own_mouth_frames": res.own_mouth_frames,
           "painted_mouth_frames": res.painted_mouth_frames}
out["wall_s"] = time.perf_counter() - t0
print("@@RESULT@@" + json.dumps(out))
"""


def in_child(job: str, spec: dict[str, Any]) -> ChildRun:
    """``create`` or ``render`` in a fresh Python: its own peak RSS (wait4) and CPU time."""
    return run_child(_CHILD, job, json.dumps(spec))



def stages(timings: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())


# --------------------------------------------------------------------------- sections


def bench_create() -> bool:
    import shutil

    clip = recording_60s()
    shutil.rmtree(AVATAR, ignore_errors=True)
    print(f"\ncreate: {load_note()} before")
    run = in_child("create", {"video": str(clip), "folder": str(AVATAR), "name": "Obama"})
    print(f"create: {load_note()} after")
    if not run.ok:
        print(f"create: ERROR {run.error}")
        return False
    r = run.result
    print(f"stages: {stages(r['timings'])}")
    print(f"stored: {r['width']}x{r['height']} at {r['fps']:g} fps, idle loop "
          f"{r['duration']:.1f} s (from frame {r['source_start']}, loop {r['loop']}), "
          f"{r['mouth_samples']} own mouth samples, face in {r['frames_with_face']} of "
          f"{r['source_frames']} frames, jaw cancel {r['jaw_cancel']:.2f}")
    size = sum(p.stat().st_size for p in AVATAR.iterdir()) / 2**20
    wall = r["wall_s"]
    print_table(
        ["recording", "create wall s", "process wall s", "CPU s", "peak RSS MiB",
         "package MiB", "bar s", "verdict"],
        [[f"1280x720, {r['source_duration']:.0f} s", wall, run.process_wall_s, run.cpu_s,
          max(run.peak_rss_mb, run.peak_tree_mb), size, CREATE_BAR_S,
          "PASS" if wall < CREATE_BAR_S else "FAIL"]],
        title="Creation: avatar from a 60 s 720p recording (2 cores; see the load above)")
    return True


def bench_speed(seconds: float) -> Path | None:
    speech = cut_speech(foreign_speech(seconds + 1, "foreign_speed_src.wav"), seconds,
                        f"foreign_{seconds:g}s_exact.wav")
    out = AV_DIR / f"render_{seconds:g}s.mp4"
    print(f"\nspeed: {load_note()} before")
    run = in_child("render", {"avatar": str(AVATAR), "audio": str(speech), "output": str(out)})
    print(f"speed: {load_note()} after")
    if not run.ok:
        print(f"speed: ERROR {run.error}")
        return None
    r = run.result
    print(f"stages: {stages(r['timings'])}; loops {r['loops']}; open mouths from the "
          f"person's own bank {r['own_mouth_frames']}, painted {r['painted_mouth_frames']}")
    dur = r["duration"]
    ratio = r["wall_s"] / dur
    print_table(
        ["avatar", "audio s", "render wall s", "wall / audio", "process / audio",
         "CPU s / audio s", "bar", "verdict"],
        [[f"{r['width']}x{r['height']}", dur, r["wall_s"], ratio, run.process_wall_s / dur,
          run.cpu_s / dur, SPEED_BAR, "PASS" if ratio <= SPEED_BAR else "FAIL"]],
        title=("Speed: rendering from the cloned avatar at 720p (2 cores; see the load "
               "above). CPU / audio under 2 x the bar means the bar is met on 2 idle cores"))
    return out


def bench_memory(minutes: float, short_minutes: float) -> None:
    rows: list[list[object]] = []
    peaks: dict[str, float] = {}
    for label, m in (("short", short_minutes), ("long", minutes)):
        speech = foreign_speech(min(m * 60.0, 599.5), f"foreign_{m:g}min.wav", exact=True)
        out = AV_DIR / f"memory_{m:g}min.mp4"
        run = in_child("render", {"avatar": str(AVATAR), "audio": str(speech),
                                  "output": str(out)})
        if not run.ok:
            rows.append([label, m, float("nan"), float("nan"), float("nan"), MEMORY_BAR_MB,
                         f"ERROR {run.error}"])
            continue
        peak = max(run.peak_rss_mb, run.peak_tree_mb)
        peaks[label] = peak
        rows.append([label, m, run.peak_rss_mb, run.peak_tree_mb,
                     run.result["wall_s"] / run.result["duration"], MEMORY_BAR_MB,
                     "PASS" if peak < MEMORY_BAR_MB else "FAIL"])
        with contextlib.suppress(OSError):
            out.unlink()
    print_table(["render", "minutes", "peak RSS MiB", "tree peak MiB", "wall / audio",
                 "bar MiB", "verdict"], rows,
                title=f"Memory: 720p renders from the avatar in a child each ({load_note()})")
    if len(peaks) == 2 and minutes > short_minutes:
        per_min = (peaks["long"] - peaks["short"]) / (minutes - short_minutes)
        print(f"\n{per_min:+.1f} MiB per extra minute (the soundtrack is held whole: "
              "a few MiB per minute)")


def shown_frames(output_frames: int) -> list[tuple[int, int | None, float]]:
    """For each output frame: the idle-clip frame shown (and the cross-fade partner)."""
    from facecast.pipeline.dub_video import Loop, schedule
    from facecast.pipeline.video_avatar import load_video_avatar

    info = load_video_avatar(AVATAR)
    return list(schedule(output_frames, info.frames, Loop(*info.loop)))


def soundtrack_along(plan: list[tuple[int, int | None, float]]) -> Path:
    """Obama's own soundtrack laid along the output: what the lips in each shown frame
    originally went with (idle clip -> recording -> ping-pong -> Obama frame)."""
    from facecast.media import Audio, load_audio, write_audio
    from facecast.pipeline.video_avatar import load_video_avatar

    info = load_video_avatar(AVATAR)
    order = pingpong_order()
    a = load_audio(original_audio(OBAMA))
    spf = a.sample_rate / info.fps
    pieces = []
    for clip_frame, _, _ in plan:
        j = order[min(info.source_start + clip_frame, len(order) - 1)]
        lo, hi = round(j * spf), round((j + 1) * spf)
        piece = a.samples[lo:hi]
        pieces.append(np.pad(piece, (0, max(0, hi - lo - len(piece)))))
    out = AV_DIR / f"own_along_{len(plan)}.wav"
    return write_audio(out, Audio(np.concatenate(pieces), a.sample_rate))


def colour_shift(output: Path, plan: list[tuple[int, int | None, float]], every: int = 10
                 ) -> float:
    """Largest per-channel difference (levels) of the mean colour of the lower face
    around the mouth (lips excluded), render against the idle-clip frame shown."""
    from facecast.face import FaceAnalyzer
    from facecast.media.video_reader import read_frames
    from facecast.render.dub import eye_frame

    wanted = {k: src for k, (src, blend, _) in enumerate(plan) if blend is None and k % every == 0}
    need = set(wanted.values())
    clip = {i: f for i, (_, f) in enumerate(read_frames(AVATAR / "idle.mp4")) if i in need}
    diffs = []
    with FaceAnalyzer() as fa:
        for k, (_, out) in enumerate(read_frames(output)):
            if k not in wanted or wanted[k] not in clip:
                continue
            src = clip[wanted[k]]
            box = lower_face_box(fa, src)
            if box is None:
                continue
            lm = fa.analyze(src).landmarks
            iod = eye_frame(lm).iod
            mask = np.zeros(src.shape[:2], bool)
            mask[box] = True
            lips = lm[[61, 291, 0, 17], :2]
            (x0, y0), (x1, y1) = lips.min(axis=0) - 0.25 * iod, lips.max(axis=0) + 0.25 * iod
            mask[max(0, int(y0)): int(y1), max(0, int(x0)): int(x1)] = False
            diffs.append(out[mask].mean(axis=0) - src[mask].mean(axis=0))
    return float(np.abs(np.mean(diffs, axis=0)).max()) if diffs else float("nan")


def bench_sync(render: Path) -> None:
    from facecast.quality.lipsync import measure_lipsync

    res_frames = sum(1 for _ in _frames(render))
    plan = shown_frames(res_frames)
    along = soundtrack_along(plan)
    speech = AV_DIR / "speech_of_render.wav"
    from facecast.media import load_audio, write_audio

    write_audio(speech, load_audio(render))
    r_new = measure_lipsync(render).peak_correlation
    r_orig = measure_lipsync(render, along).peak_correlation
    chance = chance_level(speech, along, 25.0, res_frames)
    worst, mean, n = outside_psnr(AVATAR / "idle.mp4", render, plan)
    shift = colour_shift(render, plan)
    why = [w for w, good in (("r new", r_new >= R_NEW_BAR), ("r orig", r_orig <= R_ORIG_BAR),
                             ("psnr", worst >= PSNR_BAR)) if not good]
    print_table(
        ["render", "r new", "r original", "r chance", "PSNR out min dB", "PSNR out mean dB",
         "colour shift", "verdict"],
        [[render.name, r_new, r_orig, chance, worst, mean, shift,
          "PASS" if not why else "FAIL (" + ", ".join(why) + ")"]],
        title=(f"Re-voicing of the render: peak r vs the new audio (bar >= {R_NEW_BAR}) and vs "
               f"the recording's own soundtrack along the shown frames (bar <= {R_ORIG_BAR}); "
               f"PSNR outside the lower face vs the idle clip over {n} frames (bar >= "
               f"{PSNR_BAR:g} dB); colour shift: largest per-channel difference of the mean "
               "lower-face colour around the mouth, render vs idle clip (levels of 255)"))


def _frames(path: Path) -> Iterator[np.ndarray]:
    """The RGB frames of ``path``, in order."""
    from facecast.media.video_reader import read_frames

    for _, f in read_frames(path):
        yield f


def held_out(video: Path, name: str, grabs: bool) -> list[object]:
    """Rebuild held-out open mouths from a bank of the first 60 % vs the painter."""
    from facecast.render.dub import _face_frame, _FramePainter, mouth_colours, mouth_gap
    from facecast.render.mouth_bank import BankBuilder, interior_scores, lip_colour
    from facecast.render.video_face import FaceTracker

    frames, pts = [], []
    with FaceTracker() as tracker:
        for f in _frames(video):
            frames.append(f)
            pts.append(tracker.track(f))
    n = len(frames)
    split = int(0.6 * n)
    builder = BankBuilder(every=2)
    for i in range(split):
        if pts[i] is not None:
            builder.offer(i, frames[i], pts[i])
    bank = builder.build()
    seen = [mouth_colours(frames[i], pts[i]) for i in range(0, split, 3) if pts[i] is not None]
    seen = [c for c in seen if c is not None]
    first = next(i for i in range(n) if pts[i] is not None)
    painter = _FramePainter(frames[first], pts[first], _face_frame(pts[first]),
                            stock=False)
    painter.use_colours(np.median(np.stack(seen), axis=0) if len(seen) >= 3 else None)
    rows, examples, declined = [], [], 0
    for i in range(split, n):
        if pts[i] is None or mouth_gap(pts[i]) < 0.05:
            continue
        img = frames[i]
        own = img.copy()
        if not bank.paint(own, (0, 0), pts[i], lip_colour(img, pts[i])):
            declined += 1
            continue
        painted = img.copy()
        painter.paint_in(_face_frame(pts[i]), painted, (0, 0), pts[i], 0.5)
        rows.append((*interior_scores(img, own, pts[i]), *interior_scores(img, painted, pts[i])))
        if len(examples) < 6 and i % 7 == 0:
            examples.append((i, img, own, painted))
    r = np.array(rows) if rows else np.full((1, 4), np.nan)
    if grabs and examples:
        GRAB_DIR.mkdir(parents=True, exist_ok=True)
        tiles = []
        for i, img, own, painted in examples:
            p = pts[i]
            iod = float(np.linalg.norm(p[263, :2] - p[33, :2]))
            cx, cy = p[13, :2]
            y0, x0 = max(0, int(cy - 0.45 * iod)), max(0, int(cx - 0.8 * iod))
            y1, x1 = int(cy + 0.55 * iod), int(cx + 0.8 * iod)
            scale = 240.0 / max(1, x1 - x0)
            tiles.append(np.concatenate(
                [cv2.resize(a[y0:y1, x0:x1], None, fx=scale, fy=scale,
                            interpolation=cv2.INTER_CUBIC) for a in (img, own, painted)], 1))
        h = min(t.shape[0] for t in tiles)
        _save(GRAB_DIR / f"heldout_{name}.png", np.concatenate([t[:h] for t in tiles], 0))
    return [name, len(rows), declined, *np.nanmean(r, axis=0).tolist()[::2],
            *np.nanmean(r, axis=0).tolist()[1::2], float(np.mean(r[:, 0] > r[:, 2]))]


def bench_mouth(quick: bool, grabs: bool) -> None:
    cases = [(clip_720p(), "obama_720p")]
    if not quick:
        cases.append((KLOBUCHAR, "klobuchar_256"))
    rows = [held_out(v, name, grabs) for v, name in cases]
    print_table(["source", "held-out open mouths", "bank declined", "own PSNR dB",
                 "painted PSNR dB", "own SSIM", "painted SSIM", "own closer (PSNR)"], rows,
                title=("Own mouth vs painted: open mouths (gap >= 0.05 IOD) of the last 40 % of "
                       "each video rebuilt from a bank of the first 60 % and by the painter; "
                       "PSNR / SSIM inside the opening against the camera's frame"))


def _save(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def write_grabs(render: Path, picks: list[int]) -> None:
    """Idle clip | render at full size, 3x mouth close-ups, a strip of eight consecutive
    mouths (jitter shows as wobble), and the frames around the loop's first jump."""
    from facecast.face import FaceAnalyzer
    from facecast.pipeline.video_avatar import load_video_avatar
    from facecast.render.dub import eye_frame

    GRAB_DIR.mkdir(parents=True, exist_ok=True)
    info = load_video_avatar(AVATAR)
    end = info.loop[1]
    plan = shown_frames(sum(1 for _ in _frames(render)))
    jump_span = set(range(end - 8, end + 4))
    strip = set(range(picks[0], picks[0] + 8))
    out = {k: f for k, f in enumerate(_frames(render)) if k in picks or k in strip
           or k in jump_span}
    need = {plan[k][0] for k in out if k < len(plan)}
    idle = {i: f for i, f in enumerate(_frames(AVATAR / "idle.mp4")) if i in need}
    with FaceAnalyzer() as fa:
        lm = fa.analyze(idle[plan[picks[0]][0]]).landmarks
    iod = eye_frame(lm).iod
    cx, cy = lm[13, :2]
    half_w, half_h = int(1.0 * iod), int(0.6 * iod)
    y0, x0 = max(0, int(cy - half_h)), max(0, int(cx - half_w))

    def mouth(f: np.ndarray) -> np.ndarray:
        crop = f[y0: y0 + 2 * half_h, x0: x0 + 2 * half_w]
        return cv2.resize(crop, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)

    for k in picks:
        if k in out and plan[k][0] in idle:
            src = idle[plan[k][0]]
            _save(GRAB_DIR / f"render_{k:04d}_full.png", np.concatenate([src, out[k]], 1))
            _save(GRAB_DIR / f"render_{k:04d}_mouth.png",
                  np.concatenate([mouth(src), mouth(out[k])], 1))
    tiles = [mouth(out[k]) for k in sorted(strip) if k in out]
    if tiles:
        _save(GRAB_DIR / f"render_strip_{picks[0]:04d}.png", np.concatenate(tiles, 0))
    seq = [cv2.resize(out[k], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
           for k in sorted(jump_span) if k in out]
    if len(seq) >= 4:
        rows = [np.concatenate(seq[i: i + 4], 1) for i in range(0, len(seq) - 3, 4)]
        _save(GRAB_DIR / f"render_loop_{end:04d}.png", np.concatenate(rows, 0))
    thumb = cv2.imread(str(info.thumbnail))
    if thumb is not None:
        cv2.imwrite(str(GRAB_DIR / "thumbnail.jpg"), thumb)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 vs 0.25 minutes of memory, one held-out source")
    ap.add_argument("--minutes", type=float, default=3.0, help="length of the long render")
    ap.add_argument("--short-minutes", type=float, default=0.5)
    ap.add_argument("--only", default="create,speed,memory,sync,mouth,grabs",
                    help="comma-separated sections to run")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    if not (VIDEOS.is_dir() and SPEECH.is_dir()):
        print("bench_avatar needs ../shared/media (videos and speech); nothing to do.")
        return 0
    minutes, short = (1.0, 0.25) if args.quick else (args.minutes, args.short_minutes)
    # 20 s even with --quick: the lip-sync measure reads chance peaks of 0.3 on 10 s.
    seconds = 20.0
    print(f"bench_avatar: {load_note()}")
    t0 = time.perf_counter()
    if "create" in only and not bench_create():
        return 0
    if not (AVATAR / "avatar.json").exists():
        print(f"no avatar at {AVATAR}: run the create section first")
        return 0
    render = AV_DIR / f"render_{seconds:g}s.mp4"
    if "speed" in only:
        render = bench_speed(seconds) or render
    if "memory" in only:
        bench_memory(minutes, short)
    if "sync" in only and render.exists():
        bench_sync(render)
    if "mouth" in only:
        bench_mouth(args.quick, "grabs" in only)
    if "grabs" in only and render.exists():
        write_grabs(render, [40, 115, 259, 300, 436])
        print(f"\nframe grabs in {GRAB_DIR}")
    print(f"\nbench_avatar: {time.perf_counter() - t0:.0f} s in all; {load_note()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
