"""Video dubbing against its bars: speed at 720p, re-voicing (lip sync with the new
audio, none with the old), untouched pixels outside the lower face, memory of a
long dub, and frame grabs for a person to look at.

- speed: a 1280x720 talking-head clip (the shared Obama address scaled up onto
  a 16:9 frame) dubbed with 20 s of foreign speech, in a fresh child process:
  wall / audio seconds (bar <= 1.0), and the child's CPU seconds;
- re-voicing: the shared real videos dubbed with foreign (German + Chinese)
  or another person's speech; ``facecast.quality.lipsync`` peak r against the
  new audio (bar >= 0.3) and against the original soundtrack laid along the
  same (looped) frames (bar <= 0.15); PSNR of everything outside the lower
  face against the source frame shown (bar >= 40 dB, worst frame);
- memory: a ``--minutes`` long dub (default 10) and a 1-minute one, each in a
  child (``os.wait4`` ru_maxrss): bar < 2048 MiB;
- grabs: source | dubbed frames at 720p, mouth close-ups, a strip of
  consecutive mouths (jitter) and the loop's cross-fade, in out/bench/dub_grabs/.

Needs ../shared/media (videos and speech). Reports; exit code 0 whatever the
verdicts. Run by hand from the project root:

    python bench/bench_dub.py [--quick] [--minutes M] [--only speed,sync,memory,grabs]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from common import OUT_DIR, SHARED_MEDIA, ChildRun, print_table, run_child

SPEED_BAR = 1.0
R_NEW_BAR = 0.3
R_ORIG_BAR = 0.15
PSNR_BAR = 40.0
MEMORY_BAR_MB = 2048.0

VIDEOS = SHARED_MEDIA / "videos"
SPEECH = SHARED_MEDIA / "speech"
OBAMA = VIDEOS / "obama_weekly_address_20s.mp4"
KLOBUCHAR = VIDEOS / "klobuchar_10s_noaudio.mp4"
KLOBUCHAR_WAV = VIDEOS / "klobuchar_10s_audio.wav"
FOREIGN = ("de_german_sadtalker_deyu.wav", "zh_chinese_news_sadtalker.wav")
DUB_DIR = OUT_DIR / "dub"
GRAB_DIR = OUT_DIR / "dub_grabs"


# --------------------------------------------------------------------------- inputs


def foreign_speech(seconds: float, name: str, *, exact: bool = False) -> Path:
    """German and Chinese speech in turn, at least ``seconds`` long (whole clips), or
    cut to exactly ``seconds`` with ``exact``."""
    from facecast.media import Audio, load_audio, write_audio

    clips = [load_audio(SPEECH / n, 16_000).samples for n in FOREIGN]
    gap = np.zeros(5600, np.float32)
    parts, total, i = [], 0, 0
    while total < seconds * 16_000:
        parts += [clips[i % len(clips)], gap]
        total += len(clips[i % len(clips)]) + len(gap)
        i += 1
    samples = np.concatenate(parts)
    if exact:
        samples = samples[: round(seconds * 16_000)]
    DUB_DIR.mkdir(parents=True, exist_ok=True)
    return write_audio(DUB_DIR / name, Audio(samples, 16_000))


def cut_speech(path: Path, seconds: float, name: str) -> Path:
    from facecast.media import Audio, load_audio, write_audio

    a = load_audio(path)
    return write_audio(DUB_DIR / name, Audio(a.samples[: int(seconds * a.sample_rate)],
                                             a.sample_rate))


def original_audio(video: Path) -> Path:
    from facecast.media import load_audio, write_audio

    if video == KLOBUCHAR:
        return KLOBUCHAR_WAV
    out = DUB_DIR / f"{video.stem}_own.wav"
    if not out.exists():
        write_audio(out, load_audio(video))
    return out


def clip_720p() -> Path:
    """The Obama address scaled onto a 1280x720 frame (blurred copy behind), H.264."""
    from facecast.media import Mp4Writer, load_audio
    from facecast.media.video_reader import read_frames

    out = DUB_DIR / "obama_720p.mp4"
    if out.exists():
        return out
    DUB_DIR.mkdir(parents=True, exist_ok=True)
    with Mp4Writer(out, 1280, 720, 25, load_audio(OBAMA), crf=16) as w:
        for _, f in read_frames(OBAMA):
            frame = cv2.GaussianBlur(cv2.resize(f, (1280, 720), interpolation=cv2.INTER_AREA),
                                     (0, 0), 12)
            frame[:, 280:1000] = cv2.resize(f, (720, 720), interpolation=cv2.INTER_CUBIC)
            w.write(frame)
    return out


# --------------------------------------------------------------------------- child runs

_CHILD = r"""
import json, sys, time
from facecast.pipeline.dub_video import DubVideoSpec, dub_video
kw = json.loads(sys.argv[1])
t0 = time.perf_counter()
res = dub_video(DubVideoSpec(**kw))
out = {"wall_s": time.perf_counter() - t0, "frames": res.frames, "duration": res.duration,
       "timings": res.timings, "loop": res.loop, "width": res.width, "height": res.height}
print("@@RESULT@@" + json.dumps(out))
"""


def dub_in_child(spec: dict[str, Any]) -> ChildRun:
    """A dub in a fresh Python: its own peak RSS (wait4) and CPU time."""
    return run_child(_CHILD, json.dumps(spec))



def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


# --------------------------------------------------------------------------- measures


def schedule_of(result: Any, n_src: int) -> list[tuple[int, int | None, float]]:
    from facecast.pipeline.dub_video import CROSSFADE_S, Loop, schedule

    loop = None
    if result.loop is not None:
        end, start = result.loop
        loop = Loop(start, end, max(2, round(CROSSFADE_S * result.fps)))
    return list(schedule(result.frames, n_src, loop))


def soundtrack_along(audio_path: Path, plan: list[tuple[int, int | None, float]], fps: float
                     ) -> Path:
    """The original soundtrack laid along the output's frames: what the person's own
    mouth motion in each shown frame went with, looped exactly as the picture is."""
    from facecast.media import Audio, load_audio, write_audio

    a = load_audio(audio_path)
    spf = a.sample_rate / fps
    pieces = []
    for src, _, _ in plan:
        lo, hi = round(src * spf), round((src + 1) * spf)
        piece = a.samples[lo:hi]
        pieces.append(np.pad(piece, (0, max(0, hi - lo - len(piece)))))
    out = DUB_DIR / f"{audio_path.stem}_along_{len(plan)}.wav"
    return write_audio(out, Audio(np.concatenate(pieces), a.sample_rate))


def lower_face_box(analyzer: Any, rgb: np.ndarray) -> tuple[slice, slice] | None:
    """Rows from just above the nose tip to below the chin's reach, columns across the
    face and a margin: the only place dubbing may change (an independent mesh)."""
    from facecast.errors import FacecastError
    from facecast.render.dub import eye_frame

    try:
        lm = analyzer.analyze(rgb).landmarks
    except FacecastError:
        return None
    iod = eye_frame(lm).iod
    y0 = int(lm[1, 1] - 0.05 * iod)
    y1 = int(lm[152, 1] + 0.8 * iod)
    x0 = int(lm[:468, 0].min() - 0.4 * iod)
    x1 = int(lm[:468, 0].max() + 0.4 * iod)
    return slice(max(0, y0), max(0, y1)), slice(max(0, x0), max(0, x1))


def outside_psnr(source: Path, output: Path, plan: list[tuple[int, int | None, float]],
                 every: int = 3) -> tuple[float, float, int]:
    """Worst and mean PSNR outside the lower face, output frame vs the source frame it
    shows (cross-faded loop frames left out), over every ``every``-th frame."""
    from facecast.face import FaceAnalyzer
    from facecast.media.video_reader import read_frames

    wanted = {k: src for k, (src, blend, _) in enumerate(plan) if blend is None and k % every == 0}
    need = set(wanted.values())
    frames = {i: f for i, (_, f) in enumerate(read_frames(source)) if i in need}
    values: list[float] = []
    with FaceAnalyzer() as fa:
        boxes = {i: lower_face_box(fa, f) for i, f in frames.items()}
        for k, (_, out) in enumerate(read_frames(output)):
            if k not in wanted or wanted[k] not in frames:
                continue
            src = frames[wanted[k]]
            box = boxes[wanted[k]]
            mask = np.ones(src.shape[:2], bool)
            if box is not None:
                mask[box] = False
            diff = src[mask].astype(np.float64) - out[mask].astype(np.float64)
            mse = float(np.mean(diff**2))
            values.append(99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse))
    if not values:
        return float("nan"), float("nan"), 0
    return float(min(values)), float(np.mean(values)), len(values)


# --------------------------------------------------------------------------- sections


def bench_speed(seconds: float) -> Path | None:
    clip = clip_720p()
    speech = cut_speech(foreign_speech(seconds + 1, "foreign_speed_src.wav"), seconds,
                        "foreign_speed.wav")
    out = DUB_DIR / "speed_720p.mp4"
    print(f"\nspeed: {load_note()} before")
    run = dub_in_child({"video": str(clip), "audio": str(speech), "output": str(out)})
    print(f"speed: {load_note()} after")
    if not run.ok:
        print(f"speed: ERROR {run.error}")
        return None
    wall = run.result["wall_s"]
    dur = run.result["duration"]
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in run.result["timings"].items())
    print(f"stages: {stages}")
    ratio = wall / dur
    print_table(
        ["video", "audio s", "dub wall s", "wall / audio", "process / audio", "CPU s / audio s",
         "bar", "verdict"],
        [[f"{run.result['width']}x{run.result['height']}", dur, wall, ratio,
          run.process_wall_s / dur, run.cpu_s / dur, SPEED_BAR,
          "PASS" if ratio <= SPEED_BAR else "FAIL"]],
        title="Speed: dubbing 720p on this machine (2 cores; see the load above)",
    )
    return out


def chance_level(new_audio: Path, original: Path, fps: float, frames: int) -> float:
    """Peak r of the measure with the new audio's own envelope standing in for the lips:
    the correlation with the original soundtrack that perfect re-voicing would still show,
    because two unrelated speeches correlate a little by chance."""
    from facecast.media import load_audio
    from facecast.quality.lipsync import audio_envelope, score_series

    t_env, env = audio_envelope(load_audio(new_audio), 100.0)
    times = np.arange(frames) / fps
    lips = np.interp(times, t_env, env)
    return float(score_series(times, lips, load_audio(original)).peak_correlation)


def residual_motion(video: Path) -> tuple[float, float, float]:
    """Dub ``video`` with silence and compare the output's lip openings with the
    source's: what survives of the person's own mouth motion."""
    from scipy.ndimage import uniform_filter1d

    from facecast.media import Audio, write_audio
    from facecast.media.video_reader import probe_video
    from facecast.pipeline.dub_video import DubVideoSpec, dub_video
    from facecast.quality.lipsync import lip_opening_series

    seconds = probe_video(video).duration
    silence = write_audio(DUB_DIR / f"silence_{seconds:.0f}s.wav",
                          Audio(np.zeros(round(seconds * 16_000), np.float32), 16_000))
    out = DUB_DIR / f"{video.stem}__silence.mp4"
    dub_video(DubVideoSpec(video=video, audio=silence, output=out))
    _, src = lip_opening_series(video)
    _, dub = lip_opening_series(out)
    n = min(len(src), len(dub))
    ok = np.isfinite(src[:n]) & np.isfinite(dub[:n])
    a, b = src[:n][ok], dub[:n][ok]

    def hp(x: np.ndarray) -> np.ndarray:
        return x - uniform_filter1d(x, 25, mode="nearest")

    return float(np.corrcoef(hp(a), hp(b))[0, 1]), float(np.std(a)), float(np.std(b))


def bench_sync(quick: bool) -> list[tuple[Path, Path, Any]]:
    from facecast.media.video_reader import probe_video
    from facecast.pipeline.dub_video import DubVideoSpec, dub_video
    from facecast.quality.lipsync import measure_lipsync

    foreign = foreign_speech(26.0, "foreign_26s.wav")
    cases = [
        (OBAMA, cut_speech(foreign, 20.0, "foreign_20s.wav"), "foreign, 20 s"),
        (OBAMA, foreign, "foreign, 27 s (loops)"),
        (KLOBUCHAR, foreign, "foreign, 27 s (loops)"),
        (KLOBUCHAR, original_audio(OBAMA), "Obama's English, 20 s (loops)"),
    ]
    if quick:
        cases = cases[:1]
    rows: list[list[object]] = []
    done: list[tuple[Path, Path, Any]] = []
    for video, speech in {(v, original_audio(v)) for v, _, _ in cases}:
        own = measure_lipsync(video, speech)
        other = measure_lipsync(video, foreign)
        rows.append([video.stem, "its own (undubbed)", own.peak_correlation, "-", "-", "-", "-",
                     "-"])
        rows.append([video.stem, "foreign (undubbed)", other.peak_correlation, "-", "-", "-",
                     "-", "-"])
    for video, speech, label in cases:
        out = DUB_DIR / f"{video.stem}__{speech.stem}.mp4"
        t = time.perf_counter()
        result = dub_video(DubVideoSpec(video=video, audio=speech, output=out))
        wall = time.perf_counter() - t
        n_src = probe_video(video).frames
        plan = schedule_of(result, n_src)
        along = soundtrack_along(original_audio(video), plan, result.fps)
        r_new = measure_lipsync(out).peak_correlation
        r_orig = measure_lipsync(out, along).peak_correlation
        chance = chance_level(speech, along, result.fps, result.frames)
        worst, mean, n = outside_psnr(video, out, plan)
        ok = r_new >= R_NEW_BAR and r_orig <= R_ORIG_BAR and worst >= PSNR_BAR
        why = [w for w, good in (("r new", r_new >= R_NEW_BAR), ("r orig", r_orig <= R_ORIG_BAR),
                                 ("psnr", worst >= PSNR_BAR)) if not good]
        rows.append([video.stem, label, r_new, r_orig, chance, worst, mean,
                     "PASS" if ok else "FAIL (" + ", ".join(why) + ")"])
        print(f"  {out.name}: {result.frames} frames in {wall:.1f} s, loop {result.loop}, "
              f"PSNR over {n} frames")
        done.append((video, out, result))
    leak_rows = []
    for video in dict.fromkeys(v for v, _, _ in cases):
        leak_rows.append([video.stem, *residual_motion(video)])
    print_table(
        ["video", "r(shut dub, source lips)", "lip gap std source", "lip gap std dubbed"],
        leak_rows,
        title=("Residual of the original mouth: the video dubbed with silence (new mouth "
               "shut throughout); lip openings by an independent face mesh, high-passed "
               "over 1 s. 0 means none of the original motion is left"),
    )
    print_table(
        ["video", "new audio", "r new", "r original", "r chance", "PSNR out min dB",
         "PSNR out mean dB", "verdict"],
        rows,
        title=(f"Re-voicing: peak r vs the new audio (bar >= {R_NEW_BAR}) and vs the original "
               f"soundtrack along the shown frames (bar <= {R_ORIG_BAR}); PSNR outside the "
               f"lower face (bar >= {PSNR_BAR:g} dB). r chance: what lips following the new "
               "audio perfectly would score against the original soundtrack (the new audio's "
               "own envelope in place of the lips). Undubbed rows: what the measure gives "
               "the source itself"),
    )
    return done


def bench_memory(minutes: float, short_minutes: float) -> None:
    clip = clip_720p()
    rows: list[list[object]] = []
    peaks: dict[str, float] = {}
    for label, m in (("short", short_minutes), ("long", minutes)):
        # The speech limit is 600 s: a "10-minute" dub is cut just under it.
        speech = foreign_speech(min(m * 60.0, 599.5), f"foreign_{m:g}min.wav", exact=True)
        out = DUB_DIR / f"memory_{m:g}min.mp4"
        run = dub_in_child({"video": str(clip), "audio": str(speech), "output": str(out)})
        if not run.ok:
            rows.append([label, m, float("nan"), float("nan"), float("nan"), MEMORY_BAR_MB,
                         f"ERROR {run.error}"])
            continue
        peak = max(run.peak_rss_mb, run.peak_tree_mb)
        peaks[label] = peak
        rows.append([label, m, run.peak_rss_mb, run.peak_tree_mb, run.result["wall_s"],
                     MEMORY_BAR_MB, "PASS" if peak < MEMORY_BAR_MB else "FAIL"])
    print_table(["dub", "minutes", "peak RSS MiB", "tree peak MiB", "wall s", "bar MiB",
                 "verdict"], rows,
                title="Memory: 720p dubs (20 s source looped) in a child process each")
    if len(peaks) == 2 and minutes > short_minutes:
        per_min = (peaks["long"] - peaks["short"]) / (minutes - short_minutes)
        print(f"\n{per_min:+.1f} MiB per extra minute (the soundtrack is held whole: "
              "a few MiB per minute)")


def write_grabs(source: Path, output: Path, name: str, picks: list[int], loop_at: int | None
                ) -> None:
    """Source | dubbed at full size for ``picks``, 3x mouth close-ups, a strip of eight
    consecutive mouths (jitter shows as wobble), and the loop's cross-fade."""
    from facecast.face import FaceAnalyzer
    from facecast.media.video_reader import read_frames

    GRAB_DIR.mkdir(parents=True, exist_ok=True)
    src = {i: f for i, (_, f) in enumerate(read_frames(source))
           if i in picks or picks[0] <= i < picks[0] + 8}
    out = {k: f for k, (_, f) in enumerate(read_frames(output))
           if k in picks or picks[0] <= k < picks[0] + 8
           or (loop_at is not None and loop_at - 8 <= k <= loop_at + 3)}
    from facecast.render.dub import eye_frame

    with FaceAnalyzer() as fa:
        lm = fa.analyze(src[picks[0]]).landmarks
    iod = eye_frame(lm).iod
    cx, cy = lm[13, :2]
    half_w, half_h = int(1.0 * iod), int(0.6 * iod)
    y0, x0 = max(0, int(cy - half_h)), max(0, int(cx - half_w))

    def mouth(f: np.ndarray) -> np.ndarray:
        crop = f[y0: y0 + 2 * half_h, x0: x0 + 2 * half_w]
        return cv2.resize(crop, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)

    def save(path: Path, img: np.ndarray) -> None:
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))

    for k in picks:
        if k in src and k in out:
            save(GRAB_DIR / f"{name}_{k:04d}_full.png", np.concatenate([src[k], out[k]], 1))
            save(GRAB_DIR / f"{name}_{k:04d}_mouth.png",
                 np.concatenate([mouth(src[k]), mouth(out[k])], 1))
    strip = [mouth(out[k]) for k in range(picks[0], picks[0] + 8) if k in out]
    if strip:
        save(GRAB_DIR / f"{name}_strip_{picks[0]:04d}.png", np.concatenate(strip, 0))
    if loop_at is not None:
        seq = [cv2.resize(out[k], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
               for k in range(loop_at - 8, loop_at + 4) if k in out]
        if seq:
            rows = [np.concatenate(seq[i: i + 4], 1) for i in range(0, len(seq) - 3, 4)]
            save(GRAB_DIR / f"{name}_loop_{loop_at:04d}.png", np.concatenate(rows, 0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="10 s speed run, one sync case, 2 vs 0.5 minutes of memory")
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the long dub")
    ap.add_argument("--short-minutes", type=float, default=1.0)
    ap.add_argument("--only", default="speed,sync,memory,grabs",
                    help="comma-separated sections to run")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    if not (VIDEOS.is_dir() and SPEECH.is_dir()):
        print("bench_dub needs ../shared/media (videos and speech); nothing to do.")
        return 0
    minutes, short = (2.0, 0.5) if args.quick else (args.minutes, args.short_minutes)
    print(f"bench_dub: {load_note()}")
    speed_out = None
    if "speed" in only:
        speed_out = bench_speed(10.0 if args.quick else 20.0)
    synced: list[tuple[Path, Path, Any]] = []
    if "sync" in only:
        synced = bench_sync(args.quick)
    if "memory" in only:
        bench_memory(minutes, short)
    if "grabs" in only:
        if speed_out is None and (DUB_DIR / "speed_720p.mp4").exists():
            speed_out = DUB_DIR / "speed_720p.mp4"
        if speed_out is not None:
            write_grabs(clip_720p(), speed_out, "720p", [40, 115, 259, 300, 436], None)
        for video, out, result in synced:
            if result.loop is not None:
                write_grabs(video, out, out.stem, [30, 120], result.loop[0])
        print(f"\nframe grabs in {GRAB_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
