"""Speed of facecast's face models on LiteRT, and of mediapipe 0.10.21 where installed.

Per call, median of ``--repeats`` after a warm-up, each model in this process, the two
runtimes interleaved call by call so that a busy machine slows both alike:

* detection (full range) on the packaged astronaut (512x512);
* detection + static mesh on it (what ``FaceAnalyzer`` does per image);
* the video-mode mesh per frame (the crop from the previous frame's landmarks) on a
  synthetic clip of it;
* person segmentation.

Bar: LiteRT no slower than mediapipe (ratio <= 1.1, for timing noise). Without
mediapipe only the LiteRT column is printed. Run by hand::

    PYTHONPATH=$PWD/src python3 bench/bench_face_models.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from common import print_table
from facecast.assets import asset_path
from facecast.face.detector import FaceDetector
from facecast.face.landmarks import FaceMesh
from facecast.face.segmenter import SelfieSegmenter
from facecast.media.image import load_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from face_clip import synthetic_clip

SPEED_BAR = 1.1


def _ours(img: np.ndarray, clip: list[np.ndarray]) -> dict[str, Callable[[int], Any]]:
    det = FaceDetector("full")
    static = FaceMesh(static_image_mode=True)
    video = FaceMesh(static_image_mode=False)
    seg = SelfieSegmenter()
    return {
        "detection": lambda i: det.detect(img),
        "detection + static mesh": lambda i: (det.detect(img), static.process(img)),
        "video-mode mesh (per frame)": lambda i: video.process(clip[i % len(clip)]),
        "segmentation": lambda i: seg.mask(img),
    }


def _mediapipe(img: np.ndarray, clip: list[np.ndarray]) -> dict[str, Callable[[int], Any]] | None:
    try:
        import mediapipe as mp
    except ImportError:
        return None
    sol = mp.solutions
    det = sol.face_detection.FaceDetection(model_selection=1)
    static = sol.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True)
    video = sol.face_mesh.FaceMesh(static_image_mode=False, refine_landmarks=True)
    seg = sol.selfie_segmentation.SelfieSegmentation(model_selection=0)
    return {
        "detection": lambda i: det.process(img),
        "detection + static mesh": lambda i: (det.process(img), static.process(img)),
        "video-mode mesh (per frame)": lambda i: video.process(clip[i % len(clip)]),
        "segmentation": lambda i: seg.process(img),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args(argv)
    img = load_image(asset_path("astronaut.png"))
    clip = list(synthetic_clip(img))
    ours = _ours(img, clip)
    theirs = _mediapipe(img, clip)
    rows = []
    for name, fn in ours.items():
        other = theirs[name] if theirs else None
        for i in range(5):
            fn(i)
            if other:
                other(i)
        t_ours, t_mp = [], []
        for i in range(args.repeats):
            t0 = time.perf_counter()
            fn(i)
            t_ours.append(time.perf_counter() - t0)
            if other:
                t0 = time.perf_counter()
                other(i)
                t_mp.append(time.perf_counter() - t0)
        a = float(np.median(t_ours)) * 1e3
        if other:
            b = float(np.median(t_mp)) * 1e3
            rows.append([name, b, a, a / b, "PASS" if a / b <= SPEED_BAR else "FAIL"])
        else:
            rows.append([name, "-", a, "-", "-"])
    print_table(["ms per call", "mediapipe 0.10.21", "LiteRT", "ratio", "bar"], rows,
                title=f"Face models, astronaut 512x512, median of {args.repeats} "
                      f"(bar: ratio <= {SPEED_BAR})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
