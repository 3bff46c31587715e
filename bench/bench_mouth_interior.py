"""Mouth interiors of talking photos (issue #14): colour cast, texture, closures, grabs.

Every face in ../shared/media/faces speaks ~8 s of real English speech
(``hdtf_RD_Radio31_000.wav``) through :class:`PortraitAnimator` (no head motion,
no blinks, so frames compare pixel for pixel between two checkouts). Per face it
picks frames from the mouth track: the widest open vowels, half-open frames,
p/b/m closures and a strip of 5 consecutive frames through an opening, and
measures

- the teeth (the brightest fifth of the opening between the posed inner lips)
  in CIE Lab: mean a*, b*, L* and hue angle, against the portrait's eye whites
  and cheeks; a green-cyan cast shows as a hue past 100 degrees or a* below 0;
- the interior's texture: the spread of fine detail of L* inside the opening (a
  painted plate is smooth, a photograph is not);
- the posed inner-lip gap at p/b/m (IOD units);
- flicker: the frame-to-frame change of the mouth box over 50 frames of speech
  (median and 95th percentile of the mean absolute grey step).

``--tag NAME`` saves the frames and figures under ``out/mouth_interior/NAME``;
run it once per checkout (``PYTHONPATH=/path/to/other/src``), then ``--compare
BEFORE AFTER`` prints the table and writes 3x mouth grabs (before | after) and
the strips as PNGs. Hand-run; exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_MEDIA, print_table

FACES = SHARED_MEDIA / "faces"
SPEECH = SHARED_MEDIA / "speech" / "hdtf_RD_Radio31_000.wav"
OUT = Path(__file__).resolve().parents[1] / "out" / "mouth_interior"
FPS = 25.0
ZOOM = 3
UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
EYE_RINGS = ((33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
             (362, 398, 384, 385, 386, 387, 388, 466, 263, 249, 390, 373, 374, 380, 381, 382))


def lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (L 0..100, a/b signed) of uint8 RGB pixels (N, 3)."""
    px = np.asarray(rgb, np.uint8).reshape(-1, 1, 3)
    out = cv2.cvtColor(px.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return out.reshape(-1, 3)


def eye_white(img: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Lab of the brightest third inside both eyelids (the bench's own measure)."""
    px = []
    for ring in EYE_RINGS:
        mask = np.zeros(img.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(lm[list(ring), :2]).astype(np.int32)], 255)
        mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
        px.append(img[mask > 0])
    p = lab(np.concatenate(px))
    return p[p[:, 0] >= np.quantile(p[:, 0], 0.67)].mean(axis=0)


def skin(img: np.ndarray, lm: np.ndarray, iod: float) -> np.ndarray:
    r = max(2, int(0.1 * iod))
    px = [img[int(y) - r: int(y) + r, int(x) - r: int(x) + r].reshape(-1, 3)
          for x, y in (lm[205, :2], lm[425, :2])]
    return np.median(lab(np.concatenate(px)), axis=0)


def opening_mask(shape: tuple[int, ...], posed: np.ndarray) -> np.ndarray:
    poly = np.concatenate([posed[list(UPPER_INNER), :2], posed[list(LOWER_INNER[::-1]), :2]])
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 255)
    return cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0


def render(tag: str) -> None:
    from facecast.face import check_face
    from facecast.media import load_audio
    from facecast.motion.track import CHANNELS
    from facecast.pipeline.talking_photo import mouth_track
    from facecast.render.animator import PortraitAnimator
    from facecast.render.rig import RIG_CHANNELS

    audio = load_audio(SPEECH)
    track = mouth_track(audio, [], FPS)
    v = track.values
    jaw, closure = v[:, CHANNELS.index("jaw")], v[:, CHANNELS.index("closure")]
    opened = jaw * (1 - closure)
    order = np.argsort(-opened)
    wide = [int(i) for i in order[:2]]
    half = [int(i) for i in np.argsort(np.abs(opened - 0.45 * opened.max()))[:2]]
    shut = [int(i) for i in np.argsort(-closure)[:3]]
    peak = int(order[0])
    strip = list(range(max(peak - 2, 0), max(peak - 2, 0) + 5))
    picks = {"wide": wide, "half": half, "shut": shut, "strip": strip}
    folder = OUT / tag
    folder.mkdir(parents=True, exist_ok=True)
    figures = {}
    for path in sorted(FACES.iterdir()):
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        lm = check_face(img).analysis.landmarks
        anim = PortraitAnimator(img, lm, head_motion=False)
        iod = float(np.linalg.norm(lm[263, :2] - lm[33, :2]))
        frames, poses = {}, {}
        for i in sorted({i for ids in picks.values() for i in ids}):
            frames[i] = anim.render(v[i], 0.0, None)
            vals = np.zeros(len(RIG_CHANNELS), np.float32)
            vals[: len(CHANNELS)] = v[i]
            poses[i] = anim.rig.pose(vals)
        teeth, detail, gaps = [], [], []
        for i in wide + half:
            m = opening_mask(img.shape, poses[i])
            if m.sum() < 10:
                continue
            p = lab(frames[i][m])
            bright = p[p[:, 0] >= float(np.quantile(p[:, 0], 0.8))]
            if len(bright):
                teeth.append(bright.mean(axis=0))
            g = cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY).astype(np.float32)
            hp = g - cv2.GaussianBlur(g, (0, 0), 1.5)
            detail.append(float(hp[m].std()))
        for i in shut:
            gaps.append(float(np.linalg.norm(poses[i][14, :2] - poses[i][13, :2])) / iod)
        # Frame-to-frame change of the mouth over 2 s of speech around the widest opening:
        # the lips move the same way before and after, so a flickering interior shows as
        # a larger (95th percentile) step.
        cx, cy = lm[13, :2]
        box = (slice(max(int(cy - 0.35 * iod), 0), int(cy + 0.5 * iod)),
               slice(max(int(cx - 0.7 * iod), 0), int(cx + 0.7 * iod)))
        run = range(max(peak - 25, 0), min(peak + 25, len(v)))
        prev, steps = None, []
        for i in run:
            grey = cv2.cvtColor(anim.render(v[i], 0.0, None)[box], cv2.COLOR_RGB2GRAY)
            if prev is not None:
                steps.append(float(np.abs(grey.astype(np.float32) - prev).mean()))
            prev = grey.astype(np.float32)
        figures[path.stem] = {
            "teeth": np.mean(teeth, axis=0).tolist() if teeth else None,
            "white": eye_white(img, lm).tolist(), "skin": skin(img, lm, iod).tolist(),
            "detail": float(np.mean(detail)) if detail else None,
            "shut_gap": max(gaps), "iod": iod,
            "step_median": float(np.median(steps)), "step_p95": float(np.percentile(steps, 95))}
        np.savez_compressed(folder / f"{path.stem}.npz", picks=json.dumps(picks),
                            **{f"f{i}": f for i, f in frames.items()},
                            **{f"p{i}": p for i, p in poses.items()})
        print(path.stem, json.dumps({k: (np.round(x, 1).tolist() if isinstance(x, list) else x)
                                     for k, x in figures[path.stem].items()}))
    (folder / "figures.json").write_text(json.dumps(figures, indent=1))


def crop(frame: np.ndarray, pose: np.ndarray, iod: float) -> np.ndarray:
    cx, cy = (pose[13, :2] + pose[14, :2]) / 2.0
    x0, x1 = int(cx - 0.75 * iod), int(cx + 0.75 * iod)
    y0, y1 = int(cy - 0.4 * iod), int(cy + 0.5 * iod)
    h, w = frame.shape[:2]
    c = frame[max(y0, 0): min(y1, h), max(x0, 0): min(x1, w)]
    return cv2.resize(c, None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_CUBIC)


def compare(before: str, after: str) -> None:
    fa = json.loads((OUT / before / "figures.json").read_text())
    fb = json.loads((OUT / after / "figures.json").read_text())
    rows = []
    for name in fa:
        a, b = fa[name], fb[name]
        white = b["white"]

        def cast(t: list[float] | None) -> str:
            if t is None:
                return "-"
            hue = np.degrees(np.arctan2(t[2], t[1]))
            return f"{t[1]:+.1f} {t[2]:+.1f} (L {t[0]:.0f}, h {hue:.0f})"

        rows.append([name, cast(white), cast(b["skin"]), cast(a["teeth"]), cast(b["teeth"]),
                     f"{a['detail']:.1f} -> {b['detail']:.1f}",
                     f"{a['shut_gap']:.3f} -> {b['shut_gap']:.3f}",
                     f"{a['step_median']:.1f}/{a['step_p95']:.1f} -> "
                     f"{b['step_median']:.1f}/{b['step_p95']:.1f}"])
        za, zb = np.load(OUT / before / f"{name}.npz"), np.load(OUT / after / f"{name}.npz")
        picks = json.loads(str(za["picks"]))
        iod = b["iod"]
        centre = zb[f"p{picks['shut'][0]}"]  # one box for every grab of this face
        tiles = []
        for key in ("wide", "half", "shut"):
            for i in picks[key][:2]:
                pa = crop(za[f"f{i}"], centre, iod)
                pb = crop(zb[f"f{i}"], centre, iod)
                sep = np.full((pa.shape[0], 6, 3), 255, np.uint8)
                tiles.append(np.concatenate([pa, sep, pb], axis=1))
        width = max(t.shape[1] for t in tiles)
        sheet = np.concatenate([np.pad(t, ((0, 6), (0, width - t.shape[1]), (0, 0)))
                                for t in tiles], axis=0)
        cv2.imwrite(str(OUT / f"grab_{name}.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        strip = [crop(zb[f"f{i}"], centre, iod) for i in picks["strip"]]
        cv2.imwrite(str(OUT / f"strip_{name}.png"),
                    cv2.cvtColor(np.concatenate(strip, axis=1), cv2.COLOR_RGB2BGR))
    print_table(["face", "eye whites a* b*", "skin a* b*", f"teeth a* b* {before}",
                 f"teeth a* b* {after}", "interior detail (L std)", "p/b/m gap IOD",
                 "frame step median/p95"], rows,
                title="Teeth (brightest fifth of the opening, mean Lab; h: hue angle, "
                      "degrees; a green-cyan cast is h > 100 or a* < 0) vs the portrait's eye "
                      "whites (brightest third inside the lids) and cheeks; interior texture; "
                      "closures; frame-to-frame step of the mouth box (mean |grey change|, "
                      "50 frames)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tag")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()
    if not FACES.is_dir():
        print("../shared/media is absent: nothing to measure")
        return
    if args.tag:
        render(args.tag)
    if args.compare:
        compare(*args.compare)


if __name__ == "__main__":
    main()
