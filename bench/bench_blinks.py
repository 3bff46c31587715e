"""Blinks of facecast renders, measured from the outside with the face mesh.

For every portrait in ../shared/media/faces, renders a talking photo of about
15 s of real English speech (seeded, so several blinks occur), tracks the face
mesh over the MP4 (facecast.quality.lipsync.face_series) and computes per frame
the eye aperture: the mean over both eyes of the upper/lower lid gap at the
lid's middle (159-145, 386-374) over the eye's width (33-133, 362-263). The
render's own blink track (the same seeded life track the pipeline made) says
where each blink is and how deep it was meant to be.

Per face it prints the open median (frames away from any blink), the aperture
at each full blink's deepest frame over that median (worst and mean), and the
same for half blinks (whose target depth is shown). The bar: every full blink
at <= 0.15 of the open median, on every face (real speakers give 0.04-0.10).
The last two columns read the same blinks with the lid gap taken across the eye
only (:func:`eye_gap_across`), without the points' sideways offset.

Eye crops at 3x of an open frame, the deepest frame of the worst full blink and
a half-closed frame go to out/bench/blinks_<face>_eyes.png (open | deepest |
half, top to bottom). Run by hand:

    python bench/bench_blinks.py [--seconds S] [--seed N] [--faces NAME ...]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from common import OUT_DIR, SHARED_MEDIA, pipeline_available, print_table, speech_input
from facecast.quality.lipsync import face_series

FACES_DIR = SHARED_MEDIA / "faces"
BAR = 0.15  # aperture at a full blink's deepest frame over the open median
FULL = 0.99  # blink track depth that counts as a full blink
# Mesh indices: (upper lid middle, lower lid middle, corner, corner) per eye.
EYE_POINTS = ((159, 145, 33, 133), (386, 374, 362, 263))
ZOOM = 3


def eye_aperture(pts: np.ndarray) -> float:
    """Mean over both eyes of lid gap at the middle / eye width."""
    ratios = [np.linalg.norm(pts[u] - pts[lo]) / max(np.linalg.norm(pts[a] - pts[b]), 1e-9)
              for u, lo, a, b in EYE_POINTS]
    return float(np.mean(ratios))


def eye_gap_across(pts: np.ndarray) -> float:
    """Mean over both eyes of the lid gap *across* the eye / eye width.

    The same points as :func:`eye_aperture`, the upper-to-lower vector projected on the
    normal of the corner-to-corner line. At a shut eye the mesh lays 159 and 145 on the
    lash line a few pixels apart *along* it (159 sits about 0.08 of the width outwards of
    145, as in the open eye), which the point distance counts as opening; on the
    narrow-eyed portraits that sideways offset alone is 0.2-0.3 of the open aperture, and
    a real shut eye pasted onto them reads the same (bench/README.md, "Blinks, third
    round"). This column reads only the opening between the lids.
    """
    ratios = []
    for u, lo, a, b in EYE_POINTS:
        line = pts[b] - pts[a]
        width = max(float(np.linalg.norm(line)), 1e-9)
        normal = np.array([-line[1], line[0]]) / width
        ratios.append(abs(float(np.dot(pts[u] - pts[lo], normal))) / width)
    return float(np.mean(ratios))


@dataclass
class Blink:
    deepest: int  # frame index
    depth: float  # blink track value there
    ratio: float  # aperture there / open median


def blinks_of(track: np.ndarray, aperture: np.ndarray, open_median: float) -> list[Blink]:
    """Each run of non-zero blink values, at its deepest frame."""
    out: list[Blink] = []
    on = track > 1e-3
    i = 0
    while i < len(track):
        if not on[i]:
            i += 1
            continue
        j = i
        while j < len(track) and on[j]:
            j += 1
        k = i + int(np.argmax(track[i:j]))
        out.append(Blink(k, float(track[k]), float(aperture[k] / open_median)))
        i = j
    return out


def read_frames(video: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    got: dict[int, np.ndarray] = {}
    with av.open(str(video)) as c:
        for i, frame in enumerate(c.decode(c.streams.video[0])):
            if i in wanted:
                got[i] = frame.to_ndarray(format="rgb24")
            if len(got) == len(wanted):
                break
    return got


def eye_crops(video: Path, frames: list[int], out_png: Path) -> None:
    """Both eyes at ZOOM x for the given frames, stacked top to bottom."""
    from facecast.face import check_face

    images = read_frames(video, set(frames))
    first = images[frames[0]]
    verdict = check_face(first)
    if verdict.analysis is None:
        return
    lm = verdict.analysis.landmarks[:, :2]
    pts = lm[[33, 133, 362, 263, 159, 145, 386, 374]]
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    w = x1 - x0
    cy = (y0 + y1) / 2
    box = (int(max(x0 - 0.15 * w, 0)), int(max(cy - 0.25 * w, 0)), int(x1 + 0.15 * w),
           int(cy + 0.22 * w))
    crops = [cv2.resize(images[f][box[1]:box[3], box[0]:box[2]], None, fx=ZOOM, fy=ZOOM,
                        interpolation=cv2.INTER_NEAREST) for f in frames if f in images]
    cv2.imwrite(str(out_png), cv2.cvtColor(np.concatenate(crops, axis=0), cv2.COLOR_RGB2BGR))


def measure_face(photo: Path, speech: dict[str, Any], seed: int) -> dict[str, Any]:
    from facecast.motion.life import life_track
    from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo

    name = photo.stem
    video = OUT_DIR / f"blinks_{name}.mp4"
    res = render_talking_photo(TalkingPhotoSpec(photo=photo, output=video, seed=seed,
                                                **speech), progress=None)
    spec = TalkingPhotoSpec(photo=photo, output=video)
    # The same life track the pipeline drew (same seed, activity and options).
    life = life_track(res.frames, res.track.fps, seed=seed, activity=res.track.channel("jaw"),
                      head_motion=spec.head_motion, blinks=True)
    _, aperture = face_series(video, eye_aperture)
    _, across = face_series(video, eye_gap_across)
    n = min(len(aperture), len(across), len(life.blink))
    track, aperture, across = life.blink[:n], aperture[:n], across[:n]
    near_blink = np.convolve(track > 1e-3, np.ones(7), mode="same") > 0
    open_median = float(np.nanmedian(aperture[~near_blink]))
    blinks = blinks_of(track, aperture, open_median)
    open_across = float(np.nanmedian(across[~near_blink]))
    blinks_across = blinks_of(track, across, open_across)
    full = [b for b in blinks if b.depth >= FULL]
    half = [b for b in blinks if b.depth < FULL]
    row: dict[str, Any] = {"face": name, "open": open_median, "full": full, "half": half,
                           "full_across": [b for b in blinks_across if b.depth >= FULL],
                           "faces": f"{int(np.isfinite(aperture).sum())}/{n}"}
    if full:
        worst = max(full, key=lambda b: b.ratio if np.isfinite(b.ratio) else np.inf)
        # a frame on the way down (about half closed), or a half blink's deepest frame
        partial = [i for i in range(n) if 0.35 <= track[i] <= 0.75]
        mid = half[0].deepest if half else (partial[0] if partial else worst.deepest)
        opened = int(np.flatnonzero(~near_blink)[0]) if (~near_blink).any() else 0
        eye_crops(video, [opened, worst.deepest, mid], OUT_DIR / f"blinks_{name}_eyes.png")
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--faces", nargs="*", default=None, help="file stems to run (default all)")
    args = ap.parse_args(argv)
    if not pipeline_available():
        print("facecast.pipeline.talking_photo is not importable: nothing to render.")
        return 0
    if not FACES_DIR.is_dir():
        print(f"{FACES_DIR} is not present: nothing to measure. (exit code 0)")
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    speech = speech_input(args.seconds, "blinks_speech")
    photos = sorted(p for p in FACES_DIR.iterdir() if p.suffix.lower() in (".png", ".jpg"))
    if args.faces:
        photos = [p for p in photos if p.stem in args.faces]
    rows: list[list[Any]] = []
    for photo in photos:
        r = measure_face(photo, speech, args.seed)
        full, half = r["full"], r["half"]
        ratios = [b.ratio for b in full]
        worst = float(np.nanmax(ratios)) if ratios and np.isfinite(ratios).any() else float("nan")
        # A blink the mesh lost (NaN) counts as a failure: the bar needs a measured closure.
        ok = bool(full) and all(np.isfinite(ratios)) and worst <= BAR
        across = [b.ratio for b in r["full_across"]]
        worst_across = max(across) if across else float("nan")
        ok_across = bool(across) and bool(np.isfinite(across).all()) and worst_across <= BAR
        rows.append([
            r["face"], r["open"], len(full), worst,
            float(np.nanmean(ratios)) if ratios else float("nan"),
            " ".join(f"{b.depth:.2f}:{b.ratio:.2f}" for b in half) or "-",
            r["faces"], "PASS" if ok else "FAIL",
            worst_across, "PASS" if ok_across else "FAIL",
        ])
        print(f"  {r['face']}: full blinks at frames "
              + ", ".join(f"{b.deepest} ({b.ratio:.2f})" for b in full), flush=True)
    print_table(["face", "open median", "full blinks", "worst / open", "mean / open",
                 "half blinks depth:ratio", "faces", f"bar <= {BAR}",
                 "worst / open, gap across", f"bar <= {BAR} (across)"], rows,
                title="Eye aperture at the deepest frame of each blink, over the open median")
    return 0


if __name__ == "__main__":
    sys.exit(main())
