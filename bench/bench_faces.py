"""Mouth motion and lip sync on every shared face (issue #14: jaw and per-face calibration).

Every portrait in ../shared/media/faces is rendered (size "source", in a child
process) with >= 20 s of recorded English speech, and the output is scored from the
outside with facecast.quality.lipsync: mouth motion (std of the 1 s high-passed
inner-lip gap over the eye distance; bar: the real-speaker range 0.013-0.055), best
lag (bar 0..+120 ms) and peak r (bar >= 0.35). With ``--closures`` each face is also
rendered from piper TTS, whose phoneme timings give the lip gap at p/b/m centres over
that at open vowels (the closures bar: well below 1).

Results go to out/bench/faces_<label>.json; ``--before FILE`` prints before -> after
against an earlier run (e.g. one made on main). ``--grabs`` writes, per face, the
mouth, chin and jaw line at 2x for the most open and the most closed frame, side by
side, to out/bench/faces_grabs/. Run by hand:

    python bench/bench_faces.py [--label after] [--before out/bench/faces_main.json]
                                [--closures] [--grabs] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench_lipsync import LAG_BAR_MS, R_BAR, closure_ratio
from common import (
    ENGLISH_SPEECH,
    OUT_DIR,
    SHARED_MEDIA,
    concat_speech,
    pipeline_available,
    print_table,
    render_in_child,
    shared_media_present,
    spec_fields,
    tts_text,
)
from facecast.quality.lipsync import REAL_MOTION_RANGE, lip_opening_series, measure_lipsync

FACES = SHARED_MEDIA / "faces"


def _bar(motion: float, lag: float, r: float) -> str:
    why = []
    if not REAL_MOTION_RANGE[0] <= motion <= REAL_MOTION_RANGE[1]:
        why.append("motion")
    if not LAG_BAR_MS[0] <= lag <= LAG_BAR_MS[1]:
        why.append("lag")
    if not r >= R_BAR:
        why.append("r")
    return "PASS" if not why else "FAIL (" + ", ".join(why) + ")"


def grab(video: Path, out: Path) -> None:
    """The most open and the most closed frame's lower face at 2x, side by side."""
    import cv2

    from facecast.face import FaceAnalyzer
    from facecast.media.video_reader import read_frames

    _, v = lip_opening_series(video)
    ok = np.isfinite(v)
    if ok.sum() < 2:
        return
    idx = np.flatnonzero(ok)
    want = {int(idx[np.argmax(v[ok])]): "open", int(idx[np.argmin(v[ok])]): "closed"}
    frames: dict[str, np.ndarray] = {}
    for i, (_, frame) in enumerate(read_frames(video)):
        if i in want:
            frames[want[i]] = frame
        if len(frames) == len(want):
            break
    with FaceAnalyzer() as analyzer:
        pts = analyzer.analyze(frames["closed"]).landmarks[:468, :2]
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    fw, fh = x1 - x0, y1 - y0
    # Nose tip down to well under the chin, the jaw line on both sides.
    top = int(max(pts[1, 1], 0))
    box = (int(max(x0 - 0.15 * fw, 0)), top, int(x1 + 0.15 * fw), int(y1 + 0.35 * fh))
    tiles = []
    for key in ("closed", "open"):
        crop = frames[key][box[1]:box[3], box[0]:box[2]]
        tiles.append(cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
    h = min(t_.shape[0] for t_ in tiles)
    sheet = np.concatenate([t_[:h] for t_ in tiles], axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


# Wide shots: these faces made small in a bigger frame (the face about WIDE_FACE_PX
# wide, near the face check's 64 px minimum), on a blurred copy of their own photo.
WIDE_FACES = ("grace_hopper.jpg", "painting_man_mustache.png")
WIDE_CANVAS = (1024, 768)
WIDE_FACE_PX = 90


def wide_shot(face: Path) -> Path:
    """``face`` as a wide shot (written once under out/bench/)."""
    import cv2

    from facecast.face import check_face
    from facecast.media import load_image

    out = OUT_DIR / f"wide_{face.stem}.png"
    if out.is_file():
        return out
    img = load_image(face)
    box = check_face(img).analysis.box  # type: ignore[union-attr]
    s = WIDE_FACE_PX / box.w
    small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    w, h = WIDE_CANVAS
    canvas = cv2.GaussianBlur(cv2.resize(img, (w, h)), (0, 0), 25)
    y0, x0 = h - small.shape[0], (w - small.shape[1]) // 2  # standing at the bottom
    canvas[y0:, x0:x0 + small.shape[1]] = small
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="after", help="name of this run's JSON")
    ap.add_argument("--before", type=Path, help="an earlier run's JSON to compare with")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--closures", action="store_true", help="also TTS renders: p/b/m ratio")
    ap.add_argument("--grabs", action="store_true", help="write mouth/jaw frame grabs")
    ap.add_argument("--faces", nargs="*", help="only these file names")
    ap.add_argument("--render-src", type=Path,
                    help="render with the facecast package under this src/ (e.g. main's, "
                         "from `git archive main src`), measure with this checkout's")
    args = ap.parse_args(argv)
    if args.render_src:
        os.environ["PYTHONPATH"] = str(args.render_src.resolve())
    if not shared_media_present() or not FACES.is_dir():
        print("../shared/media is absent: nothing to measure. (This benchmark reports; exit 0.)")
        return 0
    if not pipeline_available():
        print("facecast.pipeline.talking_photo is not importable: nothing to render.")
        return 0
    wav = concat_speech(ENGLISH_SPEECH, args.seconds, OUT_DIR / "faces_en.wav")
    results: dict[str, dict[str, Any]] = {}
    faces = sorted(FACES.iterdir())
    faces += [wide_shot(FACES / n) for n in WIDE_FACES if (FACES / n).is_file()]
    for face in faces:
        if args.faces and face.name not in args.faces:
            continue
        out = OUT_DIR / f"faces_{args.label}_{face.stem}.mp4"
        run = render_in_child(spec_fields(out, photo=str(face), audio=str(wav)))
        row: dict[str, Any] = {"ok": run.ok, "error": run.error}
        if run.ok:
            s = measure_lipsync(out)
            row.update(motion=s.motion, lag=s.best_lag_ms, r=s.peak_correlation,
                       seconds=s.duration, faces=f"{s.faces_found}/{s.frames}",
                       setup_s=run.result.get("timings", {}).get("setup", float("nan")))
            if args.grabs:
                grab(out, OUT_DIR / "faces_grabs" / f"{args.label}_{face.stem}.png")
        if args.closures:
            out_t = OUT_DIR / f"faces_{args.label}_{face.stem}_tts.mp4"
            run_t = render_in_child(spec_fields(out_t, photo=str(face),
                                                text=tts_text(args.seconds)))
            if run_t.ok and run_t.result.get("phonemes"):
                row["closure"] = closure_ratio(out_t, run_t.result["phonemes"])[0]
                row["motion_tts"] = measure_lipsync(out_t).motion
        results[face.name] = row
        print(f"{face.name}: {row}", flush=True)
    path = OUT_DIR / f"faces_{args.label}.json"
    path.write_text(json.dumps(results, indent=1))
    before: dict[str, dict[str, Any]] = (json.loads(args.before.read_text())
                                         if args.before and args.before.is_file() else {})
    nan = float("nan")

    def cell(d: dict[str, Any], key: str) -> float:
        v = d.get(key)
        return float(v) if isinstance(v, int | float) else nan

    rows = []
    for name, row in results.items():
        b = before.get(name, {})
        if not row["ok"]:
            rows.append([name, "-", "-", "-", "-", f"ERROR {row['error']}"])
            continue
        rows.append([
            name,
            f"{cell(b, 'motion'):.3f} -> {row['motion']:.3f}" if b else f"{row['motion']:.3f}",
            f"{cell(b, 'lag'):+.0f} -> {row['lag']:+.0f}" if b else f"{row['lag']:+.0f}",
            f"{cell(b, 'r'):.2f} -> {row['r']:.2f}" if b else f"{row['r']:.2f}",
            (f"{cell(b, 'closure'):.2f} -> {cell(row, 'closure'):.2f}" if b
             else f"{cell(row, 'closure'):.2f}"),
            _bar(row["motion"], row["lag"], row["r"]),
        ])
    print_table(["face", "motion", "lag ms", "peak r", "p/b/m gap ratio", "bar"], rows,
                title=f"Every shared face, {args.seconds:g}+ s of recorded English speech "
                      f"(motion bar {REAL_MOTION_RANGE[0]}-{REAL_MOTION_RANGE[1]}, lag "
                      f"{LAG_BAR_MS[0]:g}..{LAG_BAR_MS[1]:g} ms, r >= {R_BAR})")
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
